from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.effects.approvals import ApprovalStatus, Channel, PolicyRule, SendKind
from favmcp.registry.spec import ToolInput, UpdateInput, WriteInput

ApprovalId = Field(min_length=1, max_length=40, description="An approval id (apr_...) from list_approvals.")


class ExecutionPublic(Schema):
    ok: bool
    result: dict[str, Any] | None = Field(default=None, description="What the approved call answered.")
    error: dict[str, Any] | None = Field(default=None, description="Why the approved call failed.")


class ApprovalPublic(Schema):
    id: str
    status: ApprovalStatus = Field(description="A pending request past expires_at reads expired.")
    tool: str
    arguments: dict[str, Any] = Field(description="The exact call that runs on approval.")
    channel: Channel
    kind: SendKind
    recipient: str
    summary: str = Field(description="What will happen, rendered for the person who decides.")
    requested_by_user_id: str | None
    requested_by_key_id: str | None
    decided_by_user_id: str | None
    decided_at: datetime | None
    reason: str | None
    execution: ExecutionPublic | None
    created_at: datetime
    expires_at: datetime


class RequestSendApprovalInput(WriteInput):
    tool: str = Field(min_length=1, max_length=80)
    arguments: dict[str, Any]


class ListApprovalsInput(ToolInput, PageParams):
    status: ApprovalStatus | None = None


class ApprovalPage(Page[ApprovalPublic]):
    pass


class GetApprovalInput(ToolInput):
    approval_id: str = ApprovalId


class ApproveRequestInput(WriteInput):
    approval_id: str = ApprovalId


class RejectRequestInput(WriteInput):
    approval_id: str = ApprovalId
    reason: str = Field(min_length=1, max_length=500)


class GetApprovalPolicyInput(ToolInput):
    pass


class ApprovalPolicyPublic(Schema):
    rules: list[PolicyRule] = Field(description="Per channel and kind, whether a send waits for a person.")
    allow_self_approval: bool
    expiry_hours: int
    updated_at: datetime | None


class SetApprovalPolicyInput(UpdateInput):
    not_clearable = frozenset({"rules", "allow_self_approval", "expiry_hours"})

    rules: list[PolicyRule] | None = Field(
        default=None, max_length=20, description="Rules to set; channel and kind pairs left out keep their rule."
    )
    allow_self_approval: bool | None = None
    expiry_hours: int | None = Field(default=None, ge=1, le=720)
