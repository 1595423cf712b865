"""Writing to the outbox: a side effect is a row in the caller's transaction, delivered after commit.

Bodies carry secrets (signup codes, invite tokens), so they are stored sealed with the server secret and opened
only to be sent, or shown to a local operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from favmcp.config import Settings
from favmcp.core.ids import new_id
from favmcp.core.sealing import seal, unseal
from favmcp.effects.models import OutboxKind, OutboxMessage

SEAL_PURPOSE = "outbox"


def queue_email(
    session: AsyncSession,
    settings: Settings,
    *,
    to: str,
    subject: str,
    body: str,
    workspace_id: str | None,
    now: datetime,
    kind: OutboxKind = OutboxKind.system,
    html: str | None = None,
) -> OutboxMessage:
    msg = OutboxMessage(
        id=new_id("out"),
        workspace_id=workspace_id,
        channel="email",
        kind=kind,
        recipient=to,
        subject=subject,
        body=seal(settings.secret_key, SEAL_PURPOSE, body),
        html=seal(settings.secret_key, SEAL_PURPOSE, html) if html else "",
        next_attempt_at=now,
        created_at=now,
    )
    session.add(msg)
    return msg


def open_body(settings_or_keys: Settings | bytes | Sequence[bytes], message: OutboxMessage) -> str:
    """The text of a message; empty once its body was purged after delivery."""
    return _open(settings_or_keys, message.body)


def open_html(settings_or_keys: Settings | bytes | Sequence[bytes], message: OutboxMessage) -> str | None:
    """The HTML alternative of a message, if it has one (and it was not purged)."""
    return _open(settings_or_keys, message.html) or None


def _open(settings_or_keys: Settings | bytes | Sequence[bytes], sealed: str) -> str:
    if not sealed:
        return ""
    keys = settings_or_keys.secret_keys if isinstance(settings_or_keys, Settings) else settings_or_keys
    return str(unseal(keys, SEAL_PURPOSE, sealed))
