"""The authorization server behind the SDK's handlers (`OAuthAuthorizationServerProvider`): registered clients,
grants and their codes and tokens, in the database so that replicas agree.

A grant is what a person allowed one client in one workspace. Its authorization code, access tokens and refresh
tokens are one family: a code or refresh token presented a second time (a copy in someone else's hands) revokes the
grant, and with it every token of the family, as does revocation (RFC 7009).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    RegistrationError,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull
from mcp.shared.auth import OAuthToken as IssuedTokens
from pydantic import AnyUrl
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from favmcp.auth import keys, scopes
from favmcp.auth.credentials import ACCESS_TOKEN_PREFIX
from favmcp.auth.models import Role, User, UserStatus
from favmcp.auth.oauth.documents import DocumentRefused, fetch_client, is_document_url
from favmcp.auth.oauth.models import OAuthAuthorization, OAuthClient, OAuthGrant, OAuthToken, TokenKind
from favmcp.config import Settings
from favmcp.core.clock import Clock, Random
from favmcp.core.errors import AuditSubject
from favmcp.core.ids import new_id
from favmcp.core.sealing import seal, unseal
from favmcp.db.engine import Database
from favmcp.db.scoped import insert_for
from favmcp.registry.models import action_row

log = structlog.get_logger("favmcp.oauth")

ACCESS_TTL = timedelta(hours=1)
REFRESH_TTL = timedelta(days=30)
CODE_TTL = timedelta(minutes=5)
REQUEST_TTL = timedelta(minutes=30)
DOCUMENT_TTL = timedelta(minutes=10)  # a client's metadata document is fetched again after this
DOCUMENT_CLIENT_PREFIX = "ocm_"
CODE_PREFIX = "fav_oac_"
REFRESH_PREFIX = "fav_ort_"
CLIENT_SECRET_SEAL = "oauth_client_secret"
MAX_REDIRECT_URIS = 10
# Schemes that run code or read local files in a browser: never a place to send a code to.
FORBIDDEN_SCHEMES = {"javascript", "data", "file", "vbscript", "about", "blob"}
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}

# Every scope a client may ask for; what clients ask for by default (the levels roles use), strongest first per
# domain. What is granted is capped by the person's role on the consent page.
VALID_SCOPES = sorted(f"{d}:{lv}" for d in scopes.DOMAINS for lv in scopes.LEVELS)
SCOPES_SUPPORTED = sorted(
    {f"{d}:{lv}" for d in scopes.DOMAINS for lv in ("read", "write", "admin")}
    | {s for held in scopes.ROLE_SCOPES.values() for s in held}
)


class Code(AuthorizationCode):
    grant_id: str
    token_id: str
    workspace_id: str


class Refresh(RefreshToken):
    grant_id: str
    token_id: str
    workspace_id: str


class Access(AccessToken):
    grant_id: str


def capped(requested: list[str] | None, role: Role) -> list[str]:
    """The scopes a person of `role` can grant for a request: each asked-for scope, or the role's own level in
    that domain when the role holds less; the strongest per domain. No scope asked for: the role's scopes."""
    held = scopes.role_scopes(role)
    granted: set[str] = set()
    for scope in held if requested is None else requested:
        if scopes.grants(held, scope):
            granted.add(scope)
        else:
            domain = scope.partition(":")[0]
            granted.update(h for h in held if h.partition(":")[0] == domain)
    return sorted(s for s in granted if not any(o != s and scopes.grants([o], s) for o in granted))


def check_redirect_uri(uri: str) -> str | None:
    """Why a redirect URI cannot be registered, or None: HTTPS, plain HTTP on loopback only, or a native app's own
    scheme (RFC 8252)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if parts.fragment:
        return f"{uri}: a redirect URI has no fragment"
    if scheme in FORBIDDEN_SCHEMES:
        return f"{uri}: the {scheme} scheme is not allowed"
    if scheme == "http" and (parts.hostname or "") not in LOOPBACK:
        return f"{uri}: plain http is for loopback addresses only; use https"
    if scheme in {"http", "https"} and not parts.hostname:
        return f"{uri}: no host"
    return None


def client_row_id(client_id: str) -> str:
    """The oauth_clients id of a client: its own, or for a metadata document's URL a digest of it."""
    if not is_document_url(client_id):
        return client_id
    return DOCUMENT_CLIENT_PREFIX + hashlib.sha256(client_id.encode()).hexdigest()[:36]


def _unusable(client: OAuthClientInformationFull) -> str | None:
    """Why a client cannot be served: its redirect URIs, or scopes favmcp does not know."""
    uris = [str(u) for u in client.redirect_uris or []]
    if not uris or len(uris) > MAX_REDIRECT_URIS:
        return f"register 1 to {MAX_REDIRECT_URIS} redirect URIs"
    problems = [p for uri in uris if (p := check_redirect_uri(uri)) is not None]
    unknown = [s for s in (client.scope or "").split() if not scopes.is_valid(s)]
    if unknown:
        problems.append(f"unknown scopes: {', '.join(unknown)}")
    return "; ".join(problems) or None


def _new_secret(random: Random, prefix: str) -> str:
    return prefix + random.token(30)[:40]


class Provider(OAuthAuthorizationServerProvider[Code, Refresh, Access]):
    """favmcp as the SDK's authorization server provider; the sign-in page's steps are in signin.py. The
    identity-assertion grant (SEP-990) keeps the SDK's refusal."""

    def __init__(self, db: Database, settings: Settings, clock: Clock, random: Random) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.random = random

    # Clients (RFC 7591)

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        if is_document_url(client_id):
            return await self._document_client(client_id)
        if client_id.startswith(DOCUMENT_CLIENT_PREFIX):  # a row's id, never one a client presents
            return None
        return await self.stored_client(client_id)

    async def stored_client(self, row_id: str) -> OAuthClientInformationFull | None:
        """The client behind a stored id (a document's client under its URL)."""
        async with self.db.read_sessions() as session:
            row = await session.get(OAuthClient, row_id)
        if row is None:
            return None
        secret = unseal(self.settings.secret_keys, CLIENT_SECRET_SEAL, row.secret) if row.secret else None
        client_id = row.info.get("client_id", row.id)
        return OAuthClientInformationFull.model_validate({**row.info, "client_id": client_id, "client_secret": secret})

    async def _document_client(self, url: str) -> OAuthClientInformationFull | None:
        """A client known by its metadata document: the copy fetched in the last minutes, or a fresh fetch."""
        now = self.clock.now()
        async with self.db.read_sessions() as session:
            row = await session.get(OAuthClient, client_row_id(url))
        if row is not None and row.created_at > now - DOCUMENT_TTL:
            return OAuthClientInformationFull.model_validate({**row.info, "client_id": url})
        try:
            client = await fetch_client(url, allow_private=self.settings.allow_private_targets)
            if (problem := _unusable(client)) is not None:
                raise DocumentRefused(problem)
        except DocumentRefused as exc:
            log.warning("oauth_client_document_refused", reason=str(exc))
            return None
        if client.scope is None:
            client.scope = " ".join(VALID_SCOPES)
        info = client.model_dump(mode="json", exclude={"client_secret"}, exclude_none=True)
        table = OAuthClient.__table__  # type: ignore[attr-defined]
        async with self.db.transaction() as session:
            await session.execute(
                insert_for(session, table)
                .values(id=client_row_id(url), secret=None, info=info, created_at=now)
                .on_conflict_do_update(index_elements=["id"], set_={"info": info, "created_at": now})
            )
        return client

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        if (problem := _unusable(client_info)) is not None:
            raise RegistrationError("invalid_redirect_uri", problem)
        secret = client_info.client_secret
        row = OAuthClient(
            id=client_info.client_id,
            secret=seal(self.settings.secret_key, CLIENT_SECRET_SEAL, secret) if secret else None,
            info=client_info.model_dump(mode="json", exclude={"client_id", "client_secret"}, exclude_none=True),
            created_at=self.clock.now(),
        )
        async with self.db.transaction() as session:
            session.add(row)

    # Authorization: the request is kept; the person answers it on the sign-in page.

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        now = self.clock.now()
        row = OAuthAuthorization(
            id=new_id("oar"),
            client_id=client_row_id(client.client_id),
            params=params.model_dump(mode="json"),
            created_at=now,
            expires_at=now + REQUEST_TTL,
        )
        async with self.db.transaction() as session:
            session.add(row)
        return f"/oauth/authorize/{row.id}"

    async def grant(
        self,
        session: AsyncSession,
        request: OAuthAuthorization,
        user: User,
        resource: str,
        profile: str,
        now: datetime,
    ) -> tuple[str, list[str]]:
        """The person allowed the request: a grant bound to the profile they chose, and its authorization code
        (returned with the scopes)."""
        params = AuthorizationParams.model_validate(request.params)
        granted = capped(params.scopes, user.role)
        grant = OAuthGrant(
            id=new_id("ogr"),
            workspace_id=user.workspace_id,
            user_id=user.id,
            client_id=request.client_id,
            scopes=granted,
            resource=resource,
            profile=profile,
            code_challenge=params.code_challenge,
            redirect_uri=str(params.redirect_uri),
            redirect_uri_explicit=params.redirect_uri_provided_explicitly,
            created_at=now,
        )
        session.add(grant)
        await session.flush()
        code = _new_secret(self.random, CODE_PREFIX)
        session.add(self._token(grant, TokenKind.code, code, granted, now, CODE_TTL))
        self._audit(
            session, grant, "oauth:grant", {"client_id": grant.client_id, "scopes": granted, "profile": profile}, now
        )
        return code, granted

    async def load_authorization_code(self, client: OAuthClientInformationFull, authorization_code: str) -> Code | None:
        found = await self._lookup(authorization_code, TokenKind.code)
        if found is None:
            return None
        token, grant = found
        if grant.client_id != client_row_id(client.client_id):
            return None
        if token.used_at is not None:  # a code presented twice: the first exchange's tokens go too (RFC 6749 §4.1.2)
            await self._revoke(grant, "oauth:code_reused")
            return None
        if grant.revoked_at is not None:
            return None
        return Code(
            code=authorization_code,
            scopes=token.scopes,
            expires_at=token.expires_at.timestamp(),
            client_id=client.client_id,
            code_challenge=grant.code_challenge,
            redirect_uri=AnyUrl(grant.redirect_uri),
            redirect_uri_provided_explicitly=grant.redirect_uri_explicit,
            resource=grant.resource,
            subject=grant.user_id,
            grant_id=grant.id,
            token_id=token.id,
            workspace_id=grant.workspace_id,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: Code
    ) -> IssuedTokens:
        return await self._rotate(authorization_code.grant_id, authorization_code.token_id, authorization_code.scopes)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> Refresh | None:
        found = await self._lookup(refresh_token, TokenKind.refresh)
        if found is None:
            return None
        token, grant = found
        if grant.client_id != client_row_id(client.client_id):
            return None
        if token.used_at is not None:  # rotated already: someone holds a copy, so the whole family ends
            await self._revoke(grant, "oauth:refresh_reused")
            return None
        if grant.revoked_at is not None or not await self._holder_active(grant):
            return None
        return Refresh(
            token=refresh_token,
            client_id=client.client_id,
            scopes=token.scopes,
            expires_at=int(token.expires_at.timestamp()),
            resource=grant.resource,
            subject=grant.user_id,
            grant_id=grant.id,
            token_id=token.id,
            workspace_id=grant.workspace_id,
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: Refresh, scopes: list[str]
    ) -> IssuedTokens:
        return await self._rotate(refresh_token.grant_id, refresh_token.token_id, scopes)

    async def load_access_token(self, token: str) -> Access | None:
        found = await self._lookup(token, TokenKind.access)
        if found is None:
            return None
        row, grant = found
        if grant.revoked_at is not None or row.expires_at <= self.clock.now():
            return None
        return Access(
            token=token,
            client_id=await self._client_id(grant.client_id),
            scopes=row.scopes,
            expires_at=int(row.expires_at.timestamp()),
            resource=grant.resource,
            subject=grant.user_id,
            grant_id=grant.id,
        )

    async def revoke_token(self, token: Access | Refresh) -> None:
        async with self.db.read_sessions() as session:
            grant = await session.get(OAuthGrant, token.grant_id)
        if grant is not None:
            await self._revoke(grant, "oauth:revoke")

    # Internals

    async def _rotate(self, grant_id: str, spent_id: str, granted: list[str]) -> IssuedTokens:
        """Spend a code or refresh token once and issue the next access and refresh token. Two requests racing with
        one token: the loser is a reuse, and revokes the grant."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            grant = await session.get(OAuthGrant, grant_id)
            spent = await session.execute(
                update(OAuthToken)
                .where(col(OAuthToken.id) == spent_id, col(OAuthToken.used_at).is_(None))
                .values(used_at=now)
                .returning(col(OAuthToken.id))
            )
            valid = grant is not None and grant.revoked_at is None and spent.first() is not None
            if valid:
                assert grant is not None
                access = _new_secret(self.random, ACCESS_TOKEN_PREFIX)
                refresh = _new_secret(self.random, REFRESH_PREFIX)
                session.add(self._token(grant, TokenKind.access, access, granted, now, ACCESS_TTL))
                session.add(self._token(grant, TokenKind.refresh, refresh, granted, now, REFRESH_TTL))
            elif grant is not None:
                await self._revoke_in(session, grant, "oauth:token_reused", now)
        if not valid:
            raise TokenError("invalid_grant", "This grant is no longer valid; authorize again.")
        return IssuedTokens(
            access_token=access,
            expires_in=int(ACCESS_TTL.total_seconds()),
            scope=" ".join(granted),
            refresh_token=refresh,
        )

    def _token(
        self, grant: OAuthGrant, kind: TokenKind, secret: str, granted: list[str], now: datetime, ttl: timedelta
    ) -> OAuthToken:
        return OAuthToken(
            id=new_id("otk"),
            grant_id=grant.id,
            workspace_id=grant.workspace_id,
            kind=kind,
            token_hash=keys.key_hash(secret),
            scopes=granted,
            created_at=now,
            expires_at=now + ttl,
        )

    async def _lookup(self, secret: str, kind: TokenKind) -> tuple[OAuthToken, OAuthGrant] | None:
        stmt = (
            select(OAuthToken, OAuthGrant)
            .join(OAuthGrant, col(OAuthGrant.id) == col(OAuthToken.grant_id))
            .where(col(OAuthToken.token_hash) == keys.key_hash(secret), col(OAuthToken.kind) == kind)
        )
        async with self.db.read_sessions() as session:
            row = (await session.execute(stmt)).first()
        return (row[0], row[1]) if row is not None else None

    async def _client_id(self, row_id: str) -> str:
        """The id a client presents: a metadata document's URL is kept in its row."""
        client = await self.stored_client(row_id) if row_id.startswith(DOCUMENT_CLIENT_PREFIX) else None
        return client.client_id if client is not None else row_id

    async def _holder_active(self, grant: OAuthGrant) -> bool:
        async with self.db.read_sessions() as session:
            user = await session.get(User, grant.user_id)
        return user is not None and user.status == UserStatus.active

    async def _revoke(self, grant: OAuthGrant, why: str) -> None:
        async with self.db.transaction() as session:
            await self._revoke_in(session, grant, why, self.clock.now())

    async def _revoke_in(self, session: AsyncSession, grant: OAuthGrant, why: str, now: datetime) -> None:
        revoked = await session.execute(
            update(OAuthGrant)
            .where(col(OAuthGrant.id) == grant.id, col(OAuthGrant.revoked_at).is_(None))
            .values(revoked_at=now)
            .returning(col(OAuthGrant.id))
        )
        if revoked.first() is not None:
            self._audit(session, grant, why, {"client_id": grant.client_id}, now)

    def _audit(
        self, session: AsyncSession, grant: OAuthGrant, what: str, changes: dict[str, Any], now: datetime
    ) -> None:
        subject = AuditSubject(grant.workspace_id, grant.user_id, grant.id)
        session.add(action_row(subject, what, changes, now))
