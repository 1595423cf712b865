"""Who is calling: an API key resolved against the database on every call (revocation is immediate)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from favmcp.auth import keys, scopes
from favmcp.auth.models import ApiKey, Role, User, UserStatus
from favmcp.core.errors import unauthenticated

LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Caller:
    workspace_id: str | None = None
    user_id: str | None = None
    key_id: str | None = None
    role: Role | None = None
    scopes: tuple[str, ...] = ()
    key_expires_at: datetime | None = None

    @property
    def anonymous(self) -> bool:
        return self.key_id is None


ANONYMOUS = Caller()


async def resolve(session: AsyncSession, secret: str | None, now: datetime) -> Caller:
    if not secret:
        return ANONYMOUS
    if not keys.looks_like_key(secret):
        raise unauthenticated("That is not a fav_mcp_ API key.")
    row = (
        await session.execute(
            select(ApiKey, User)
            .join(User, col(User.id) == col(ApiKey.user_id))
            .where(col(ApiKey.key_hash) == keys.key_hash(secret))
        )
    ).first()
    if row is None:
        raise unauthenticated("This API key is not valid.")
    key, user = row
    if key.revoked_at is not None:
        raise unauthenticated("This API key has been revoked.")
    if key.expires_at is not None and key.expires_at <= now:
        raise unauthenticated("This API key has expired.")
    if user.status != UserStatus.active:
        raise unauthenticated("The person this API key belongs to has been deactivated.")
    await session.execute(
        update(ApiKey)
        .where(
            col(ApiKey.id) == key.id,
            or_(col(ApiKey.last_used_at).is_(None), col(ApiKey.last_used_at) < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )
    return Caller(
        workspace_id=key.workspace_id,
        user_id=user.id,
        key_id=key.id,
        role=user.role,
        scopes=tuple(scopes.intersect(key.scopes, scopes.role_scopes(user.role))),
        key_expires_at=key.expires_at,
    )
