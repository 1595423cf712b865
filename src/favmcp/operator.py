"""Key management for a local operator who has the database (the `favmcp keys` commands).

These bypass the runner (the operator has no key), so each writes its own audit row, marked `operator:`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from favmcp.app import App
from favmcp.auth import scopes as scope_rules
from favmcp.auth.keys import mint_api_key
from favmcp.auth.models import ApiKey, Role, User, UserStatus
from favmcp.core.errors import AuditSubject
from favmcp.db.scoped import WorkspaceDB
from favmcp.registry.models import action_row


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
        key, secret = mint_api_key(
            WorkspaceDB(session, workspace_id),
            user=owner,
            name=name,
            scopes=scopes or None,
            random=app.runner.random,
            now=now,
            expires_at=expires_at,
        )
        _audit(session, workspace_id, "operator:keys create", {"key_id": key.id}, now)
    return secret


async def list_keys(app: App, workspace_id: str) -> list[dict[str, Any]]:
    async with app.db.transaction() as session:
        rows = (await session.execute(select(ApiKey).where(col(ApiKey.workspace_id) == workspace_id))).scalars()
        return [{**k.model_dump(exclude={"key_hash"}), "status": "revoked" if k.revoked_at else "active"} for k in rows]


async def revoke_key(app: App, key_id: str) -> None:
    now = app.runner.clock.now()
    async with app.db.transaction() as session:
        done = await session.execute(
            update(ApiKey).where(col(ApiKey.id) == key_id).values(revoked_at=now).returning(col(ApiKey.workspace_id))
        )
        workspace_id = done.scalar_one_or_none()
        if workspace_id is None:
            raise ValueError(f"no API key {key_id!r}")
        _audit(session, workspace_id, "operator:keys revoke", {"key_id": key_id}, now)


def _audit(session: AsyncSession, workspace_id: str, action: str, changes: dict[str, Any], now: datetime) -> None:
    digest = hashlib.sha256(json.dumps(changes, sort_keys=True).encode()).hexdigest()
    session.add(action_row(AuditSubject(workspace_id, None, None), action, changes, now, digest))
