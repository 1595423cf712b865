from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Field

from favmcp.auth.models import Role
from favmcp.db.types import Table, enum_field, json_field, utc_field, workspace_fk


class InviteStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    revoked = "revoked"


class TeamInvite(Table, table=True):
    """An invitation by email with a role; the token is stored hashed and works once."""

    __tablename__ = "team_invites"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    email: str = Field(max_length=320)
    name: str | None = Field(default=None, max_length=200)
    role: Role = enum_field(Role)
    token_hash: str = Field(unique=True, max_length=64)
    status: InviteStatus = enum_field(InviteStatus, InviteStatus.pending)
    invited_by: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()
    expires_at: datetime = utc_field()
    accepted_at: datetime | None = utc_field(nullable=True)
    user_id: str | None = Field(default=None, max_length=40)


class StaffSchedule(Table, table=True):
    """A team member's weekly working hours (local time of the workspace), replaced as a whole."""

    __tablename__ = "staff_schedules"

    user_id: str = Field(foreign_key="users.id", primary_key=True, max_length=40, ondelete="CASCADE")
    workspace_id: str = workspace_fk()
    weekly: dict[str, Any] = json_field()
    updated_at: datetime = utc_field()


class StaffTimeOff(Table, table=True):
    """A block of time a team member is away (leave, training); stored in UTC."""

    __tablename__ = "staff_time_off"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    user_id: str = Field(foreign_key="users.id", index=True, max_length=40, ondelete="CASCADE")
    starts_at: datetime = utc_field()
    ends_at: datetime = utc_field()
    reason: str | None = Field(default=None, max_length=200)
    created_by: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()
    # A removed block stays as a tombstone, so repeating the removal answers as the first time did.
    removed_at: datetime | None = utc_field(nullable=True)
