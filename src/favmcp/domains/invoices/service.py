"""Invoice workflows shared by the tools, and the contract other domains call: create_draft, finalize,
receivable, apply_payment, apply_refund, invoice_summary (payments, subscriptions and bookings use these).

Money rules: every line is priced once by core.money.price_line (half-up per line) and the totals are sums of
rounded lines. A promotion's discount is a document discount spread over the lines in proportion to their amounts
before discount (largest remainder, so the shares are whole minor units that add up to the discount exactly and
never exceed a line); each line is then priced with its share, so its tax is computed on what is really charged.

Stored balances move only by conditional UPDATEs: amount_paid grows while a payment fits in amount_remaining,
amount_credited while credit notes stay within the total, the number counter by one UPDATE per finalize.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case
from sqlmodel import col

from favmcp.core.errors import ErrorCode, FavError, FieldError, conflict, invalid_state, not_found, validation_failed
from favmcp.core.ids import new_id
from favmcp.core.money import (
    MAX_AMOUNT,
    CurrencyMismatchError,
    Line,
    LineAmounts,
    Money,
    Percent,
    Receivable,
    Totals,
    allocate,
    minor_units,
    price_line,
    totals,
)
from favmcp.db.tenancy import Workspace
from favmcp.domains.invoices import promotion
from favmcp.domains.invoices.events import (
    CreditNoteCreated,
    InvoiceFinalized,
    InvoiceMarkedUncollectible,
    InvoicePaid,
    InvoiceVoided,
)
from favmcp.domains.invoices.lifecycle import INVOICE_LIFECYCLE, allowed_next
from favmcp.domains.invoices.models import (
    CreditNote,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    InvoiceStatus,
)
from favmcp.domains.invoices.schemas import (
    CreditNotePublic,
    DraftInvoice,
    DraftLine,
    InvoicePublic,
    InvoiceSummary,
    LinePublic,
    TaxByRate,
)
from favmcp.domains.members import service as members
from favmcp.registry.context import ToolContext

__all__ = [
    "DraftLine",
    "InvoiceSummary",
    "add_fee",
    "apply_payment",
    "apply_refund",
    "create_draft",
    "finalize",
    "invoice_summary",
    "receivable",
]

FIND = "Find invoices with list_invoices."
PAYABLE = (InvoiceStatus.open, InvoiceStatus.uncollectible)
CREDITABLE = (InvoiceStatus.open, InvoiceStatus.uncollectible, InvoiceStatus.paid)
PAYMENT_TERMS = timedelta(days=30)  # a due date left out at finalize: 30 days (Stripe's default)
NUMBER_PREFIX = "INV-"
MAX_LINES = 100  # as create_invoice takes
ONE_DAY = timedelta(days=1)


# -- reading ---------------------------------------------------------------------------------------------------


async def load(ctx: ToolContext, invoice_id: str, *, lock: bool = False) -> Invoice:
    """The invoice of this workspace (another workspace's answers exactly like a missing one)."""
    invoice = await ctx.db.get(Invoice, invoice_id, lock=lock, fresh=True)
    if invoice is None:
        raise not_found("invoice", invoice_id, hint=FIND)
    return invoice


def zone(workspace: Workspace) -> ZoneInfo:
    return ZoneInfo(workspace.timezone)


async def today(ctx: ToolContext) -> date:
    """The calendar day in the workspace's timezone."""
    return ctx.now.astimezone(zone(await ctx.db.workspace())).date()


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a calendar day in a timezone, in UTC."""
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


async def lines_of(ctx: ToolContext, invoice_id: str) -> list[InvoiceLine]:
    stmt = ctx.db.select(InvoiceLine, col(InvoiceLine.invoice_id) == invoice_id).order_by(col(InvoiceLine.position))
    return await ctx.db.all(stmt)


async def credit_notes_of(ctx: ToolContext, invoice_id: str) -> list[CreditNote]:
    stmt = ctx.db.select(CreditNote, col(CreditNote.invoice_id) == invoice_id).order_by(col(CreditNote.id))
    return await ctx.db.all(stmt)


def summary(invoice: Invoice) -> InvoiceSummary:
    return InvoiceSummary.model_validate(invoice, from_attributes=True)


def line_public(line: InvoiceLine) -> LinePublic:
    return LinePublic.model_validate(line, from_attributes=True)


def credit_note_public(note: CreditNote) -> CreditNotePublic:
    return CreditNotePublic.model_validate(note, from_attributes=True)


def tax_by_rate(lines: Sequence[InvoiceLine], currency: str) -> list[TaxByRate]:
    groups: dict[str, TaxByRate] = {}
    for line in lines:
        rate = str(Percent.parse(line.tax_rate))
        group = groups.setdefault(rate, TaxByRate(rate=rate, currency=currency, net=0, tax=0))
        group.net += line.net
        group.tax += line.tax
    return sorted(groups.values(), key=lambda g: Percent.parse(g.rate).value)


async def public(ctx: ToolContext, invoice: Invoice) -> InvoicePublic:
    lines = await lines_of(ctx, invoice.id)
    return InvoicePublic.model_validate(
        {
            **invoice.model_dump(),
            "lines": [line_public(line) for line in lines],
            "tax_by_rate": tax_by_rate(lines, invoice.currency),
            "credit_notes": [credit_note_public(n) for n in await credit_notes_of(ctx, invoice.id)],
        }
    )


async def draft_public(ctx: ToolContext, invoice: Invoice) -> DraftInvoice:
    lines = await lines_of(ctx, invoice.id)
    return DraftInvoice.model_validate({**invoice.model_dump(), "lines": [line_public(line) for line in lines]})


# -- pricing ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Priced:
    lines: list[LineAmounts]
    totals: Totals


def _too_large(field: str) -> FavError:
    return validation_failed(
        "The amounts are too large to be invoiced.",
        [FieldError(field=field, message=f"at most {MAX_AMOUNT} minor units")],
    )


def base_amounts(lines: Sequence[DraftLine]) -> list[int]:
    """quantity x unit amount per line, in the terms the prices are entered in."""
    bases = [line.quantity * line.unit_amount for line in lines]
    for i, base in enumerate(bases):
        if base > MAX_AMOUNT:
            raise _too_large(f"lines.{i}.unit_amount")
    if sum(bases) > MAX_AMOUNT:
        raise _too_large("lines")
    return bases


def price(lines: Sequence[DraftLine], currency: str, *, prices_include_tax: bool, discount: int = 0) -> Priced:
    shares = allocate(discount, base_amounts(lines))
    priced = [
        price_line(
            Line(line.quantity, Money(line.unit_amount, currency), line.tax_rate, Money(share, currency)),
            prices_include_tax=prices_include_tax,
        )
        for line, share in zip(lines, shares, strict=True)
    ]
    result = Priced(priced, totals(priced, currency))
    if result.totals.total.minor > MAX_AMOUNT:
        raise _too_large("lines")
    return result


def as_draft_lines(lines: Sequence[InvoiceLine]) -> list[DraftLine]:
    return [
        DraftLine(
            description=line.description,
            quantity=line.quantity,
            unit_amount=line.unit_amount,
            tax_rate=Percent.parse(line.tax_rate),
            product_id=line.product_id,
            service_id=line.service_id,
            plan_id=line.plan_id,
        )
        for line in lines
    ]


async def _price_draft(
    ctx: ToolContext, invoice: Invoice, lines: Sequence[DraftLine], code: str | None, workspace: Workspace
) -> None:
    """Price the lines (with the promotion, redeemed again for the new subtotal) and store them and the totals."""
    subtotal = Money(sum(base_amounts(lines)), invoice.currency)
    discount = await promotion.apply(ctx, invoice, code, subtotal)
    priced = price(lines, invoice.currency, prices_include_tax=workspace.prices_include_tax, discount=discount)
    await ctx.db.delete(InvoiceLine, col(InvoiceLine.invoice_id) == invoice.id)
    for position, (line, amounts) in enumerate(zip(lines, priced.lines, strict=True), start=1):
        ctx.db.add(
            InvoiceLine(
                id=new_id("inl"),
                workspace_id=ctx.workspace_id,
                invoice_id=invoice.id,
                position=position,
                description=line.description,
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                tax_rate=str(line.tax_rate),
                currency=invoice.currency,
                discount=amounts.discount.minor,
                net=amounts.net.minor,
                tax=amounts.tax.minor,
                gross=amounts.gross.minor,
                product_id=line.product_id,
                service_id=line.service_id,
                plan_id=line.plan_id,
            )
        )
    figures = priced.totals
    invoice.subtotal, invoice.tax = figures.subtotal.minor, figures.tax.minor
    invoice.discount, invoice.total = figures.discount.minor, figures.total.minor
    invoice.amount_remaining = figures.total.minor


async def _check_due(ctx: ToolContext, due_date: date) -> None:
    if due_date < await today(ctx):
        raise validation_failed(
            f"The due date {due_date} is in the past.",
            [FieldError(field="due_date", message="today or later (workspace timezone)")],
        )


# -- drafts ----------------------------------------------------------------------------------------------------


async def create_draft(
    ctx: ToolContext,
    *,
    member_id: str,
    lines: Sequence[DraftLine],
    currency: str | None = None,
    due_date: date | None = None,
    memo: str | None = None,
    promotion_code: str | None = None,
) -> str:
    """A new draft invoice for an active member; returns its id. Refuses unknown, merged or erased members."""
    if not lines:
        raise validation_failed("An invoice needs at least one line.", [FieldError(field="lines", message="1 or more")])
    member = await members.load_for_write(ctx, member_id)
    workspace = await ctx.db.workspace()
    currency = currency or workspace.currency
    minor_units(currency)
    if due_date is not None:
        await _check_due(ctx, due_date)
    invoice = ctx.db.add(
        Invoice(
            id=new_id("inv"),
            workspace_id=ctx.workspace_id,
            member_id=member.id,
            currency=currency,
            due_date=due_date,
            memo=memo,
            bill_to_name=member.name,
            bill_to_email=member.email,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
    )
    await ctx.db.flush()
    await _price_draft(ctx, invoice, lines, promotion_code, workspace)
    await ctx.db.flush()
    return invoice.id


async def add_fee(ctx: ToolContext, member_id: str, line: DraftLine, currency: str) -> str:
    """Put a fee (a late cancel, a no-show) on the customer's newest draft invoice in `currency`, or on a new draft
    when none is open; returns the invoice id. The customer's row is locked first, so two fees at once share one
    draft. Charging once is the caller's part (the transition that charges the fee happens once)."""
    await members.load_for_write(ctx, member_id)
    draft = await ctx.db.first(
        ctx.db.unfiltered.select(
            Invoice,
            col(Invoice.member_id) == member_id,
            col(Invoice.status) == InvoiceStatus.draft,
            col(Invoice.currency) == currency,
        ).order_by(col(Invoice.id).desc())
    )
    lines = [*as_draft_lines(await lines_of(ctx, draft.id)), line] if draft is not None else []
    if draft is None or len(lines) > MAX_LINES:
        return await create_draft(ctx, member_id=member_id, lines=[line], currency=currency)
    invoice = await load(ctx, draft.id, lock=True)
    await _price_draft(ctx, invoice, lines, invoice.promotion_code, await ctx.db.workspace())
    invoice.updated_at = ctx.now
    await ctx.db.flush()
    return invoice.id


def _not_draft(invoice: Invoice, hint: str) -> FavError:
    return invalid_state(
        f"Invoice {invoice.number or invoice.id} is {invoice.status}; lines, due date and notes change only in draft.",
        current=invoice.status,
        allowed=allowed_next(invoice.status),
        hint=hint,
        id=invoice.id,
    )


async def update_draft(
    ctx: ToolContext,
    invoice_id: str,
    *,
    changed: set[str],
    lines: Sequence[DraftLine] | None = None,
    currency: str | None = None,
    due_date: date | None = None,
    memo: str | None = None,
    promotion_code: str | None = None,
) -> Invoice:
    """Replace what `changed` names of a draft: lines, currency, due_date, memo, promotion_code (None clears the
    last three). New lines, currency or code reprice the draft and redeem its code again for the new subtotal."""
    # The member's row first, then the invoice's: the order erase and merge take them in (a redemption points at
    # the member), so a draft change racing them waits instead of deadlocking. An erased member's draft is frozen.
    await members.load_for_write(ctx, (await load(ctx, invoice_id)).member_id)
    invoice = await load(ctx, invoice_id, lock=True)
    if invoice.status != InvoiceStatus.draft:
        raise _not_draft(
            invoice,
            "Correct a finalized invoice with create_credit_note, or void_invoice it (if unpaid) and create another.",
        )
    if "due_date" in changed and due_date is not None:
        await _check_due(ctx, due_date)
    if "currency" in changed and currency is not None:
        minor_units(currency)
        invoice.currency = currency
    if changed & {"lines", "currency", "promotion_code"}:
        current = lines if "lines" in changed and lines else as_draft_lines(await lines_of(ctx, invoice.id))
        code = promotion_code if "promotion_code" in changed else invoice.promotion_code
        await _price_draft(ctx, invoice, current, code, await ctx.db.workspace())
    if "due_date" in changed:
        invoice.due_date = due_date
    if "memo" in changed:
        invoice.memo = memo
    invoice.updated_at = ctx.now
    await ctx.db.flush()
    return invoice


# -- finalizing ------------------------------------------------------------------------------------------------


async def next_number(ctx: ToolContext) -> str:
    """The workspace's next invoice number, taken in this transaction: the counter row is moved by one UPDATE
    (writers of one workspace queue on it until commit), so numbers are gap-free and never handed out twice."""
    counter = col(InvoiceCounter.id) == ctx.workspace_id
    await ctx.db.insert_or_ignore(InvoiceCounter, [{"id": ctx.workspace_id, "last_number": 0}])
    await ctx.db.update(InvoiceCounter, counter, values={"last_number": col(InvoiceCounter.last_number) + 1})
    row = await ctx.db.get(InvoiceCounter, ctx.workspace_id, fresh=True)
    assert row is not None
    return f"{NUMBER_PREFIX}{row.last_number:06d}"


async def finalize(ctx: ToolContext, invoice_id: str) -> str:
    """Open a draft for payment under the next number; returns the number. An invoice finalized before answers
    its number. A total of zero is paid at once (as Stripe does)."""
    invoice = await load(ctx, invoice_id, lock=True)
    if invoice.status != InvoiceStatus.draft:
        assert invoice.number is not None
        return invoice.number
    day = await today(ctx)
    if invoice.due_date is not None and invoice.due_date < day:
        raise validation_failed(
            f"The draft's due date {invoice.due_date} has passed.",
            [FieldError(field="due_date", message="set a new one with update_invoice_draft")],
        )
    member, _ = await members.load(ctx, invoice.member_id)
    snapshot = {"bill_to_name": member.name, "bill_to_email": member.email} if member.status == "active" else {}
    number = await next_number(ctx)
    await ctx.transition(
        INVOICE_LIFECYCLE,
        Invoice,
        invoice.id,
        InvoiceStatus.open,
        values={
            "number": number,
            "finalized_at": ctx.now,
            "updated_at": ctx.now,
            "due_date": invoice.due_date or day + PAYMENT_TERMS,
            **snapshot,
        },
    )
    ctx.emit(InvoiceFinalized(invoice_id=invoice.id, member_id=invoice.member_id))
    if invoice.amount_remaining == 0:
        await _mark_paid(ctx, invoice)
    return number


async def _mark_paid(ctx: ToolContext, invoice: Invoice) -> None:
    await ctx.transition(
        INVOICE_LIFECYCLE, Invoice, invoice.id, InvoiceStatus.paid, values={"paid_at": ctx.now, "updated_at": ctx.now}
    )
    ctx.emit(InvoicePaid(invoice_id=invoice.id, member_id=invoice.member_id))


# -- payments (the contract with the payments domain) ----------------------------------------------------------


def _takes_no_payment(invoice: Invoice) -> FavError:
    return invalid_state(
        f"Invoice {invoice.number or invoice.id} is {invoice.status}; only open or uncollectible invoices take "
        "payments.",
        current=invoice.status,
        allowed=allowed_next(invoice.status),
        hint="finalize_invoice a draft first." if invoice.status == InvoiceStatus.draft else None,
        id=invoice.id,
    )


async def receivable(ctx: ToolContext, invoice_id: str, *, lock: bool = True) -> Receivable:
    """What is owed on an invoice, its row locked for the caller's transaction (lock=False: a look before a
    provider call, checked again under the lock); open or uncollectible only."""
    invoice = await load(ctx, invoice_id, lock=lock)
    if invoice.status not in PAYABLE:
        raise _takes_no_payment(invoice)
    return Receivable(
        kind="invoice",
        id=invoice.id,
        member_id=invoice.member_id,
        currency=invoice.currency,
        total=invoice.total,
        amount_paid=invoice.amount_paid,
        amount_remaining=invoice.amount_remaining,
    )


def _positive(amount: Money) -> None:
    if amount.minor <= 0:
        raise validation_failed("The amount must be positive.", [FieldError(field="amount", message="1 or more")])


async def apply_payment(ctx: ToolContext, invoice_id: str, amount: Money) -> None:
    """Add a payment: one conditional UPDATE that fits it into what is still owed, while open or uncollectible;
    the invoice is paid when nothing remains. Overpaying is a conflict; another currency CurrencyMismatchError."""
    invoice = await load(ctx, invoice_id)
    if amount.currency != invoice.currency:
        raise CurrencyMismatchError(invoice.currency, amount.currency)
    _positive(amount)
    moved = await ctx.db.update_returning(
        Invoice,
        col(Invoice.id) == invoice.id,
        col(Invoice.status).in_(PAYABLE),
        col(Invoice.amount_remaining) >= amount.minor,
        values={
            "amount_paid": col(Invoice.amount_paid) + amount.minor,
            "amount_remaining": col(Invoice.amount_remaining) - amount.minor,
            "updated_at": ctx.now,
        },
    )
    invoice = await load(ctx, invoice.id)
    if not moved:
        if invoice.status not in PAYABLE:
            raise _takes_no_payment(invoice)
        owed = Money(invoice.amount_remaining, invoice.currency)
        raise conflict(
            f"A payment of {amount} is more than the {owed} still owed on invoice {invoice.number}.",
            hint="Record at most amount_remaining (get_invoice).",
            details={"amount_remaining": invoice.amount_remaining, "currency": invoice.currency},
        )
    if invoice.amount_remaining == 0:
        await _mark_paid(ctx, invoice)


async def apply_refund(ctx: ToolContext, invoice_id: str, amount: Money) -> None:
    """Record a refund of money paid on the invoice (never more than paid less refunded); it settles refund_due
    first. The invoice's status and amount_remaining stay as they are."""
    invoice = await load(ctx, invoice_id)
    if amount.currency != invoice.currency:
        raise CurrencyMismatchError(invoice.currency, amount.currency)
    _positive(amount)
    moved = await ctx.db.update_returning(
        Invoice,
        col(Invoice.id) == invoice.id,
        col(Invoice.amount_refunded) + amount.minor <= col(Invoice.amount_paid),
        values={
            "amount_refunded": col(Invoice.amount_refunded) + amount.minor,
            "refund_due": case(
                (col(Invoice.refund_due) > amount.minor, col(Invoice.refund_due) - amount.minor), else_=0
            ),
            "updated_at": ctx.now,
        },
    )
    if not moved:
        invoice = await load(ctx, invoice.id)
        refundable = Money(invoice.amount_paid - invoice.amount_refunded, invoice.currency)
        raise conflict(
            f"A refund of {amount} is more than the {refundable} paid and not yet refunded on this invoice.",
            details={"refundable": refundable.minor, "currency": invoice.currency},
        )


async def invoice_summary(ctx: ToolContext, invoice_id: str) -> InvoiceSummary:
    return summary(await load(ctx, invoice_id))


# -- corrections -----------------------------------------------------------------------------------------------


async def credit(ctx: ToolContext, invoice_id: str, amount: Money, reason: str) -> CreditNote:
    """A credit note: the part up to amount_remaining lowers what is owed (an invoice credited to nothing owed is
    paid, as in Stripe), the rest was paid already and becomes refund_due. All credit notes stay within the total."""
    invoice = await load(ctx, invoice_id, lock=True)
    if amount.currency != invoice.currency:
        raise CurrencyMismatchError(invoice.currency, amount.currency)
    if invoice.status not in CREDITABLE:
        raise invalid_state(
            f"Invoice {invoice.number or invoice.id} is {invoice.status}; credit notes are for open, uncollectible "
            "or paid invoices.",
            current=invoice.status,
            allowed=allowed_next(invoice.status),
            hint="Change a draft with update_invoice_draft." if invoice.status == InvoiceStatus.draft else None,
            id=invoice.id,
        )
    _positive(amount)
    creditable = invoice.total - invoice.amount_credited
    if amount.minor > creditable:
        left = Money(creditable, invoice.currency)
        raise conflict(
            f"Credit notes on invoice {invoice.number} cannot exceed its total; {left} is left to credit.",
            hint="Credit at most the amount left.",
            details={"creditable": creditable, "currency": invoice.currency},
        )
    applied = min(amount.minor, invoice.amount_remaining)
    moved = await ctx.db.update_returning(
        Invoice,
        col(Invoice.id) == invoice.id,
        col(Invoice.status).in_(CREDITABLE),
        col(Invoice.amount_credited) == invoice.amount_credited,
        col(Invoice.amount_remaining) == invoice.amount_remaining,
        col(Invoice.amount_credited) + amount.minor <= col(Invoice.total),
        values={
            "amount_credited": col(Invoice.amount_credited) + amount.minor,
            "amount_remaining": col(Invoice.amount_remaining) - applied,
            "refund_due": col(Invoice.refund_due) + (amount.minor - applied),
            "updated_at": ctx.now,
        },
    )
    if not moved:
        raise FavError(
            ErrorCode.conflict, "The invoice changed while it was being credited; try again.", retryable=True
        )
    note = ctx.db.add(
        CreditNote(
            id=new_id("crn"),
            workspace_id=ctx.workspace_id,
            invoice_id=invoice.id,
            member_id=invoice.member_id,
            currency=invoice.currency,
            amount=amount.minor,
            applied=applied,
            refund_due=amount.minor - applied,
            reason=reason,
            created_by_user_id=ctx.caller.user_id,
            created_at=ctx.now,
        )
    )
    await ctx.db.flush()
    ctx.emit(CreditNoteCreated(invoice_id=invoice.id, credit_note_id=note.id))
    invoice = await load(ctx, invoice.id)
    if invoice.status in PAYABLE and invoice.amount_remaining == 0:
        await _mark_paid(ctx, invoice)
    return note


def check_voidable(invoice: Invoice) -> None:
    """Only open or uncollectible invoices without payments are voided; a paid one takes a credit note."""
    if invoice.status == InvoiceStatus.paid or invoice.amount_paid > 0:
        raise invalid_state(
            f"Invoice {invoice.number} is {invoice.status} with {Money(invoice.amount_paid, invoice.currency)} "
            "paid; an invoice with payments is corrected with a credit note, never voided.",
            current=invoice.status,
            allowed=allowed_next(invoice.status),
            hint="Use create_credit_note, then refund_payment for money to give back.",
            id=invoice.id,
        )
    if invoice.status not in PAYABLE:
        raise INVOICE_LIFECYCLE.refuse(
            invoice.id, InvoiceStatus(invoice.status), InvoiceStatus.void, hint="A draft is changed, not voided."
        )


async def void(ctx: ToolContext, invoice_id: str) -> Invoice:
    """Void an open or uncollectible invoice without payments: it stays on record with its number, owes nothing,
    and its promotion redemption is released. Voiding a void invoice changes nothing."""
    invoice = await load(ctx, invoice_id, lock=True)
    if invoice.status == InvoiceStatus.void:
        return invoice
    check_voidable(invoice)
    await ctx.transition(
        INVOICE_LIFECYCLE,
        Invoice,
        invoice.id,
        InvoiceStatus.void,
        values={"voided_at": ctx.now, "updated_at": ctx.now, "amount_remaining": 0},
    )
    await promotion.release(ctx, invoice, keep_code=True)
    ctx.emit(InvoiceVoided(invoice_id=invoice.id, member_id=invoice.member_id))
    return await load(ctx, invoice.id)


async def mark_uncollectible(ctx: ToolContext, invoice_id: str) -> Invoice:
    """Write off an open invoice; it can still be paid or voided later. A repeat changes nothing."""
    invoice = await load(ctx, invoice_id, lock=True)
    moved = await ctx.transition(
        INVOICE_LIFECYCLE,
        Invoice,
        invoice.id,
        InvoiceStatus.uncollectible,
        values={"marked_uncollectible_at": ctx.now, "updated_at": ctx.now},
    )
    if moved:
        ctx.emit(InvoiceMarkedUncollectible(invoice_id=invoice.id, member_id=invoice.member_id))
    return await load(ctx, invoice.id)
