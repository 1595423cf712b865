from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Field

from favmcp.db.types import Table, enum_field, json_field, utc_field, workspace_fk


class Undeliverable(Exception):
    """A provider refused a message for good (a bad request, a revoked key): retrying cannot help."""


class OutboxStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


class OutboxKind(StrEnum):
    """System mail (codes, invites) is worth nothing once delivered, so its body is purged; a conversation with
    a customer is the business's record and is kept."""

    system = "system"
    customer = "customer"


class OutboxMessage(Table, table=True):
    """A side effect waiting to leave, written in the same transaction as the change that causes it."""

    __tablename__ = "outbox"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str | None = workspace_fk(nullable=True)
    channel: str = Field(max_length=20)
    kind: OutboxKind = enum_field(OutboxKind, OutboxKind.system)
    recipient: str = Field(max_length=320)
    subject: str = Field(max_length=300)
    body: str  # sealed with the server secret (effects.outbox.open_body reads it); empty once purged
    html: str = Field(default="")  # an HTML alternative of the body, sealed likewise; empty for plain text only
    payload: dict[str, Any] = json_field()
    status: OutboxStatus = enum_field(OutboxStatus, OutboxStatus.pending, index=True)
    attempts: int = 0
    next_attempt_at: datetime = utc_field(index=True)
    locked_until: datetime | None = utc_field(nullable=True)
    locked_by: str | None = Field(default=None, max_length=60)
    last_error: str | None = None
    delivered_via: str | None = Field(default=None, max_length=20)
    created_at: datetime = utc_field()
    sent_at: datetime | None = utc_field(nullable=True)
