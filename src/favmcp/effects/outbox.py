"""Writing to the outbox: a side effect is a row in the caller's transaction, delivered after commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from favmcp.config import Settings
from favmcp.core.ids import new_id
from favmcp.effects.models import OutboxMessage


def queue_email(
    session: AsyncSession,
    settings: Settings,
    *,
    to: str,
    subject: str,
    body: str,
    workspace_id: str | None,
    now: datetime,
) -> OutboxMessage:
    msg = OutboxMessage(
        id=new_id("out"),
        workspace_id=workspace_id,
        channel="email",
        recipient=to,
        subject=subject,
        body=body,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(msg)
    return msg
