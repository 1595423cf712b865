"""Approvals: customer-facing calls that wait for a person, the decisions on them, and the policy that decides
which calls wait. The gate itself is in the runner; what runs on approval is exactly what was stored."""

from __future__ import annotations

from sqlmodel import col

from favmcp.auth import scopes
from favmcp.core.errors import forbidden, invalid_state, not_found, validation_failed
from favmcp.core.times import format_utc
from favmcp.domains.approvals.schemas import (
    ApprovalPage,
    ApprovalPolicyPublic,
    ApprovalPublic,
    ApproveRequestInput,
    ExecutionPublic,
    GetApprovalInput,
    GetApprovalPolicyInput,
    ListApprovalsInput,
    RejectRequestInput,
    RequestSendApprovalInput,
    SetApprovalPolicyInput,
)
from favmcp.effects.approvals import (
    APPROVAL_EVENTS,
    APPROVAL_LIFECYCLE,
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalRequested,
    ApprovalStatus,
    PolicyRules,
    hold,
    policy_of,
)
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain
from favmcp.registry.runner import CONTROL_FIELDS, args_hash, validate
from favmcp.registry.spec import tool

DOMAIN_NAME = "approvals"
FIND = "List requests with list_approvals."


def _state(request: ApprovalRequest, ctx: ToolContext) -> ApprovalStatus:
    if request.status == ApprovalStatus.pending and request.expires_at <= ctx.now:
        return ApprovalStatus.expired
    return request.status


def _public(request: ApprovalRequest, ctx: ToolContext) -> ApprovalPublic:
    execution = ExecutionPublic.model_validate(request.result) if request.result else None
    return ApprovalPublic.model_validate(
        {**request.model_dump(), "status": _state(request, ctx), "execution": execution}
    )


async def _request(ctx: ToolContext, approval_id: str, *, lock: bool = False) -> ApprovalRequest:
    found = await ctx.db.get(ApprovalRequest, approval_id, lock=lock)
    if found is None:
        raise not_found("approval request", approval_id, hint=FIND)
    return found


@tool(domain=DOMAIN_NAME, title="Request send approval", hints="W", scope="messaging:send", route="POST /v1/approvals")
async def request_send_approval(ctx: ToolContext, args: RequestSendApprovalInput) -> ApprovalPublic:
    """Ask a person to approve a customer-facing call before it runs, whatever the policy says: an approval-gated
    tool and its exact arguments. Nothing is sent now; approve_request runs this call once, as you. Needs the
    tool's own scope. Follow with get_approval."""
    spec = ctx.registry.specs.get(args.tool)
    if spec is None or spec.ask is None:
        gated = sorted(s.name for s in ctx.registry.listed() if s.ask is not None)
        raise validation_failed(
            f"{args.tool} is not an approval-gated tool; gated tools: {', '.join(gated) or 'none on this server'}."
        )
    if not scopes.grants(ctx.caller.scopes, spec.scope):
        raise forbidden(f"{spec.name} needs the {spec.scope} scope, which this key does not have.")
    call = validate(spec, {k: v for k, v in args.arguments.items() if k not in CONTROL_FIELDS})
    request = await hold(
        ctx.db,
        tool=spec.name,
        arguments=call.model_dump(mode="json", exclude=CONTROL_FIELDS),
        args_hash=args_hash(call),
        ask=await spec.ask(ctx, call),
        requested_by_user_id=ctx.caller.user_id,
        requested_by_key_id=ctx.caller.key_id,
        now=ctx.now,
    )
    ctx.emit(ApprovalRequested(approval_id=request.id, tool=spec.name))
    ctx.record_change(approval_id=request.id)
    return _public(request, ctx)


@tool(domain=DOMAIN_NAME, title="List approvals", hints="R I", scope="approvals:read", route="GET /v1/approvals")
async def list_approvals(ctx: ToolContext, args: ListApprovalsInput) -> ApprovalPage:
    """Approval requests, newest first: what each would send, to whom, who asked and what was decided. Expired
    means pending past expires_at."""
    stmt = ctx.db.select(ApprovalRequest)
    if args.status in (ApprovalStatus.pending, ApprovalStatus.expired):
        live = col(ApprovalRequest.expires_at) > ctx.now
        stmt = stmt.where(col(ApprovalRequest.status) == ApprovalStatus.pending)
        stmt = stmt.where(live if args.status is ApprovalStatus.pending else ~live)
    elif args.status is not None:
        stmt = stmt.where(col(ApprovalRequest.status) == args.status)
    rows, cursor = await ctx.db.page(stmt, col(ApprovalRequest.id), args)
    return ApprovalPage(items=[_public(r, ctx) for r in rows], next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME,
    title="Get approval",
    hints="R I",
    scope="approvals:read",
    route="GET /v1/approvals/{approval_id}",
)
async def get_approval(ctx: ToolContext, args: GetApprovalInput) -> ApprovalPublic:
    """One approval request: the exact stored call, its rendered summary, requester, decider, reason and, once
    approved, what the call answered."""
    return _public(await _request(ctx, args.approval_id), ctx)


@tool(
    domain=DOMAIN_NAME,
    title="Approve request",
    hints="W O",
    scope="approvals:decide",
    route="POST /v1/approvals/{approval_id}/approve",
)
async def approve_request(ctx: ToolContext, args: ApproveRequestInput) -> ApprovalPublic:
    """Approve a pending request: its stored call runs once, now, as the requester (their key must still be valid
    and hold the tool's scope); its answer is in execution and the request ends executed or failed. Refuses your
    own request unless the policy allows self-approval, expired and decided ones (invalid_state says which)."""
    request = await _request(ctx, args.approval_id, lock=True)  # concurrent approvals take turns here
    if _state(request, ctx) == ApprovalStatus.expired:
        raise invalid_state(
            f"Approval request {request.id} expired at {format_utc(request.expires_at)}; nothing was sent.",
            current=ApprovalStatus.expired.value,
            hint="Ask again with request_send_approval.",
        )
    if request.status != ApprovalStatus.pending:
        raise APPROVAL_LIFECYCLE.refuse(request.id, request.status, ApprovalStatus.approved)
    policy = await policy_of(ctx.db)
    if request.requested_by_user_id == ctx.caller.user_id and not policy.allow_self_approval:
        raise forbidden(
            "You cannot approve your own request.",
            hint="Ask another person with approvals:decide, or allow self-approval with set_approval_policy.",
        )
    decided = {"decided_by_user_id": ctx.caller.user_id, "decided_at": ctx.now}
    await ctx.transition(APPROVAL_LIFECYCLE, ApprovalRequest, request.id, ApprovalStatus.approved, values=decided)
    outcome = await ctx.execute_approved(request)
    execution = ExecutionPublic(ok=outcome.ok, **({"result": outcome.data} if outcome.ok else {"error": outcome.data}))
    final = ApprovalStatus.executed if outcome.ok else ApprovalStatus.failed
    await ctx.transition(
        APPROVAL_LIFECYCLE, ApprovalRequest, request.id, final, values={"result": execution.model_dump(mode="json")}
    )
    ctx.record_change(approval_id=request.id, outcome=final.value)
    return _public(request, ctx)


@tool(
    domain=DOMAIN_NAME,
    title="Reject request",
    hints="W I",
    scope="approvals:decide",
    route="POST /v1/approvals/{approval_id}/reject",
)
async def reject_request(ctx: ToolContext, args: RejectRequestInput) -> ApprovalPublic:
    """Reject a pending request with a reason for the requester; nothing is sent. Repeating it changes nothing;
    an approved request cannot be rejected (invalid_state)."""
    request = await _request(ctx, args.approval_id)
    decided = {"decided_by_user_id": ctx.caller.user_id, "decided_at": ctx.now, "reason": args.reason}
    if await ctx.transition(APPROVAL_LIFECYCLE, ApprovalRequest, request.id, ApprovalStatus.rejected, values=decided):
        ctx.record_change(approval_id=request.id, outcome="rejected")
    await ctx.db.refresh(request)
    return _public(request, ctx)


def _policy_public(policy: PolicyRules, stored: ApprovalPolicy | None) -> ApprovalPolicyPublic:
    return ApprovalPolicyPublic(
        rules=policy.rules,
        allow_self_approval=policy.allow_self_approval,
        expiry_hours=policy.expiry_hours,
        updated_at=stored.updated_at if stored else None,
    )


@tool(
    domain=DOMAIN_NAME,
    title="Get approval policy",
    hints="R I",
    scope="approvals:read",
    route="GET /v1/approval-policy",
)
async def get_approval_policy(ctx: ToolContext, args: GetApprovalPolicyInput) -> ApprovalPolicyPublic:
    """Which customer-facing sends wait for a person, per channel and kind; whether requesters may approve their
    own; how long requests stay open. Defaults: marketing and free text wait, transactional runs at once, 72 h."""
    stored = await ctx.db.first(ctx.db.select(ApprovalPolicy))
    return _policy_public(await policy_of(ctx.db), stored)


@tool(
    domain=DOMAIN_NAME,
    title="Set approval policy",
    hints="W I",
    scope="workspace:admin",
    route="PATCH /v1/approval-policy",
)
async def set_approval_policy(ctx: ToolContext, args: SetApprovalPolicyInput) -> ApprovalPolicyPublic:
    """Change which sends wait for a person, self-approval and how long requests stay open; fields left out
    stay. Requests already waiting keep their expiry."""
    await ctx.db.workspace(lock=True)  # policy changes take turns
    policy = await policy_of(ctx.db)
    given = args.model_dump(exclude_unset=True, exclude={"idempotency_key"})
    if args.rules is not None:
        replaced = {(r.channel, r.kind) for r in args.rules}
        given["rules"] = [r for r in policy.rules if (r.channel, r.kind) not in replaced] + list(args.rules)
    updated = PolicyRules.model_validate({**policy.model_dump(), **given})
    await ctx.db.upsert(
        ApprovalPolicy,
        {"rules": updated.model_dump(mode="json"), "updated_at": ctx.now},
        key=["workspace_id"],
        changes=["rules", "updated_at"],
    )
    ctx.record_change(fields=sorted(given))
    stored = await ctx.db.first(ctx.db.select(ApprovalPolicy))
    return _policy_public(updated, stored)


DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[
        request_send_approval,
        list_approvals,
        get_approval,
        approve_request,
        reject_request,
        get_approval_policy,
        set_approval_policy,
    ],
    events=APPROVAL_EVENTS,
)
