from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field

from favmcp.core.errors import AuditSubject
from favmcp.core.ids import new_id
from favmcp.db.types import Table, json_field, utc_field, workspace_fk


class AuditEvent(Table, table=True):
    """One row per mutating call, written in the call's own transaction."""

    __tablename__ = "audit_events"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    user_id: str | None = Field(default=None, max_length=40)
    credential_id: str | None = Field(default=None, max_length=40)
    tool: str = Field(max_length=80, index=True)
    args_hash: str = Field(max_length=64)
    outcome: str = Field(max_length=40)
    request_id: str = Field(max_length=40)
    changes: dict[str, Any] = json_field()
    created_at: datetime = utc_field(index=True)


def audit_row(
    subject: AuditSubject,
    tool: str,
    digest: str,
    outcome: str,
    request_id: str,
    changes: dict[str, Any],
    now: datetime,
) -> AuditEvent:
    """The audit row of a tool call: `digest` is the hash of its arguments."""
    return AuditEvent(
        id=new_id("aud"),
        workspace_id=subject.workspace_id,
        user_id=subject.user_id,
        credential_id=subject.key_id,
        tool=tool,
        args_hash=digest,
        outcome=outcome,
        request_id=request_id,
        changes=changes,
        created_at=now,
    )


def action_row(
    subject: AuditSubject, action: str, changes: dict[str, Any], now: datetime, digest: str = ""
) -> AuditEvent:
    """The audit row of an action taken outside the tools (an operator's command, an OAuth step): it succeeded, and
    it is a request of its own."""
    return audit_row(subject, action, digest, "ok", new_id("req"), changes, now)


class IdempotencyRecord(Table, table=True):
    """The first outcome of a call with an idempotency key, replayed for retries for 24 hours."""

    __tablename__ = "idempotency_records"

    scope: str = Field(primary_key=True, max_length=80)
    key: str = Field(primary_key=True, max_length=200)
    workspace_id: str | None = workspace_fk(nullable=True)
    tool: str = Field(max_length=80)
    args_hash: str = Field(max_length=64)
    is_error: bool = False
    response: dict[str, Any] = json_field()
    created_at: datetime = utc_field()
    expires_at: datetime = utc_field(index=True)


class UsedConfirmation(Table, table=True):
    """Spent confirmation tokens: the primary key makes each token single-use under concurrency."""

    __tablename__ = "used_confirmations"

    token_id: str = Field(primary_key=True, max_length=40)
    workspace_id: str | None = workspace_fk(nullable=True)
    used_at: datetime = utc_field()


class EventRecord(Table, table=True):
    """The log of domain events, written in the transaction that caused them; webhooks fan out from here."""

    __tablename__ = "domain_events"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    name: str = Field(max_length=80, index=True)
    payload: dict[str, Any] = json_field()
    request_id: str = Field(max_length=40)
    tool: str = Field(max_length=80)
    created_at: datetime = utc_field()


class StateTransition(Table, table=True):
    """One row per lifecycle change (who moved what from which state to which, in which call)."""

    __tablename__ = "state_transitions"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    entity: str = Field(max_length=40)
    entity_id: str = Field(max_length=40, index=True)
    from_state: str = Field(max_length=20)
    to_state: str = Field(max_length=20)
    tool: str = Field(max_length=80)
    request_id: str = Field(max_length=40)
    actor_user_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()


class JobRun(Table, table=True):
    """When a job is next due for a workspace. A worker claims a run by moving next_run_at forward with one
    conditional UPDATE, so of several workers exactly one runs each period."""

    __tablename__ = "job_runs"

    workspace_id: str = Field(primary_key=True, foreign_key="workspaces.id", max_length=40, ondelete="CASCADE")
    job: str = Field(primary_key=True, max_length=80)
    next_run_at: datetime = utc_field()
    last_started_at: datetime | None = utc_field(nullable=True)
    last_outcome: str | None = Field(default=None, max_length=40)
