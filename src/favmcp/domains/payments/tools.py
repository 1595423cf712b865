"""Payments: money received against invoices and orders, refunds, and hosted payment links through Stripe."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import col

from favmcp.core.links import MemberLink, OnErase, OnMerge
from favmcp.core.money import Money, format_money
from favmcp.domains.payments import service, stripe_sync, webhook
from favmcp.domains.payments.events import EVENTS
from favmcp.domains.payments.models import Payment, PaymentLink, PaymentMethod, Refund
from favmcp.domains.payments.schemas import (
    CreatePaymentLinkInput,
    GetPaymentInput,
    ListPaymentsInput,
    ListRefundsInput,
    PaymentDetail,
    PaymentLinkPublic,
    PaymentPage,
    RecordedPayment,
    RecordPaymentInput,
    RefundPage,
    RefundPaymentInput,
    RefundPreview,
    RefundPublic,
)
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain, Job
from favmcp.registry.spec import tool

DOMAIN_NAME = "payments"


@tool(domain=DOMAIN_NAME, title="Record payment", hints="W I", scope="payments:write", route="POST /v1/payments")
async def record_payment(ctx: ToolContext, args: RecordPaymentInput) -> RecordedPayment:
    """Record money taken in person or by transfer against one open invoice or order; a partial payment leaves
    amount_remaining. Refuses more than remains."""
    payment, remaining = await service.record_offline(
        ctx,
        target=service.TargetRef.of(args.invoice_id, args.order_id),
        amount=args.amount,
        currency=args.currency,
        method=PaymentMethod(args.method),
        reference=args.reference,
    )
    await ctx.db.flush()
    return RecordedPayment(**service.public(payment).model_dump(), amount_remaining=remaining)


@tool(
    domain=DOMAIN_NAME, title="Get payment", hints="R I", scope="payments:read", route="GET /v1/payments/{payment_id}"
)
async def get_payment(ctx: ToolContext, args: GetPaymentInput) -> PaymentDetail:
    """One payment with its refunds."""
    payment = await service.load(ctx, args.payment_id)
    refunds = await ctx.db.all(
        ctx.db.select(Refund, col(Refund.payment_id) == payment.id).order_by(col(Refund.id).desc())
    )
    return PaymentDetail(**service.public(payment).model_dump(), refunds=[service.refund_public(r) for r in refunds])


@tool(domain=DOMAIN_NAME, title="List payments", hints="R I", scope="payments:read", route="GET /v1/payments")
async def list_payments(ctx: ToolContext, args: ListPaymentsInput) -> PaymentPage:
    """Payments newest first; filters: paid in [paid_from, paid_before), method, status, customer, invoice,
    order."""
    stmt = ctx.db.select(Payment)
    if args.paid_from:
        stmt = stmt.where(col(Payment.paid_at) >= args.paid_from)
    if args.paid_before:
        stmt = stmt.where(col(Payment.paid_at) < args.paid_before)
    for name in ("method", "status", "member_id", "invoice_id", "order_id"):
        value: Any = getattr(args, name)
        if value is not None:
            stmt = stmt.where(getattr(Payment, name) == value)
    page, cursor = await ctx.db.page(stmt, col(Payment.id), args)
    return PaymentPage(items=[service.public(p) for p in page], next_cursor=cursor, has_more=cursor is not None)


async def _preview_refund(ctx: ToolContext, args: RefundPaymentInput) -> RefundPreview:
    payment = await service.load(ctx, args.payment_id)
    service.ensure_refundable(payment)
    left = service.refundable(payment)
    amount = args.amount if args.amount is not None else left
    if amount <= 0 or amount > left:
        raise service.beyond_refundable(payment, amount)
    online = payment.provider is not None
    how = "through Stripe; it settles when Stripe confirms" if online else "at once"
    locale = (await ctx.db.workspace()).locale
    shown, refundable = (format_money(Money(a, payment.currency), locale) for a in (amount, left))
    return RefundPreview(
        summary=f"Refund {shown} of payment {payment.id} ({refundable} refundable now), {how}.",
        payment_id=payment.id,
        currency=payment.currency,
        amount=amount,
        amount_refundable=left,
        through_provider=online,
    )


@tool(
    domain=DOMAIN_NAME, title="Refund payment", hints="D I O", scope="payments:admin",
    gate="confirm", preview=_preview_refund,
    route="POST /v1/payments/{payment_id}/refunds",
)  # fmt: skip
async def refund_payment(ctx: ToolContext, args: RefundPaymentInput) -> RefundPublic:
    """Refund all or part of a payment, never more than amount_refundable. Offline payments refund at once; online
    ones through Stripe (pending until Stripe confirms)."""
    refund = await service.request_refund(ctx, args.payment_id, args.amount, args.currency, args.reason)
    return service.refund_public(refund)


@tool(domain=DOMAIN_NAME, title="List refunds", hints="R I", scope="payments:read", route="GET /v1/refunds")
async def list_refunds(ctx: ToolContext, args: ListRefundsInput) -> RefundPage:
    """Refunds newest first; filters: requested in [created_from, created_before), payment, status."""
    stmt = ctx.db.select(Refund)
    if args.created_from:
        stmt = stmt.where(col(Refund.created_at) >= args.created_from)
    if args.created_before:
        stmt = stmt.where(col(Refund.created_at) < args.created_before)
    if args.payment_id:
        stmt = stmt.where(col(Refund.payment_id) == args.payment_id)
    if args.status:
        stmt = stmt.where(col(Refund.status) == args.status)
    page, cursor = await ctx.db.page(stmt, col(Refund.id), args)
    return RefundPage(items=[service.refund_public(r) for r in page], next_cursor=cursor, has_more=cursor is not None)


async def _open_checkout(ctx: ToolContext, args: CreatePaymentLinkInput) -> stripe_sync.Checkout | None:
    return await stripe_sync.open_checkout(
        ctx, service.TargetRef.of(args.invoice_id, args.order_id), args.expires_in_hours
    )


@tool(
    domain=DOMAIN_NAME,
    title="Create payment link",
    hints="W O",
    scope="payments:write",
    prepare=_open_checkout,
    route="POST /v1/payment-links",
)
async def create_payment_link(ctx: ToolContext, args: CreatePaymentLinkInput) -> PaymentLinkPublic:
    """A hosted Stripe payment page for what remains on an open invoice or order (an open link for the same
    amount is reused). Needs Stripe keys (update_workspace payment_provider)."""
    link = await stripe_sync.create_link(ctx, service.TargetRef.of(args.invoice_id, args.order_id), ctx.prepared)
    return PaymentLinkPublic.model_validate(link, from_attributes=True)


def _payment_export(row: Payment) -> dict[str, Any]:
    return service.public(row).model_dump(mode="json")


def _refund_export(row: Refund) -> dict[str, Any]:
    return service.refund_public(row).model_dump(mode="json")


def _link_export(row: PaymentLink) -> dict[str, Any]:
    return PaymentLinkPublic.model_validate(row, from_attributes=True).model_dump(mode="json")


MEMBER_LINKS = [
    MemberLink(
        "payments", Payment, "member_id", OnMerge.move, OnErase.pseudonymise,
        personal_fields={"reference": None, "payer_email": None}, export=_payment_export,
    ),
    MemberLink(
        "refunds", Refund, "member_id", OnMerge.move, OnErase.pseudonymise,
        personal_fields={"reason": None}, export=_refund_export,
    ),
    MemberLink("payment_links", PaymentLink, "member_id", OnMerge.move, OnErase.keep, export=_link_export),
]  # fmt: skip

DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[record_payment, get_payment, list_payments, refund_payment, list_refunds, create_payment_link],
    member_links=MEMBER_LINKS,
    events=EVENTS,
    jobs=[Job("stripe_reconcile", timedelta(minutes=5), stripe_sync.reconcile, fetch=stripe_sync.fetch_events)],
    payment_url=stripe_sync.open_link_url,
    http_routes={
        f"POST {webhook.PATH}": webhook.stripe_webhook,
        f"GET {stripe_sync.PAID_PAGE}": webhook.paid_page,
        f"GET {stripe_sync.CANCELLED_PAGE}": webhook.cancelled_page,
    },
)
