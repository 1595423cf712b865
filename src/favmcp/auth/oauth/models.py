"""OAuth tables. Every secret (authorization code, access and refresh token) is stored as its SHA-256 only, like an
API key; a registered client's secret is sealed, because the SDK's client authentication compares it in the clear."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Field

from favmcp.db.types import Table, enum_field, json_field, utc_field, workspace_fk


class OAuthClient(Table, table=True):
    """A client registered dynamically (RFC 7591). Clients belong to no workspace: one client serves anyone."""

    __tablename__ = "oauth_clients"

    id: str = Field(primary_key=True, max_length=40)
    # The client's secret sealed with the server secret; None for a public client (PKCE only).
    secret: str | None = Field(default=None)
    # The registered metadata as the SDK models it (OAuthClientInformationFull), without the secret.
    info: dict[str, Any] = json_field()
    created_at: datetime = utc_field()


class OAuthAuthorization(Table, table=True):
    """One authorization request, from /authorize to the person's answer: the state of the sign-in page.

    The page is bound to the browser that opened it (a cookie whose hash is kept here), the emailed code to this
    request, and the person to the workspace they chose."""

    __tablename__ = "oauth_authorizations"

    id: str = Field(primary_key=True, max_length=40)
    client_id: str = Field(foreign_key="oauth_clients.id", max_length=40, ondelete="CASCADE")
    # The validated request (the SDK's AuthorizationParams): redirect URI, state, PKCE challenge, scopes, resource.
    params: dict[str, Any] = json_field()
    browser_hash: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=320)
    code_hash: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    code_expires_at: datetime | None = utc_field(nullable=True)
    signed_in_at: datetime | None = utc_field(nullable=True)
    user_id: str | None = Field(default=None, foreign_key="users.id", max_length=40, ondelete="CASCADE")
    workspace_id: str | None = workspace_fk(nullable=True, index=False)
    created_at: datetime = utc_field()
    expires_at: datetime = utc_field(index=True)
    finished_at: datetime | None = utc_field(nullable=True)


class OAuthGrant(Table, table=True):
    """What a person allowed one client: one workspace, one user, scopes, one resource. Every token issued under it
    is one family: revoking the grant (reuse of a rotated refresh token, revocation, sign-out) ends them all."""

    __tablename__ = "oauth_grants"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    user_id: str = Field(foreign_key="users.id", index=True, max_length=40, ondelete="CASCADE")
    client_id: str = Field(foreign_key="oauth_clients.id", index=True, max_length=40, ondelete="CASCADE")
    scopes: list[str] = json_field(list)
    resource: str = Field(max_length=2000)
    # The profile the person chose on the consent page (favmcp.registry.profiles).
    profile: str | None = Field(default=None, max_length=20)
    code_challenge: str = Field(max_length=128)
    redirect_uri: str = Field(max_length=2000)
    redirect_uri_explicit: bool = True
    created_at: datetime = utc_field()
    last_used_at: datetime | None = utc_field(nullable=True)
    revoked_at: datetime | None = utc_field(nullable=True)


class TokenKind(StrEnum):
    code = "code"
    access = "access"
    refresh = "refresh"


class OAuthToken(Table, table=True):
    """An authorization code, access token or refresh token of a grant. A code or refresh token is spent once
    (`used_at`); presenting a spent one again revokes the whole grant."""

    __tablename__ = "oauth_tokens"

    id: str = Field(primary_key=True, max_length=40)
    grant_id: str = Field(foreign_key="oauth_grants.id", index=True, max_length=40, ondelete="CASCADE")
    workspace_id: str = workspace_fk(index=False)
    kind: TokenKind = enum_field(TokenKind)
    token_hash: str = Field(unique=True, max_length=64)
    scopes: list[str] = json_field(list)
    created_at: datetime = utc_field()
    expires_at: datetime = utc_field(index=True)
    used_at: datetime | None = utc_field(nullable=True)
