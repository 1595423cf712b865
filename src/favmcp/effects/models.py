from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Field, SQLModel

from favmcp.db.types import enum_field, json_field, utc_field, workspace_fk


class OutboxStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


class OutboxMessage(SQLModel, table=True):
    """A side effect waiting to leave, written in the same transaction as the change that causes it."""

    __tablename__ = "outbox"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str | None = workspace_fk(nullable=True)
    channel: str = Field(max_length=20)
    recipient: str = Field(max_length=320)
    subject: str = Field(max_length=300)
    body: str
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
