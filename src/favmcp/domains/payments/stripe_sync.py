"""Stripe: hosted payment links (Checkout Sessions), its events (from the webhook or its events list) and the
reconciliation job that settles without a public URL.

Every event counts once: its id goes into payment_provider_events in the same unit of work as its effects, so a
duplicate (a webhook retry, the same event seen again by reconciliation, two deliveries at once) changes nothing.
Events may come in any order: a payment is recorded once per Checkout Session, a refund settles once from pending
and a late event never moves it back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlmodel import col

from favmcp.core.errors import ErrorCode, FavError, invalid_state
from favmcp.core.ids import new_id
from favmcp.core.money import Money, Receivable
from favmcp.domains.payments import provider, service
from favmcp.domains.payments.models import (
    LinkStatus,
    Payment,
    PaymentLink,
    ProviderEvent,
    Refund,
    RefundStatus,
)
from favmcp.effects.channels import stripe as stripe_api
from favmcp.effects.models import OutboxMessage, OutboxStatus
from favmcp.registry.context import ToolContext

log = structlog.get_logger("favmcp.payments")

SIGNATURE_TOLERANCE = 300  # seconds: a signed event older than this is a replay
# The events favmcp acts on; reconciliation asks Stripe for these only.
HANDLED = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.expired",
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "refund.failed",
)
MAX_EVENT_PAGES = 50  # of 100 events each (Stripe lists newest first), per reconciliation run
LOOKBACK = timedelta(minutes=5)  # events are listed from a little before the oldest thing waiting for one
# Where Stripe's payment page sends the customer back to (under FAVMCP_PUBLIC_URL; served by this server).
PAID_PAGE, CANCELLED_PAGE = "/payments/complete", "/payments/cancelled"
EXPIRY_GRACE = timedelta(hours=1)  # a link past its expiry stays open this long for a late completion event


# -- payment links ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkout:
    """A Checkout Session Stripe made for what was owed, before the unit of work began."""

    session_id: str
    url: str
    expires_at: datetime
    amount: int
    currency: str


def idempotency_key(workspace_id: str, target: service.TargetRef, money: Money, expires: datetime) -> str:
    """Stripe's Idempotency-Key for a Checkout Session: calls for the same target and amount within a minute (the
    expiry's resolution) get the same session, so a retry or a concurrent call never makes a second one."""
    seed = "\x1f".join(
        [workspace_id, target.kind, target.id, str(money.minor), money.currency, str(int(expires.timestamp()))]
    )
    return "favmcp-link-" + hashlib.sha256(seed.encode()).hexdigest()[:40]


async def _open_link(ctx: ToolContext, target: service.TargetRef, owed: Receivable) -> PaymentLink | None:
    """An open link for exactly what is owed now, with at least half an hour left."""
    if owed.amount_remaining <= 0:
        raise invalid_state(
            f"Nothing remains to be paid on {target.kind} {target.id}.", current="settled", reason="nothing_owed"
        )
    target_column = col(PaymentLink.invoice_id) if target.kind == "invoice" else col(PaymentLink.order_id)
    return await ctx.db.first(
        ctx.db.select(
            PaymentLink,
            target_column == target.id,
            col(PaymentLink.status) == LinkStatus.open,
            col(PaymentLink.amount) == owed.amount_remaining,
            col(PaymentLink.expires_at) > ctx.now + timedelta(minutes=30),
        ).order_by(col(PaymentLink.id).desc())
    )


async def open_link_url(ctx: ToolContext, kind: str, target_id: str) -> str | None:
    """The open payment link for what the invoice or order owes now (for its emails); None without one."""
    target = service.TargetRef.of(target_id if kind == "invoice" else None, target_id if kind == "order" else None)
    try:
        link = await _open_link(ctx, target, await service.receivable(ctx, target, lock=False))
    except FavError:  # settled, void or not payable: nothing to pay online
        return None
    return link.url if link is not None else None


async def open_checkout(ctx: ToolContext, target: service.TargetRef, hours: int) -> Checkout | None:
    """create_payment_link's prepare step, with read access only (no write lock waits on Stripe): the Checkout
    Session for what is owed, or None when an open link for that amount exists (the handler answers it)."""
    config = provider.require_stripe(ctx.settings, await ctx.db.workspace())
    owed = await service.receivable(ctx, target, lock=False)
    if await _open_link(ctx, target, owed) is not None:
        return None
    money = Money(owed.amount_remaining, owed.currency)
    if not stripe_api.stripe_takes(money):
        raise invalid_state(
            f"Stripe takes {money.currency} amounts in whole tens of the minor unit; {money} is not one.",
            current="not_payable_online",
            hint="Record the payment with record_payment, or settle the odd minor units first.",
            reason="provider_amount",
        )
    expires = (ctx.now + timedelta(hours=hours)).replace(second=0, microsecond=0)
    metadata = {"workspace_id": ctx.workspace_id, f"{target.kind}_id": target.id}
    params: Any = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": money.currency.lower(),
                    "unit_amount": stripe_api.to_stripe(money),
                    "product_data": {"name": f"{target.kind.capitalize()} {target.id}"},
                },
            }
        ],
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "client_reference_id": target.id,
        "expires_at": int(expires.timestamp()),
    }
    if ctx.settings.public_url:
        params["success_url"] = f"{ctx.settings.public_url}{PAID_PAGE}?session_id={{CHECKOUT_SESSION_ID}}"
        params["cancel_url"] = f"{ctx.settings.public_url}{CANCELLED_PAGE}"
    key = idempotency_key(ctx.workspace_id, target, money, expires)
    try:
        session = await stripe_api.create_checkout_session(config.secret_key, config.api_base, params, key)
    except stripe_api.refusals() as exc:
        raise invalid_state(
            f"Stripe refused the payment link: {exc.user_message or exc}",
            current="provider_refused",
            hint="Check the workspace's Stripe keys (update_workspace payment_provider).",
            reason="provider_refused",
        ) from exc
    except stripe_api.failure() as exc:
        raise FavError(
            ErrorCode.internal_error,
            "Stripe could not be reached or failed; no payment link was made.",
            retryable=True,
            hint="Retry with the same idempotency_key: Stripe gives back the same session.",
        ) from exc
    made = datetime.fromtimestamp(session.expires_at, UTC) if session.expires_at else expires
    return Checkout(session.id, str(session.url), made, money.minor, money.currency)


async def create_link(ctx: ToolContext, target: service.TargetRef, checkout: Checkout | None) -> PaymentLink:
    """create_payment_link's handler: under the target's lock, the open link for what is owed, or the prepared
    session recorded as one, provided what is owed did not change while Stripe was asked."""
    owed = await service.receivable(ctx, target)  # the target's row stays locked: concurrent calls take turns
    existing = await _open_link(ctx, target, owed)
    if existing is not None:
        return existing
    if checkout is None or (checkout.amount, checkout.currency) != (owed.amount_remaining, owed.currency):
        raise FavError(
            ErrorCode.conflict,
            f"What is owed on {target.kind} {target.id} changed while the payment link was being made.",
            retryable=True,
            hint="Call create_payment_link again: the link will be for what is owed now.",
        )
    link = ctx.db.add(
        PaymentLink(
            id=new_id("pln"),
            workspace_id=ctx.workspace_id,
            member_id=owed.member_id,
            invoice_id=target.invoice_id,
            order_id=target.order_id,
            status=LinkStatus.open,
            currency=checkout.currency,
            amount=checkout.amount,
            provider=provider.STRIPE,
            provider_session_id=checkout.session_id,
            url=checkout.url,
            expires_at=checkout.expires_at,
            created_at=ctx.now,
        )
    )
    ctx.record_change(payment_link_id=link.id, **{f"{target.kind}_id": target.id})
    return link


# -- events ----------------------------------------------------------------------------------------------------


async def process_event(ctx: ToolContext, event: dict[str, Any]) -> bool:
    """Apply one Stripe event once; False when it was processed before (or is not one favmcp acts on)."""
    kind = str(event.get("type", ""))
    if kind not in HANDLED:
        return False
    created = datetime.fromtimestamp(int(event.get("created", 0)), UTC)
    fresh = await ctx.db.insert_or_ignore(
        ProviderEvent,
        [
            {
                "event_id": str(event["id"]),
                "provider": provider.STRIPE,
                "type": kind,
                "created": created,
                "processed_at": ctx.now,
            }
        ],
    )
    if not fresh:
        return False
    obj: dict[str, Any] = event.get("data", {}).get("object", {}) or {}
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        await _session_paid(ctx, obj, created)
    elif kind == "checkout.session.expired":
        await _session_expired(ctx, obj)
    elif kind == "charge.refunded":
        for refund in (obj.get("refunds") or {}).get("data") or []:
            await _refund_changed(ctx, refund)
    else:
        await _refund_changed(ctx, obj)
    ctx.record_change(provider_event_id=str(event["id"]), provider_event_type=kind)
    return True


def _ours(ctx: ToolContext, obj: dict[str, Any]) -> bool:
    """Stripe objects favmcp made carry the workspace in their metadata; others are not acted on here."""
    metadata = obj.get("metadata") or {}
    return metadata.get("workspace_id") in (None, ctx.workspace_id)


async def _link_of(ctx: ToolContext, session_id: str) -> PaymentLink | None:
    found = await ctx.db.first(ctx.db.select(PaymentLink, col(PaymentLink.provider_session_id) == session_id))
    return None if found is None else await ctx.db.get(PaymentLink, found.id, lock=True)


async def _session_paid(ctx: ToolContext, session: dict[str, Any], created: datetime) -> None:
    if session.get("payment_status") != "paid" or not _ours(ctx, session):
        return  # an asynchronous method not yet paid: its async_payment_succeeded event follows
    link = await _link_of(ctx, str(session.get("id")))
    if link is None or link.payment_id is not None:
        return  # not a link of this workspace, or its payment is recorded already
    payment = await service.record_online(
        ctx,
        target=service.TargetRef.of(link.invoice_id, link.order_id),
        member_id=link.member_id,
        money=stripe_api.from_stripe(int(session["amount_total"]), str(session["currency"])),
        provider_name=provider.STRIPE,
        provider_ref=link.provider_session_id,
        provider_payment_id=session.get("payment_intent"),
        payer_email=(session.get("customer_details") or {}).get("email"),
        paid_at=created,
    )
    await ctx.db.update(
        PaymentLink,
        col(PaymentLink.id) == link.id,
        values={"status": LinkStatus.complete, "payment_id": payment.id},
    )


async def _session_expired(ctx: ToolContext, session: dict[str, Any]) -> None:
    await ctx.db.update(
        PaymentLink,
        col(PaymentLink.provider_session_id) == str(session.get("id")),
        col(PaymentLink.status) == LinkStatus.open,
        values={"status": LinkStatus.expired},
    )


async def _refund_changed(ctx: ToolContext, obj: dict[str, Any]) -> None:
    if not _ours(ctx, obj):
        return
    provider_id = str(obj.get("id"))
    ours = (obj.get("metadata") or {}).get("refund_id")
    refund = await ctx.db.get(Refund, ours) if ours else None
    if refund is None:
        refund = await ctx.db.first(ctx.db.select(Refund, col(Refund.provider_refund_id) == provider_id))
    status = obj.get("status")
    if refund is None:
        await _dashboard_refund(ctx, obj, provider_id)
    elif status == "succeeded":
        await service.settle_refund(ctx, refund.id, RefundStatus.succeeded, provider_refund_id=provider_id)
    elif status in ("failed", "canceled"):
        reason = str(obj.get("failure_reason") or status)
        await service.settle_refund(
            ctx, refund.id, RefundStatus.failed, provider_refund_id=provider_id, failure_reason=reason
        )
    else:  # pending or requires_action: only its Stripe id is news
        await ctx.db.update(
            Refund,
            col(Refund.id) == refund.id,
            col(Refund.provider_refund_id).is_(None),
            values={"provider_refund_id": provider_id},
        )


async def _dashboard_refund(ctx: ToolContext, obj: dict[str, Any], provider_id: str) -> None:
    """A refund made in Stripe's dashboard on a payment favmcp recorded: recorded too, once it succeeded."""
    intent = obj.get("payment_intent")
    if obj.get("status") != "succeeded" or not intent:
        return
    payment = await ctx.db.first(ctx.db.select(Payment, col(Payment.provider_payment_id) == str(intent)))
    if payment is not None:
        await service.record_provider_refund(
            ctx,
            payment,
            amount=stripe_api.from_stripe(int(obj["amount"]), payment.currency).minor,
            provider_refund_id=provider_id,
            reason="refunded at Stripe",
        )


# -- reconciliation --------------------------------------------------------------------------------------------


async def settle_from_outbox(ctx: ToolContext) -> None:
    """Refunds whose request Stripe answered (kept on the outbox row) or refused for good settle from that answer."""
    waiting = await ctx.db.all(
        ctx.db.select(Refund, col(Refund.status) == RefundStatus.pending, col(Refund.outbox_id).is_not(None))
    )
    for refund in waiting:
        message = await ctx.db.get(OutboxMessage, str(refund.outbox_id))
        if message is None:
            continue
        answer = (message.payload or {}).get("result") or {}
        if message.status == OutboxStatus.failed:
            await service.settle_refund(
                ctx, refund.id, RefundStatus.failed, failure_reason=message.last_error or "Stripe refused the refund"
            )
        elif answer.get("status") == "succeeded":
            await service.settle_refund(ctx, refund.id, RefundStatus.succeeded, provider_refund_id=answer.get("id"))
        elif answer.get("status") in ("failed", "canceled"):
            await service.settle_refund(
                ctx,
                refund.id,
                RefundStatus.failed,
                provider_refund_id=answer.get("id"),
                failure_reason="Stripe: " + str(answer["status"]),
            )
        elif answer.get("id") and not refund.provider_refund_id:
            await ctx.db.update(Refund, col(Refund.id) == refund.id, values={"provider_refund_id": answer["id"]})


async def _oldest_waiting(ctx: ToolContext) -> datetime | None:
    """The creation time of the oldest open link or pending Stripe refund: nothing older needs an event."""
    link = await ctx.db.first(
        ctx.db.select(PaymentLink, col(PaymentLink.status) == LinkStatus.open).order_by(col(PaymentLink.created_at))
    )
    refund = await ctx.db.first(
        ctx.db.select(
            Refund, col(Refund.status) == RefundStatus.pending, col(Refund.provider) == provider.STRIPE
        ).order_by(col(Refund.created_at))
    )
    times = [row.created_at for row in (link, refund) if row is not None]
    return min(times) if times else None


async def fetch_events(ctx: ToolContext) -> list[dict[str, Any]]:
    """The reconciliation job's fetch, with read access only (no write lock waits on Stripe): the events of
    interest since a little before the oldest thing waiting for one; none when nothing waits."""
    config = provider.stripe_config(ctx.settings, await ctx.db.workspace())
    oldest = await _oldest_waiting(ctx)
    if config is None or oldest is None:
        return []
    since = int((oldest - LOOKBACK).timestamp())
    try:
        return await stripe_api.list_events(
            config.secret_key, config.api_base, since=since, types=list(HANDLED), max_pages=MAX_EVENT_PAGES
        )
    except stripe_api.failure() as exc:  # Stripe unreachable or the key revoked: the next run reads them
        log.warning("stripe_events_unavailable", workspace=ctx.workspace_id, error=str(exc)[:300])
        return []


async def reconcile(ctx: ToolContext) -> None:
    """The job: settle what Stripe already answered, then apply the events fetched from its events list (what a
    webhook would have brought: an install without a public URL), then close links long past their expiry."""
    await settle_from_outbox(ctx)
    for event in ctx.prepared or []:
        await process_event(ctx, event)
    await ctx.db.update(
        PaymentLink,
        col(PaymentLink.status) == LinkStatus.open,
        col(PaymentLink.expires_at) < ctx.now - EXPIRY_GRACE,
        values={"status": LinkStatus.expired},
    )


def verify(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """The event of a webhook request, once its Stripe-Signature checks out (5-minute tolerance); raises
    stripe.SignatureVerificationError or ValueError otherwise."""
    import stripe

    event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=SIGNATURE_TOLERANCE)
    return dict(event.to_dict())
