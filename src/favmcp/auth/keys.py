"""API keys: `fav_mcp_` (secret) or `fav_pub_` (publishable, safe in a web page) and 40 random characters; only a
SHA-256 of the whole key is kept."""

from __future__ import annotations

import hashlib
from datetime import datetime

from favmcp.auth.models import ApiKey, ApiKeyOrigin, User
from favmcp.core.clock import Random
from favmcp.core.ids import new_id
from favmcp.db.scoped import WorkspaceDB

PREFIX = "fav_mcp_"
PUBLISHABLE_PREFIX = "fav_pub_"
# What a publishable key holds, bound to the publishable profile's tools besides.
PUBLISHABLE_SCOPES = ["bookings:write", "content:read", "services:read"]


def mint(random: Random, prefix: str = PREFIX) -> str:
    return prefix + random.token(30)[:40]


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[:12] + "…"


def mask(secret: str) -> str:
    return secret[:12] + "…" + secret[-4:]


def looks_like_key(value: str) -> bool:
    return value.startswith((PREFIX, PUBLISHABLE_PREFIX)) and len(value) >= len(PREFIX) + 32


def is_publishable(value: str) -> bool:
    return value.startswith(PUBLISHABLE_PREFIX)


def mint_api_key(
    db: WorkspaceDB,
    *,
    user: User,
    name: str,
    scopes: list[str] | None,
    random: Random,
    now: datetime,
    expires_at: datetime | None = None,
    created_by: str | None = None,
    profile: str | None = None,
    origins: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """A new key of `user`; scopes=None makes a personal key that follows the holder's role; `profile` binds it to
    a tool profile. With `origins` it is a publishable key: the pages of those origins may call with it."""
    secret = mint(random, PUBLISHABLE_PREFIX if origins is not None else PREFIX)
    row = ApiKey(
        id=new_id("key"),
        workspace_id=user.workspace_id,
        user_id=user.id,
        name=name,
        key_hash=key_hash(secret),
        display_prefix=display_prefix(secret),
        scopes=sorted(scopes or []),
        follows_role=scopes is None,
        created_at=now,
        created_by=created_by,
        expires_at=expires_at,
        profile=profile,
    )
    db.add(row)
    for origin in sorted(set(origins or [])):
        db.add(ApiKeyOrigin(key_id=row.id, workspace_id=row.workspace_id, origin=origin))
    return row, secret
