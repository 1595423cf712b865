"""Who is calling: an API key resolved against the database on every call (revocation is immediate)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from favmcp.auth import keys, scopes
from favmcp.auth.models import ApiKey, Role, User, UserStatus
from favmcp.core.errors import AuditSubject, unauthenticated
from favmcp.db.tenancy import Workspace

LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Caller:
    workspace_id: str | None = None
    user_id: str | None = None
    key_id: str | None = None
    role: Role | None = None
    scopes: tuple[str, ...] = ()
    key_expires_at: datetime | None = None
    user_name: str | None = None
    workspace_name: str | None = None
    last_used_at: datetime | None = None
    follows_role: bool = False

    @property
    def anonymous(self) -> bool:
        return self.key_id is None

    def needs_touch(self, now: datetime) -> bool:
        """Whether last_used_at is older than its resolution (so most calls write nothing)."""
        return not self.anonymous and (self.last_used_at is None or self.last_used_at < now - LAST_USED_RESOLUTION)


ANONYMOUS = Caller()


async def resolve(session: AsyncSession, secret: str | None, now: datetime) -> Caller:
    """One query: the key, its person and workspace. Checked on every call, so revocation is immediate."""
    if not secret:
        return ANONYMOUS
    if not keys.looks_like_key(secret):
        raise unauthenticated("That is not a fav_mcp_ API key.")
    return await _caller_where(session, col(ApiKey.key_hash) == keys.key_hash(secret), now)


async def resolve_key_id(session: AsyncSession, key_id: str | None, workspace_id: str, now: datetime) -> Caller:
    """The caller behind a stored key id (an approved request runs as its requester), checked as on every call."""
    if key_id is None:
        raise unauthenticated("The request was made without an API key.")
    where = (col(ApiKey.id) == key_id) & (col(ApiKey.workspace_id) == workspace_id)
    return await _caller_where(session, where, now)


async def _caller_where(session: AsyncSession, where: Any, now: datetime) -> Caller:
    row = (
        await session.execute(
            select(ApiKey, col(User.name), col(User.role), col(User.status), col(Workspace.name))
            .join(User, col(User.id) == col(ApiKey.user_id))
            .join(Workspace, col(Workspace.id) == col(ApiKey.workspace_id))
            .where(where)
        )
    ).first()
    if row is None:
        raise unauthenticated("This API key is not valid.")
    key, user_name, role, status, workspace_name = row
    refusal = None
    if key.revoked_at is not None:
        refusal = "This API key has been revoked."
    elif key.expires_at is not None and key.expires_at <= now:
        refusal = "This API key has expired."
    elif status != UserStatus.active:
        refusal = "The person this API key belongs to has been deactivated."
    if refusal is not None:
        error = unauthenticated(refusal)
        error.subject = AuditSubject(key.workspace_id, key.user_id, key.id)
        raise error
    return Caller(
        workspace_id=key.workspace_id,
        user_id=key.user_id,
        key_id=key.id,
        role=role,
        scopes=tuple(effective_scopes(key, role)),
        follows_role=key.follows_role,
        key_expires_at=key.expires_at,
        user_name=user_name,
        workspace_name=workspace_name,
        last_used_at=key.last_used_at,
    )


def effective_scopes(key: ApiKey, role: Role) -> list[str]:
    """A key never exceeds its holder's current role; a personal key is exactly the role."""
    held = scopes.role_scopes(role)
    return sorted(held) if key.follows_role else scopes.intersect(key.scopes, held)


async def touch(session: AsyncSession, caller: Caller, now: datetime) -> None:
    """Record the key's last use (at most once a minute per key)."""
    await session.execute(
        update(ApiKey)
        .where(
            col(ApiKey.id) == caller.key_id,
            or_(col(ApiKey.last_used_at).is_(None), col(ApiKey.last_used_at) < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )
