from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from favmcp.auth.models import Role
from favmcp.db.types import enum_field, utc_field, workspace_fk


class InviteStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    revoked = "revoked"


class TeamInvite(SQLModel, table=True):
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
