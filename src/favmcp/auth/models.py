from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field

from favmcp.db.types import Table, enum_field, json_field, utc_field, workspace_fk


class Role(StrEnum):
    owner = "owner"
    admin = "admin"
    manager = "manager"
    staff = "staff"


class UserStatus(StrEnum):
    active = "active"
    deactivated = "deactivated"


class User(Table, table=True):
    """A person on a workspace's team."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("workspace_id", "email", name="uq_users_workspace_email"),)

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    email: str = Field(max_length=320)
    name: str = Field(max_length=200)
    role: Role = enum_field(Role)
    status: UserStatus = enum_field(UserStatus, UserStatus.active)
    created_at: datetime = utc_field()


class ApiKey(Table, table=True):
    """A fav_mcp_ key. Only its SHA-256 is stored; the secret is shown once."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    user_id: str = Field(foreign_key="users.id", index=True, max_length=40)
    name: str = Field(max_length=120)
    key_hash: str = Field(unique=True, max_length=64)
    display_prefix: str = Field(max_length=24)
    scopes: list[str] = json_field(list)
    # A personal key follows its holder's role (a promotion widens it); otherwise it keeps `scopes`.
    follows_role: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    # The profile (favmcp.registry.profiles) the key is bound to; None: every tool its scopes allow.
    profile: str | None = Field(default=None, max_length=20)
    created_at: datetime = utc_field()
    created_by: str | None = Field(default=None, max_length=40)
    expires_at: datetime | None = utc_field(nullable=True)
    last_used_at: datetime | None = utc_field(nullable=True)
    revoked_at: datetime | None = utc_field(nullable=True)


class ApiKeyOrigin(Table, table=True):
    """An origin (scheme://host[:port]) whose pages may call the REST API with a publishable key (CORS)."""

    __tablename__ = "api_key_origins"

    key_id: str = Field(foreign_key="api_keys.id", ondelete="CASCADE", primary_key=True, max_length=40)
    origin: str = Field(primary_key=True, max_length=200, index=True)
    workspace_id: str = workspace_fk(index=False)


class CodePurpose(StrEnum):
    signup = "signup"
    invite = "invite"


class OneTimeCode(Table, table=True):
    """A 6-digit code sent by email. Stored hashed; at most five tries; single use."""

    __tablename__ = "one_time_codes"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str | None = workspace_fk(nullable=True)
    purpose: CodePurpose = enum_field(CodePurpose)
    email: str = Field(max_length=320)
    code_hash: str = Field(max_length=64)
    attempts: int = 0
    payload: dict[str, Any] = json_field()
    created_at: datetime = utc_field()
    expires_at: datetime = utc_field()
    consumed_at: datetime | None = utc_field(nullable=True)


class RateLimitBucket(Table, table=True):
    """A fixed-window counter, incremented atomically in the database so replicas share it."""

    __tablename__ = "rate_limit_buckets"

    key: str = Field(primary_key=True, max_length=200)
    workspace_id: str | None = workspace_fk(nullable=True, index=False)
    count: int = 0
    expires_at: datetime = utc_field(index=True)
