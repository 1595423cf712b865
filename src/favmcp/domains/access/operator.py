"""Key management for a local operator who has the database (the `favmcp keys` commands)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlmodel import col

from favmcp.app import App
from favmcp.auth import scopes as scope_rules
from favmcp.auth.models import ApiKey, Role, User, UserStatus
from favmcp.domains.access.service import mint_api_key


async def create_key(
    app: App, workspace_id: str, name: str, scopes: list[str] | None, expires_at: datetime | None
) -> str:
    now = app.runner.clock.now()
    async with app.db.transaction() as session:
        owner = (
            (
                await session.execute(
                    select(User)
                    .where(
                        col(User.workspace_id) == workspace_id,
                        col(User.role) == Role.owner,
                        col(User.status) == UserStatus.active,
                    )
                    .order_by(col(User.created_at))
                )
            )
            .scalars()
            .first()
        )
        if owner is None:
            raise ValueError(f"no workspace {workspace_id!r} with an active owner")
        unknown = [s for s in scopes or [] if not scope_rules.is_valid(s)]
        if unknown:
            raise ValueError(f"unknown scopes: {', '.join(unknown)}")
        _, secret = mint_api_key(
            session,
            user=owner,
            name=name,
            scopes=scopes or None,
            random=app.runner.random,
            now=now,
            expires_at=expires_at,
        )
    return secret


async def list_keys(app: App, workspace_id: str) -> list[dict[str, Any]]:
    async with app.db.transaction() as session:
        rows = (await session.execute(select(ApiKey).where(col(ApiKey.workspace_id) == workspace_id))).scalars()
        return [{**k.model_dump(exclude={"key_hash"}), "status": "revoked" if k.revoked_at else "active"} for k in rows]


async def revoke_key(app: App, key_id: str) -> None:
    now = app.runner.clock.now()
    async with app.db.transaction() as session:
        done = await session.execute(
            update(ApiKey).where(col(ApiKey.id) == key_id).values(revoked_at=now).returning(col(ApiKey.id))
        )
        if done.first() is None:
            raise ValueError(f"no API key {key_id!r}")
