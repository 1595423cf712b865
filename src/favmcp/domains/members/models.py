from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, text
from sqlmodel import Field

from favmcp.core.contact import Channel
from favmcp.db.types import Table, amount_field, enum_field, json_field, utc_field, workspace_fk


class MemberStatus(StrEnum):
    active = "active"
    merged = "merged"
    erased = "erased"


class Lifecycle(StrEnum):
    lead = "lead"
    customer = "customer"
    regular = "regular"
    lapsed = "lapsed"
    churned = "churned"


class NoteAuthor(StrEnum):
    staff = "staff"
    customer = "customer"
    imported = "imported"


ACTIVE = text("status = 'active'")
ONLY_ACTIVE: dict[str, Any] = {"sqlite_where": ACTIVE, "postgresql_where": ACTIVE}


class Member(Table, table=True):
    """A customer. Email and phone are unique per workspace among active members (partial unique indexes)."""

    __tablename__ = "members"
    __table_args__ = (
        Index(
            "uq_members_active_email",
            "workspace_id",
            "email",
            unique=True,
            sqlite_where=ACTIVE,
            postgresql_where=ACTIVE,
        ),
        Index(
            "uq_members_active_phone",
            "workspace_id",
            "phone",
            unique=True,
            sqlite_where=ACTIVE,
            postgresql_where=ACTIVE,
        ),
        Index("ix_members_workspace_keyset", "workspace_id", "id"),
        Index("ix_members_workspace_activity", "workspace_id", "last_activity_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    status: MemberStatus = enum_field(MemberStatus, MemberStatus.active)
    merged_into: str | None = Field(default=None, max_length=40, index=True)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=20)
    source: str | None = Field(default=None, max_length=80)
    lifecycle: Lifecycle = enum_field(Lifecycle, Lifecycle.lead)
    birthday: date | None = None
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    last_activity_at: datetime = utc_field()
    # Payments less refunds in the workspace's currency, kept by the payments events (a filter, never a ledger).
    lifetime_spend: int = amount_field(default=0)
    erased_at: datetime | None = utc_field(nullable=True)


class MemberTag(Table, table=True):
    __tablename__ = "member_tags"
    # The tags of one member in one workspace (search_members gathers them per row): with only the workspace's
    # index and the primary key to choose from, SQLite's planner took the workspace's and read all its tags per row.
    __table_args__ = (Index("ix_member_tags_workspace_member", "workspace_id", "member_id"),)

    workspace_id: str = workspace_fk()
    member_id: str = Field(foreign_key="members.id", primary_key=True, max_length=40, ondelete="CASCADE")
    tag: str = Field(primary_key=True, max_length=60, index=True)
    created_at: datetime = utc_field()


class MemberNote(Table, table=True):
    """A note; customer-written and imported notes are untrusted content, returned marked as such."""

    __tablename__ = "member_notes"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    member_id: str = Field(foreign_key="members.id", index=True, max_length=40, ondelete="CASCADE")
    body: str
    author: NoteAuthor = enum_field(NoteAuthor, NoteAuthor.staff)
    author_user_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()


class ConsentEvent(Table, table=True):
    """Append-only consent log; a channel's state is its latest event."""

    __tablename__ = "member_consent_events"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    member_id: str = Field(foreign_key="members.id", index=True, max_length=40, ondelete="CASCADE")
    channel: Channel = enum_field(Channel)
    granted: bool
    source: str = Field(max_length=80)
    recorded_at: datetime = utc_field()


class MemberEvent(Table, table=True):
    """The customer's timeline; every domain appends here."""

    __tablename__ = "member_events"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    member_id: str = Field(foreign_key="members.id", index=True, max_length=40, ondelete="CASCADE")
    kind: str = Field(max_length=40)
    summary: str = Field(max_length=300)
    data: dict[str, Any] = json_field()
    actor_user_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()


class ImportStatus(StrEnum):
    previewed = "previewed"
    committed = "committed"


class MemberImport(Table, table=True):
    """A staged import: the validated rows, waiting for commit_member_import (which applies them once)."""

    __tablename__ = "member_imports"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    status: ImportStatus = enum_field(ImportStatus, ImportStatus.previewed)
    rows: list[Any] = json_field(list)
    report: dict[str, Any] = json_field()
    result: dict[str, Any] = json_field()
    created_by: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()
    committed_at: datetime | None = utc_field(nullable=True)
