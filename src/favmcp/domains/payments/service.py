"""Payment workflows shared by the tools, the Stripe webhook and the reconciliation job.

Money on a payment moves only through conditional UPDATEs: a refund first reserves its amount
(`amount - amount_refunded - amount_reserved >= x`), then settles (the reservation becomes refunded) or fails (the
reservation is released). Of two refunds of 60 on 100 exactly one reserves; a failed one gives its amount back.
Invoices and orders are reached only through their services' receivable / apply_payment / apply_refund.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col

from favmcp.core.errors import FavError, conflict, invalid_state, not_found
from favmcp.core.ids import new_id
from favmcp.core.money import CurrencyMismatchError, Money, Receivable
from favmcp.domains.invoices import service as invoices
from favmcp.domains.members import service as members
from favmcp.domains.orders import service as orders
from favmcp.domains.payments import provider
from favmcp.domains.payments.events import PaymentRefunded, PaymentSucceeded
from favmcp.domains.payments.lifecycle import PAYMENT_LIFECYCLE, REFUND_LIFECYCLE
from favmcp.domains.payments.models import Payment, PaymentMethod, PaymentStatus, Refund, RefundStatus
from favmcp.domains.payments.schemas import PaymentPublic, RefundPublic
from favmcp.effects.channels.stripe import queue_refund, stripe_takes, to_stripe
from favmcp.registry.context import ToolContext

FIND = "Find payments with list_payments."
REFUNDABLE = (PaymentStatus.succeeded, PaymentStatus.partially_refunded)


@dataclass(frozen=True)
class TargetRef:
    """The invoice or order a payment settles."""

    kind: str  # "invoice" | "order"
    id: str

    @classmethod
    def of(cls, invoice_id: str | None, order_id: str | None) -> TargetRef:
        return cls("invoice", invoice_id) if invoice_id else cls("order", str(order_id))

    @property
    def invoice_id(self) -> str | None:
        return self.id if self.kind == "invoice" else None

    @property
    def order_id(self) -> str | None:
        return self.id if self.kind == "order" else None


async def receivable(ctx: ToolContext, target: TargetRef, *, lock: bool = True) -> Receivable:
    if target.kind == "invoice":
        return await invoices.receivable(ctx, target.id, lock=lock)
    return await orders.receivable(ctx, target.id, lock=lock)


async def _apply_payment(ctx: ToolContext, target: TargetRef, amount: Money) -> None:
    if target.kind == "invoice":
        await invoices.apply_payment(ctx, target.id, amount)
    else:
        await orders.apply_payment(ctx, target.id, amount)


async def _apply_refund(ctx: ToolContext, target: TargetRef, amount: Money) -> None:
    if target.kind == "invoice":
        await invoices.apply_refund(ctx, target.id, amount)
    else:
        await orders.apply_refund(ctx, target.id, amount)


def public(payment: Payment) -> PaymentPublic:
    return PaymentPublic.model_validate(
        {
            **payment.model_dump(),
            "amount_refundable": refundable(payment),
            "amount_unapplied": payment.amount - payment.amount_applied,
        }
    )


def refund_public(refund: Refund) -> RefundPublic:
    return RefundPublic.model_validate(refund, from_attributes=True)


def refundable(payment: Payment) -> int:
    if payment.status not in REFUNDABLE:
        return 0
    return payment.amount - payment.amount_refunded - payment.amount_reserved


async def load(ctx: ToolContext, payment_id: str) -> Payment:
    payment = await ctx.db.get(Payment, payment_id, fresh=True)
    if payment is None:
        raise not_found("payment", payment_id, hint=FIND)
    return payment


# -- receiving money ---------------------------------------------------------------------------------------------


async def record_offline(
    ctx: ToolContext,
    *,
    target: TargetRef,
    amount: int,
    currency: str | None,
    method: PaymentMethod,
    reference: str | None,
) -> tuple[Payment, int]:
    """A payment taken in person or by transfer, succeeded at once; returns it and what the target still owes.
    More than remains is a conflict (the target's row is locked while this runs)."""
    await members.lock(ctx, (await receivable(ctx, target, lock=False)).member_id)
    owed = await receivable(ctx, target)
    money = Money(amount, currency or owed.currency)
    if money.currency != owed.currency:
        raise CurrencyMismatchError(owed.currency, money.currency)
    if amount > owed.amount_remaining:
        raise conflict(
            f"A payment of {money} is more than the {Money(owed.amount_remaining, owed.currency)} still owed on "
            f"{target.kind} {target.id}.",
            hint="Record at most amount_remaining.",
            details={"reason": "overpayment", "amount_remaining": owed.amount_remaining, "currency": owed.currency},
        )
    await _apply_payment(ctx, target, money)
    payment = await _succeeded(
        ctx,
        owed.member_id,
        target,
        money,
        method=method,
        applied=amount,
        reference=reference,
        paid_at=ctx.now,
    )
    return payment, owed.amount_remaining - amount


async def record_online(
    ctx: ToolContext,
    *,
    target: TargetRef,
    member_id: str,
    money: Money,
    provider_name: str,
    provider_ref: str,
    provider_payment_id: str | None,
    payer_email: str | None,
    paid_at: datetime,
) -> Payment:
    """Money the provider collected: recorded whatever happened to the target meanwhile (it was paid). What still
    fits the target is applied to it; the rest stays unapplied on the payment, for a refund."""
    applied = 0
    await members.lock(ctx, member_id)
    try:
        async with ctx.db.savepoint():
            owed = await receivable(ctx, target)
            if owed.currency == money.currency and owed.amount_remaining > 0:
                applied = min(money.minor, owed.amount_remaining)
                await _apply_payment(ctx, target, Money(applied, money.currency))
    except FavError:  # voided, already paid in person, another currency: the money is still received
        applied = 0
    return await _succeeded(
        ctx,
        member_id,
        target,
        money,
        method=PaymentMethod.online,
        applied=applied,
        reference=None,
        paid_at=paid_at,
        payer_email=payer_email,
        provider_name=provider_name,
        provider_ref=provider_ref,
        provider_payment_id=provider_payment_id,
    )


async def _succeeded(
    ctx: ToolContext,
    member_id: str,
    target: TargetRef,
    money: Money,
    *,
    method: PaymentMethod,
    applied: int,
    reference: str | None,
    paid_at: datetime,
    payer_email: str | None = None,
    provider_name: str | None = None,
    provider_ref: str | None = None,
    provider_payment_id: str | None = None,
) -> Payment:
    payment = ctx.db.add(
        Payment(
            id=new_id("pay"),
            workspace_id=ctx.workspace_id,
            member_id=member_id,
            invoice_id=target.invoice_id,
            order_id=target.order_id,
            method=method,
            status=PaymentStatus.succeeded,
            currency=money.currency,
            amount=money.minor,
            amount_applied=applied,
            reference=reference,
            payer_email=payer_email,
            provider=provider_name,
            provider_ref=provider_ref,
            provider_payment_id=provider_payment_id,
            recorded_by=ctx.caller.user_id,
            paid_at=paid_at,
            created_at=ctx.now,
        )
    )
    await members.record_spend(ctx, member_id, money.minor, money.currency)
    ctx.record_change(payment_id=payment.id, **{f"{target.kind}_id": target.id})
    ctx.emit(
        PaymentSucceeded(
            payment_id=payment.id,
            member_id=payment.member_id,
            amount=payment.amount,
            currency=payment.currency,
            invoice_id=payment.invoice_id,
            order_id=payment.order_id,
        )
    )
    return payment


# -- giving money back -------------------------------------------------------------------------------------------


async def request_refund(
    ctx: ToolContext, payment_id: str, amount: int | None, currency: str | None, reason: str | None
) -> Refund:
    """Reserve the amount on the payment (refused beyond what is refundable), then refund: at once for money taken
    offline, through the provider's outbox for an online payment (settled on its answer or event)."""
    payment = await load(ctx, payment_id)
    await members.lock(ctx, payment.member_id)
    ensure_refundable(payment)
    if currency and currency != payment.currency:
        raise CurrencyMismatchError(payment.currency, currency)
    stripe = None
    if payment.provider == provider.STRIPE:
        stripe = provider.require_stripe(ctx.settings, await ctx.db.workspace())
        if not payment.provider_payment_id:
            raise invalid_state(
                f"Stripe named no PaymentIntent for payment {payment.id}, so it cannot be refunded from here.",
                current=payment.status.value,
                hint="Refund it in Stripe's dashboard; the refund is recorded here from Stripe's event.",
                reason="no_provider_payment",
            )
    wanted = amount if amount is not None else refundable(payment)
    if wanted <= 0:
        raise beyond_refundable(payment, wanted)
    if stripe is not None and not stripe_takes(Money(wanted, payment.currency)):
        raise invalid_state(
            f"Stripe refunds {payment.currency} only in whole tens of the minor unit; {wanted} is not one.",
            current=payment.status.value,
            hint="Refund an amount that ends in 0.",
            reason="provider_amount",
        )
    if not await _reserve(ctx, payment, wanted):
        raise beyond_refundable(await load(ctx, payment.id), wanted)
    refund = _new_refund(ctx, payment, wanted, reason, requested_by=ctx.caller.user_id)
    ctx.record_change(payment_id=payment.id, refund_id=refund.id)
    if stripe is None:
        await settle_refund(ctx, refund.id, RefundStatus.succeeded)
    else:
        message = queue_refund(
            ctx.settings,
            workspace_id=ctx.workspace_id,
            params={
                "payment_intent": payment.provider_payment_id,
                "amount": to_stripe(Money(wanted, payment.currency)),
                "metadata": {"workspace_id": ctx.workspace_id, "refund_id": refund.id, "payment_id": payment.id},
            },
            now=ctx.now,
        )
        ctx.db.add(message)
        refund.outbox_id = message.id
    await ctx.db.flush()
    await ctx.db.refresh(refund)
    return refund


async def _reserve(ctx: ToolContext, payment: Payment, amount: int) -> bool:
    """Hold `amount` of the payment for a refund, in one conditional UPDATE: never beyond paid less refunded and
    less what other pending refunds hold, however many ask at once."""
    return bool(
        await ctx.db.update_returning(
            Payment,
            col(Payment.id) == payment.id,
            col(Payment.status).in_(REFUNDABLE),
            col(Payment.amount) - col(Payment.amount_refunded) - col(Payment.amount_reserved) >= amount,
            values={"amount_reserved": col(Payment.amount_reserved) + amount},
        )
    )


def _new_refund(ctx: ToolContext, payment: Payment, amount: int, reason: str | None, **fields: Any) -> Refund:
    """A pending refund of the payment (its amount reserved already)."""
    return ctx.db.add(
        Refund(
            id=new_id("rfd"),
            workspace_id=ctx.workspace_id,
            payment_id=payment.id,
            member_id=payment.member_id,
            invoice_id=payment.invoice_id,
            order_id=payment.order_id,
            status=RefundStatus.pending,
            currency=payment.currency,
            amount=amount,
            reason=reason,
            provider=payment.provider,
            created_at=ctx.now,
            **fields,
        )
    )


def ensure_refundable(payment: Payment) -> None:
    if payment.status not in REFUNDABLE:
        raise invalid_state(
            f"Payment {payment.id} is {payment.status.value}: only a succeeded payment can be refunded.",
            current=payment.status.value,
            hint="get_payment shows its refunds.",
        )


def beyond_refundable(payment: Payment, wanted: int) -> FavError:
    left = refundable(payment)
    return conflict(
        f"A refund of {Money(wanted, payment.currency)} is more than the {Money(left, payment.currency)} refundable "
        f"on payment {payment.id} (paid less refunded and pending refunds).",
        hint="get_payment shows amount_refundable and the refunds made.",
        details={"reason": "beyond_refundable", "amount_refundable": left, "currency": payment.currency},
    )


async def settle_refund(
    ctx: ToolContext,
    refund_id: str,
    outcome: RefundStatus,
    *,
    provider_refund_id: str | None = None,
    failure_reason: str | None = None,
) -> bool:
    """Settle a pending refund once: succeeded turns its reservation into refunded money (on the payment and its
    invoice or order), failed releases it. A refund already settled stays as it is (False): a late or repeated
    provider event changes nothing."""
    looked = await ctx.db.get(Refund, refund_id)
    if looked is None or looked.status != RefundStatus.pending:
        return False
    await members.lock(ctx, looked.member_id)
    refund = await ctx.db.get(Refund, refund_id, lock=True, fresh=True)
    if refund is None or refund.status != RefundStatus.pending:
        return False
    values: dict[str, object] = {"settled_at": ctx.now}
    if provider_refund_id and not refund.provider_refund_id:
        values["provider_refund_id"] = provider_refund_id
    if failure_reason:
        values["failure_reason"] = failure_reason[:500]
    if not await ctx.transition(REFUND_LIFECYCLE, Refund, refund.id, outcome, values=values):
        return False
    amount = refund.amount
    if outcome == RefundStatus.failed:
        released = await ctx.db.update_returning(
            Payment,
            col(Payment.id) == refund.payment_id,
            col(Payment.amount_reserved) >= amount,
            values={"amount_reserved": col(Payment.amount_reserved) - amount},
        )
        if not released:
            raise RuntimeError(f"refund {refund.id}: its reservation is missing from payment {refund.payment_id}")
        ctx.record_change(refund_id=refund.id, refund_status=outcome.value)
        return True
    before = await load(ctx, refund.payment_id)
    moved = await ctx.db.update_returning(
        Payment,
        col(Payment.id) == refund.payment_id,
        col(Payment.amount_reserved) >= amount,
        values={
            "amount_reserved": col(Payment.amount_reserved) - amount,
            "amount_refunded": col(Payment.amount_refunded) + amount,
        },
    )
    if not moved:
        raise RuntimeError(f"refund {refund.id}: its reservation is missing from payment {refund.payment_id}")
    payment = await load(ctx, refund.payment_id)
    status = PaymentStatus.refunded if payment.amount_refunded == payment.amount else PaymentStatus.partially_refunded
    await ctx.transition(PAYMENT_LIFECYCLE, Payment, payment.id, status)
    # Money never applied to the target (it arrived once the target was settled) is given back first.
    unapplied = payment.amount - payment.amount_applied
    off_target = max(0, before.amount_refunded + amount - unapplied) - max(0, before.amount_refunded - unapplied)
    if off_target > 0:
        await _apply_refund(ctx, TargetRef.of(payment.invoice_id, payment.order_id), Money(off_target, refund.currency))
    await members.record_spend(ctx, refund.member_id, -amount, refund.currency)
    ctx.record_change(refund_id=refund.id, refund_status=outcome.value)
    ctx.emit(PaymentRefunded(payment_id=payment.id, refund_id=refund.id, amount=amount, currency=refund.currency))
    return True


async def record_provider_refund(
    ctx: ToolContext, payment: Payment, *, amount: int, provider_refund_id: str, reason: str | None
) -> bool:
    """A refund made at the provider directly (its dashboard): recorded once, as succeeded, when the payment can
    still take it; False when it was already known or does not fit."""
    existing = await ctx.db.first(ctx.db.select(Refund, col(Refund.provider_refund_id) == provider_refund_id))
    if existing is not None:
        return False
    if not await _reserve(ctx, payment, amount):
        return False
    refund = _new_refund(ctx, payment, amount, reason, provider_refund_id=provider_refund_id)
    await ctx.db.flush()
    return await settle_refund(ctx, refund.id, RefundStatus.succeeded)
