"""The credits ledger of class packs, and the API bookings use: reserve one credit for a booking, release it (an
early cancel) or consume it (attended, late cancel, no-show), each at most once per booking.

Entries are append-only. Per lot, the sum of its entries equals its `remaining` column, which reserves decrement by
one conditional UPDATE (`remaining > 0 AND expires_at > now`): concurrent reserves never take a lot below zero.
A member's usable balance is the sum of the entries of lots that have not expired, on subscriptions that are active.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from favmcp.core.errors import conflict, invalid_state, not_found
from favmcp.core.ids import new_id
from favmcp.domains.subscriptions.models import (
    CreditEntry,
    CreditKind,
    CreditLot,
    Subscription,
    SubscriptionStatus,
)
from favmcp.registry.context import ToolContext


def _entry(lot: CreditLot, kind: CreditKind, amount: int, now: datetime, booking_ref: str | None = None) -> CreditEntry:
    return CreditEntry(
        id=new_id("cre"),
        workspace_id=lot.workspace_id,
        member_id=lot.member_id,
        subscription_id=lot.subscription_id,
        lot_id=lot.id,
        kind=kind,
        amount=amount,
        booking_ref=booking_ref,
        expires_at=lot.expires_at,
        created_at=now,
    )


async def grant(ctx: ToolContext, subscription: Subscription, credits: int, expires_at: datetime) -> CreditLot:
    """A paid pack's credits: a lot and its grant entry."""
    lot = ctx.db.add(
        CreditLot(
            id=new_id("lot"),
            workspace_id=ctx.workspace_id,
            subscription_id=subscription.id,
            member_id=subscription.member_id,
            granted=credits,
            remaining=credits,
            expires_at=expires_at,
            created_at=ctx.now,
        )
    )
    ctx.db.add(_entry(lot, CreditKind.grant, credits, ctx.now))
    await ctx.db.flush()
    return lot


async def _reservation(ctx: ToolContext, booking_ref: str, *, lock: bool = False) -> CreditEntry | None:
    found = await ctx.db.first(
        ctx.db.select(
            CreditEntry, col(CreditEntry.booking_ref) == booking_ref, col(CreditEntry.kind) == CreditKind.reserve
        )
    )
    if found is not None and lock:
        return await ctx.db.get(CreditEntry, found.id, lock=True)  # a release and a consume of it take turns
    return found


async def reserve_credit(ctx: ToolContext, member_id: str, booking_ref: str) -> str | None:
    """Hold one credit of the member's active packs for a booking, soonest-expiring first; the reservation's id,
    or None when no usable credit is left. Reserving for a booking that holds one already answers that one."""
    held = await _reservation(ctx, booking_ref)
    if held is not None:
        return await _still_held(ctx, held, member_id)
    lots = await ctx.db.all(
        ctx.db.select(CreditLot)
        .join(Subscription, col(Subscription.id) == col(CreditLot.subscription_id))
        .where(
            ctx.db.owns(Subscription),
            col(CreditLot.member_id) == member_id,
            col(CreditLot.remaining) > 0,
            col(CreditLot.expires_at) > ctx.now,
            col(Subscription.status) == SubscriptionStatus.active,
        )
        .order_by(col(CreditLot.expires_at), col(CreditLot.id))
    )
    for lot in lots:
        try:
            async with ctx.db.savepoint():
                # One conditional UPDATE per try: of concurrent reserves on a lot's last credit exactly one wins.
                won = await ctx.db.update_returning(
                    CreditLot,
                    col(CreditLot.id) == lot.id,
                    col(CreditLot.remaining) > 0,
                    col(CreditLot.expires_at) > ctx.now,
                    values={"remaining": col(CreditLot.remaining) - 1},
                )
                if not won:
                    continue
                entry = ctx.db.add(_entry(lot, CreditKind.reserve, -1, ctx.now, booking_ref))
                await ctx.db.flush()
                return entry.id
        except IntegrityError:
            # A concurrent reserve for the same booking won; its hold stands and ours is undone.
            held = await _reservation(ctx, booking_ref)
            if held is None:
                raise
            return await _still_held(ctx, held, member_id)
    return None


async def _still_held(ctx: ToolContext, held: CreditEntry, member_id: str) -> str:
    """A booking's existing reservation, for a repeated reserve: refused once it was released (a booking reserves
    once; a new booking has a new reference) or when it is another member's."""
    released = await ctx.db.count(
        CreditEntry, col(CreditEntry.booking_ref) == held.booking_ref, col(CreditEntry.kind) == CreditKind.release
    )
    if released:
        raise invalid_state(
            f"The credit held for booking {held.booking_ref} was released; it cannot be reserved again.",
            current=CreditKind.release.value,
            reservation_id=held.id,
        )
    return _same_member(held, member_id)


def _same_member(held: CreditEntry, member_id: str) -> str:
    if held.member_id != member_id:
        raise conflict(
            f"Booking {held.booking_ref} already holds a credit of another member ({held.member_id}).",
            details={"reservation_id": held.id, "member_id": held.member_id},
        )
    return held.id


async def _settle(ctx: ToolContext, booking_ref: str, kind: CreditKind, other: CreditKind) -> bool:
    held = await _reservation(ctx, booking_ref, lock=True)
    if held is None:
        raise not_found("credit reservation for booking", booking_ref)
    done = await ctx.db.count(
        CreditEntry, col(CreditEntry.booking_ref) == booking_ref, col(CreditEntry.kind).in_([kind, other])
    )
    if done:
        settled = await ctx.db.first(
            ctx.db.select(CreditEntry, col(CreditEntry.booking_ref) == booking_ref, col(CreditEntry.kind) == other)
        )
        if settled is not None:
            raise invalid_state(
                f"The credit held for booking {booking_ref} was already {other.value}d.",
                current=other.value,
                reservation_id=held.id,
            )
        return False
    lot = await ctx.db.get(CreditLot, held.lot_id, lock=True)
    if lot is None:
        raise not_found("credit lot", held.lot_id)
    amount = 1 if kind == CreditKind.release else 0
    ctx.db.add(_entry(lot, kind, amount, ctx.now, booking_ref))
    lost = _lost_kind(lot, await ctx.db.get(Subscription, lot.subscription_id), ctx.now) if amount else None
    if lost is not None:
        # The pack ended or expired while the credit was held: it comes back and is written off at once.
        ctx.db.add(_entry(lot, lost, -1, ctx.now))
    elif amount:
        await ctx.db.update(
            CreditLot, col(CreditLot.id) == lot.id, values={"remaining": col(CreditLot.remaining) + amount}
        )
    await ctx.db.flush()
    return True


def _lost_kind(lot: CreditLot, sub: Subscription | None, now: datetime) -> CreditKind | None:
    if lot.expires_at <= now:
        return CreditKind.expire
    if sub is None or sub.status == SubscriptionStatus.cancelled:
        return CreditKind.forfeit
    return None


async def release_credit(ctx: ToolContext, booking_ref: str) -> bool:
    """Return the credit held for a booking (an early cancel): True the first time, False on a repeat. Refused
    (invalid_state) once the credit was consumed; not_found without a reservation."""
    return await _settle(ctx, booking_ref, CreditKind.release, CreditKind.consume)


async def consume_credit(ctx: ToolContext, booking_ref: str) -> bool:
    """Use the credit held for a booking (attended, late cancel, no-show): True the first time, False on a repeat.
    Refused (invalid_state) once the credit was released; not_found without a reservation."""
    return await _settle(ctx, booking_ref, CreditKind.consume, CreditKind.release)


async def write_off(ctx: ToolContext, lots: Sequence[str], kind: CreditKind) -> int:
    """Expire or forfeit what is left on lots (each locked, then zeroed with one entry); the credits written off."""
    total = 0
    for lot_id in sorted(lots):
        lot = await ctx.db.get(CreditLot, lot_id, lock=True)
        if lot is None or lot.remaining <= 0:
            continue
        ctx.db.add(_entry(lot, kind, -lot.remaining, ctx.now))
        total += lot.remaining
        await ctx.db.update(CreditLot, col(CreditLot.id) == lot.id, values={"remaining": 0})
    await ctx.db.flush()
    return total


async def expire_due(ctx: ToolContext, up_to: datetime) -> int:
    """Write off the credits of lots that expired by `up_to`, once each."""
    due = await ctx.db.all(ctx.db.select(CreditLot, col(CreditLot.expires_at) <= up_to, col(CreditLot.remaining) > 0))
    return await write_off(ctx, [lot.id for lot in due], CreditKind.expire)


async def forfeit(ctx: ToolContext, subscription_id: str) -> int:
    """A pack cancelled at once loses its unused credits (held ones stay held until the booking settles)."""
    lots = await ctx.db.all(
        ctx.db.select(CreditLot, col(CreditLot.subscription_id) == subscription_id, col(CreditLot.remaining) > 0)
    )
    return await write_off(ctx, [lot.id for lot in lots], CreditKind.forfeit)


async def unused(ctx: ToolContext, subscription_id: str) -> int:
    """What a cancel now would forfeit: the credits left on unexpired lots."""
    stmt = ctx.db.select_columns(CreditLot, func.coalesce(func.sum(col(CreditLot.remaining)), 0)).where(
        col(CreditLot.subscription_id) == subscription_id, col(CreditLot.expires_at) > ctx.now
    )
    return int((await ctx.db.rows(stmt))[0][0])


async def credits_left(ctx: ToolContext, subscription_ids: Sequence[str]) -> dict[str, int]:
    """Usable credits per subscription: the ledger's sum over lots that have not expired."""
    if not subscription_ids:
        return {}
    stmt = (
        ctx.db.select_columns(CreditEntry, col(CreditEntry.subscription_id), func.sum(col(CreditEntry.amount)))
        .where(col(CreditEntry.subscription_id).in_(subscription_ids), col(CreditEntry.expires_at) > ctx.now)
        .group_by(col(CreditEntry.subscription_id))
    )
    return {sub_id: int(total) for sub_id, total in await ctx.db.rows(stmt)}
