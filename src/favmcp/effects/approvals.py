"""The approval queue: a customer-facing call that the owner's policy holds back waits here, exactly as asked,
until a person approves it (then it runs once, as the requester) or rejects it, or it expires.

The runner's `approval` gate writes requests; the approvals domain lists and decides them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field
from sqlmodel import Field as Column

from favmcp.core.contact import Channel
from favmcp.core.events import DomainEvent
from favmcp.core.ids import new_id
from favmcp.core.lifecycle import Lifecycle
from favmcp.core.schema import Schema
from favmcp.db.scoped import WorkspaceDB
from favmcp.db.types import Table, enum_field, json_field, utc_field, workspace_fk

DEFAULT_EXPIRY = timedelta(hours=72)


class ApprovalStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"
    executed = "executed"
    failed = "failed"


class SendKind(StrEnum):
    transactional = "transactional"
    marketing = "marketing"
    free_text = "free_text"


@dataclass(frozen=True)
class ApprovalAsk:
    """What a gated call would do, rendered for the person who decides: channel, kind, recipient and summary."""

    channel: Channel
    kind: SendKind
    recipient: str
    summary: str


class ApprovalRequest(Table, table=True):
    __tablename__ = "approval_requests"

    id: str = Column(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    status: ApprovalStatus = enum_field(ApprovalStatus, ApprovalStatus.pending, index=True)
    tool: str = Column(max_length=80)
    arguments: dict[str, Any] = json_field()
    args_hash: str = Column(max_length=64)
    channel: Channel = enum_field(Channel)
    kind: SendKind = enum_field(SendKind)
    recipient: str = Column(max_length=320)
    summary: str
    requested_by_user_id: str | None = Column(default=None, max_length=40)
    requested_by_key_id: str | None = Column(default=None, max_length=40)
    decided_by_user_id: str | None = Column(default=None, max_length=40)
    decided_at: datetime | None = utc_field(nullable=True)
    reason: str | None = None
    result: dict[str, Any] = json_field()
    created_at: datetime = utc_field()
    expires_at: datetime = utc_field()


def _waits_by_default(kind: SendKind) -> bool:
    """Marketing and free text wait for a person; transactional sends (receipts, reminders) run at once."""
    return kind is not SendKind.transactional


class PolicyRule(Schema):
    channel: Channel
    kind: SendKind
    needs_approval: bool


class PolicyRules(Schema):
    """Which sends wait for a person. Defaults: marketing and free text wait; transactional runs at once."""

    rules: list[PolicyRule] = Field(
        default_factory=lambda: [
            PolicyRule(channel=channel, kind=kind, needs_approval=_waits_by_default(kind))
            for channel in Channel
            for kind in SendKind
        ]
    )
    allow_self_approval: bool = False
    expiry_hours: int = Field(default=int(DEFAULT_EXPIRY.total_seconds() // 3600), ge=1, le=24 * 30)

    def needs_approval(self, channel: Channel, kind: SendKind) -> bool:
        found = [r.needs_approval for r in self.rules if r.channel == channel and r.kind == kind]
        return found[-1] if found else _waits_by_default(kind)


class ApprovalPolicy(Table, table=True):
    __tablename__ = "approval_policies"

    workspace_id: str = Column(primary_key=True, foreign_key="workspaces.id", max_length=40, ondelete="CASCADE")
    rules: dict[str, Any] = json_field()
    updated_at: datetime = utc_field()


class ApprovalRequested(DomainEvent):
    name = "approval.requested"

    approval_id: str
    tool: str


class ApprovalDecided(DomainEvent):
    """approved, rejected, expired, executed or failed."""

    name = "approval.decided"

    approval_id: str
    status: ApprovalStatus


def _decided(approval_id: str, _from: ApprovalStatus, to: ApprovalStatus) -> DomainEvent:
    return ApprovalDecided(approval_id=approval_id, status=to)


APPROVAL_LIFECYCLE = Lifecycle(
    entity="approval request",
    states=ApprovalStatus,
    transitions={
        ApprovalStatus.pending: {
            ApprovalStatus.approved: "approve_request",
            ApprovalStatus.rejected: "reject_request",
            ApprovalStatus.expired: "approve_request",
        },
        ApprovalStatus.approved: {
            ApprovalStatus.executed: "approve_request",
            ApprovalStatus.failed: "approve_request",
        },
    },
    events={status: _decided for status in ApprovalStatus if status is not ApprovalStatus.pending},
)
APPROVAL_EVENTS: list[type[DomainEvent]] = [ApprovalRequested, ApprovalDecided]


async def policy_of(db: WorkspaceDB) -> PolicyRules:
    stored = await db.first(db.select(ApprovalPolicy))
    return PolicyRules.model_validate(stored.rules) if stored else PolicyRules()


async def hold(
    db: WorkspaceDB,
    *,
    tool: str,
    arguments: dict[str, Any],
    args_hash: str,
    ask: ApprovalAsk,
    requested_by_user_id: str | None,
    requested_by_key_id: str | None,
    now: datetime,
) -> ApprovalRequest:
    """Store a call, exactly as validated, to wait for a person's decision."""
    policy = await policy_of(db)
    request = db.add(
        ApprovalRequest(
            id=new_id("apr"),
            workspace_id=db.workspace_id,
            tool=tool,
            arguments=arguments,
            args_hash=args_hash,
            channel=ask.channel,
            kind=ask.kind,
            recipient=ask.recipient,
            summary=ask.summary,
            requested_by_user_id=requested_by_user_id,
            requested_by_key_id=requested_by_key_id,
            created_at=now,
            expires_at=now + timedelta(hours=policy.expiry_hours),
        )
    )
    await db.flush()
    return request
