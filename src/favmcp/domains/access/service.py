"""Minting keys: used by create_api_key, signup and invite acceptance. scopes=None: the key follows the role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from favmcp.auth import keys
from favmcp.auth.models import ApiKey, User
from favmcp.core.clock import Random
from favmcp.core.ids import new_id


def mint_api_key(
    session: AsyncSession,
    *,
    user: User,
    name: str,
    scopes: list[str] | None,
    random: Random,
    now: datetime,
    expires_at: datetime | None = None,
    created_by: str | None = None,
) -> tuple[ApiKey, str]:
    secret = keys.mint(random)
    row = ApiKey(
        id=new_id("key"),
        workspace_id=user.workspace_id,
        user_id=user.id,
        name=name,
        key_hash=keys.key_hash(secret),
        display_prefix=keys.display_prefix(secret),
        scopes=sorted(scopes or []),
        follows_role=scopes is None,
        created_at=now,
        created_by=created_by,
        expires_at=expires_at,
    )
    session.add(row)
    return row, secret
