"""The points ledger: every change of a customer's points goes through here.

Each change locks the customer's account row first, so the changes of one customer take turns; then it appends one
ledger entry, moves the balance by the same number (the database refuses a negative balance) and keeps the lots
in step: a credit makes a lot, a debit takes from the soonest-expiring lots first, an expiry writes off one lot.
Entries with a source happen once per (kind, source) (a unique index backs the check made under the lock), so an
event replayed or a job run twice changes nothing. Invariants read and write without the staff viewer's filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col

from favmcp.core.errors import conflict
from favmcp.core.ids import new_id
from favmcp.db.scoped import WorkspaceDB
from favmcp.domains.loyalty.events import (
    PointsAdjusted,
    PointsEarned,
    PointsExpired,
    PointsRedeemed,
    PointsReversed,
)
from favmcp.domains.loyalty.models import EntryKind, LoyaltyAccount, LoyaltyProgram, PointsEntry, PointsLot
from favmcp.registry.context import ToolContext

SYSTEM = "system"
BALANCE_HINT = "See the balance with get_points_balance."


def _db(ctx: ToolContext) -> WorkspaceDB:
    return ctx.db.unfiltered


def actor(ctx: ToolContext) -> str:
    return ctx.caller.user_id or SYSTEM


def expiry_from(program: LoyaltyProgram, now: datetime) -> datetime | None:
    """When points credited now expire under the program (None: never)."""
    return now + timedelta(days=program.expiry_days) if program.expiry_days else None


async def account(ctx: ToolContext, member_id: str) -> LoyaltyAccount:
    """The customer's account, made on first use, locked for this transaction (re-read under the lock)."""
    db = _db(ctx)
    await db.insert_or_ignore(
        LoyaltyAccount,
        [{"id": new_id("lac"), "member_id": member_id, "balance": 0, "created_at": ctx.now, "updated_at": ctx.now}],
    )
    found = await db.first(
        db.select(LoyaltyAccount, col(LoyaltyAccount.member_id) == member_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert found is not None
    return found


async def find_account(ctx: ToolContext, member_id: str) -> LoyaltyAccount | None:
    """The customer's account as the caller may see it, without locking or making one."""
    return await ctx.db.first(ctx.db.select(LoyaltyAccount, col(LoyaltyAccount.member_id) == member_id))


async def has_entry(ctx: ToolContext, kind: EntryKind, source: str) -> bool:
    db = _db(ctx)
    return bool(await db.count(PointsEntry, col(PointsEntry.kind) == kind, col(PointsEntry.source) == source))


def _entry(
    ctx: ToolContext,
    acct: LoyaltyAccount,
    kind: EntryKind,
    points: int,
    *,
    source: str | None = None,
    reason: str | None = None,
    lot_id: str | None = None,
    expires_at: datetime | None = None,
    shortfall: int = 0,
) -> PointsEntry:
    return _db(ctx).add(
        PointsEntry(
            id=new_id("pte"),
            workspace_id=ctx.workspace_id,
            member_id=acct.member_id,
            kind=kind,
            points=points,
            source=source,
            reason=reason,
            lot_id=lot_id,
            expires_at=expires_at,
            shortfall=shortfall,
            actor=actor(ctx),
            created_at=ctx.now,
        )
    )


async def _move_balance(ctx: ToolContext, acct: LoyaltyAccount, points: int) -> None:
    acct.balance += points
    acct.updated_at = ctx.now
    await _db(ctx).flush()


async def credit(
    ctx: ToolContext,
    acct: LoyaltyAccount,
    points: int,
    *,
    kind: EntryKind,
    expires_at: datetime | None,
    source: str | None = None,
    reason: str | None = None,
) -> PointsEntry | None:
    """Add points as a new lot (an earn, an upward adjustment, a returned voucher). With a source, once: a second
    credit for the same (kind, source) returns None and changes nothing. `acct` must be locked (see account)."""
    assert points > 0 and kind in (EntryKind.earn, EntryKind.adjust, EntryKind.reversal)
    if source is not None and await has_entry(ctx, kind, source):
        return None
    lot_id = new_id("lot")
    entry = _entry(ctx, acct, kind, points, source=source, reason=reason, lot_id=lot_id, expires_at=expires_at)
    _db(ctx).add(
        PointsLot(
            id=lot_id,
            workspace_id=ctx.workspace_id,
            member_id=acct.member_id,
            entry_id=entry.id,
            points=points,
            remaining=points,
            expires_at=expires_at,
            created_at=ctx.now,
        )
    )
    await _move_balance(ctx, acct, points)
    if kind == EntryKind.earn:
        ctx.emit(PointsEarned(**_facts(entry, acct), source=source))
    elif kind == EntryKind.adjust:
        ctx.emit(PointsAdjusted(**_facts(entry, acct)))
    else:
        assert source is not None
        ctx.emit(PointsReversed(**_facts(entry, acct), source=source, shortfall=0))
    return entry


def _facts(entry: PointsEntry, acct: LoyaltyAccount) -> dict[str, object]:
    return {"member_id": acct.member_id, "entry_id": entry.id, "points": entry.points, "balance": acct.balance}


def insufficient(acct: LoyaltyAccount, points: int) -> Exception:
    return conflict(
        f"The customer has {acct.balance} points; {points} cannot be taken.",
        hint=BALANCE_HINT,
        details={"reason": "insufficient_points", "balance": acct.balance, "requested": points},
    )


async def _usable_lots(ctx: ToolContext, member_id: str, first_lot: str | None) -> Sequence[PointsLot]:
    """The customer's lots with points left, in the order debits take them: `first_lot` (a refunded payment's own
    points), then soonest expiry first, never-expiring last, oldest first among equals. Locked: the account lock
    already serialises this customer; the row locks keep an expiry run of another customer's merge out."""
    db = _db(ctx)
    lots = await db.all(
        db.select(PointsLot, col(PointsLot.member_id) == member_id, col(PointsLot.remaining) > 0)
        .order_by(col(PointsLot.expires_at).asc().nulls_last(), col(PointsLot.created_at), col(PointsLot.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if first_lot is not None:
        lots = sorted(lots, key=lambda lot: lot.id != first_lot)  # stable: the rest keep their order
    return lots


async def _take(ctx: ToolContext, member_id: str, points: int, first_lot: str | None) -> None:
    left = points
    for lot in await _usable_lots(ctx, member_id, first_lot):
        if left == 0:
            break
        taken = min(lot.remaining, left)
        lot.remaining -= taken
        left -= taken
    # The lots hold exactly the balance: a debit within the balance always finds its points.
    assert left == 0, f"lots of {member_id} hold less than the balance"


async def debit(
    ctx: ToolContext,
    acct: LoyaltyAccount,
    points: int,
    *,
    kind: EntryKind,
    source: str | None = None,
    reason: str | None = None,
) -> PointsEntry:
    """Take points (a redemption, a downward adjustment), soonest-expiring first; refuses more than the balance
    (conflict, details.reason insufficient_points). `acct` must be locked (see account)."""
    assert points > 0 and kind in (EntryKind.redeem, EntryKind.adjust)
    if points > acct.balance:
        raise insufficient(acct, points)
    await _take(ctx, acct.member_id, points, None)
    entry = _entry(ctx, acct, kind, -points, source=source, reason=reason)
    await _move_balance(ctx, acct, -points)
    event = PointsRedeemed if kind == EntryKind.redeem else PointsAdjusted
    ctx.emit(event(**_facts(entry, acct)))
    return entry


@dataclass(frozen=True, slots=True)
class Reversal:
    entry: PointsEntry
    taken: int
    shortfall: int


async def reverse(
    ctx: ToolContext, acct: LoyaltyAccount, points: int, *, source: str, first_lot: str | None, reason: str
) -> Reversal | None:
    """Take back points that should not have been earned (a refund), at most the balance: what could not be taken
    is recorded as the entry's shortfall. Once per source; None when it was done already or there is nothing to
    take back. `acct` must be locked."""
    if points <= 0 or await has_entry(ctx, EntryKind.reversal, source):
        return None
    taken = min(points, acct.balance)
    if taken:
        await _take(ctx, acct.member_id, taken, first_lot)
    entry = _entry(ctx, acct, EntryKind.reversal, -taken, source=source, reason=reason, shortfall=points - taken)
    await _move_balance(ctx, acct, -taken)
    ctx.emit(PointsReversed(**_facts(entry, acct), source=source, shortfall=points - taken))
    return Reversal(entry, taken, points - taken)


async def expire_lot(ctx: ToolContext, acct: LoyaltyAccount, lot_id: str, up_to: datetime) -> PointsEntry | None:
    """Write off what a lot expired by `up_to` has left, once (None when nothing is left or it was written off).
    `acct` must be locked: the lot is re-read under that lock."""
    db = _db(ctx)
    lot = await db.get(PointsLot, lot_id, lock=True, fresh=True)
    if lot is None or lot.remaining == 0 or lot.expires_at is None or lot.expires_at > up_to:
        return None
    source = f"lot:{lot.id}"
    if await has_entry(ctx, EntryKind.expire, source):
        return None
    left = lot.remaining
    lot.remaining = 0
    entry = _entry(ctx, acct, EntryKind.expire, -left, source=source, lot_id=lot.id)
    await _move_balance(ctx, acct, -left)
    ctx.emit(PointsExpired(**_facts(entry, acct), lot_id=lot.id))
    return entry


async def due_lots(ctx: ToolContext, up_to: datetime, member_id: str | None = None) -> list[tuple[str, str]]:
    """(member id, lot id) of lots expired by `up_to` with points left, by member then lot."""
    db = _db(ctx)
    stmt = db.select_columns(PointsLot, col(PointsLot.member_id), col(PointsLot.id)).where(
        col(PointsLot.remaining) > 0, col(PointsLot.expires_at) <= up_to
    )
    if member_id is not None:
        stmt = stmt.where(col(PointsLot.member_id) == member_id)
    return [(m, lot) for m, lot in await db.rows(stmt.order_by(col(PointsLot.member_id), col(PointsLot.id)))]


async def lot_of_source(ctx: ToolContext, source: str) -> tuple[PointsEntry, str | None] | None:
    """The earn entry for a source and its lot, if that source earned."""
    db = _db(ctx)
    entry = await db.first(
        db.select(PointsEntry, col(PointsEntry.kind) == EntryKind.earn, col(PointsEntry.source) == source)
    )
    return (entry, entry.lot_id) if entry is not None else None
