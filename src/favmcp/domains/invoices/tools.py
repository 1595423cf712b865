"""Invoices: drafts with server-computed totals, gap-free numbers, payments' state, credit notes, voids, write-offs,
emailing invoices and payment reminders."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import col

from favmcp.core.contact import Channel
from favmcp.core.errors import FieldError, validation_failed
from favmcp.core.links import MemberLink, OnErase, OnMerge
from favmcp.core.money import Money, format_money
from favmcp.core.pagination import decode_cursor, encode_cursor
from favmcp.domains.invoices import sending, service
from favmcp.domains.invoices.events import EVENTS
from favmcp.domains.invoices.lifecycle import INVOICE_LIFECYCLE
from favmcp.domains.invoices.models import CreditNote, Invoice, InvoiceReminder, InvoiceStatus
from favmcp.domains.invoices.schemas import (
    CreateCreditNoteInput,
    CreateInvoiceInput,
    CreditNotePublic,
    DraftInvoice,
    GetInvoiceInput,
    InvoiceInput,
    InvoicePage,
    InvoicePreview,
    InvoicePublic,
    InvoiceSummary,
    ListInvoicesInput,
    ListOverdueInput,
    MarkUncollectibleInput,
    OverdueInvoice,
    OverduePage,
    SendReminderInput,
    SentInvoice,
    SentReminder,
    UpdateInvoiceDraftInput,
    VoidInvoiceInput,
)
from favmcp.effects.approvals import ApprovalAsk, SendKind
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain
from favmcp.registry.spec import tool

DOMAIN_NAME = "invoices"


@tool(domain=DOMAIN_NAME, title="Create invoice", hints="W", scope="invoices:write", route="POST /v1/invoices")
async def create_invoice(ctx: ToolContext, args: CreateInvoiceInput) -> DraftInvoice:
    """Create a draft invoice for an active member: the server prices each line (unit amounts include tax only if
    the workspace's prices do) and applies an optional promotion code. Nothing is owed until finalize_invoice."""
    invoice_id = await service.create_draft(
        ctx,
        member_id=args.member_id,
        lines=args.lines,
        currency=args.currency,
        due_date=args.due_date,
        memo=args.memo,
        promotion_code=args.promotion_code,
    )
    ctx.record_change(invoice_id=invoice_id, member_id=args.member_id)
    return await service.draft_public(ctx, await service.load(ctx, invoice_id))


@tool(
    domain=DOMAIN_NAME, title="Get invoice", hints="R I", scope="invoices:read", route="GET /v1/invoices/{invoice_id}"
)
async def get_invoice(ctx: ToolContext, args: GetInvoiceInput) -> InvoicePublic:
    """One invoice with lines, totals, tax by rate, amounts paid, credited and refunded, credit notes and status
    (the payments themselves: list_payments)."""
    return await service.public(ctx, await service.load(ctx, args.invoice_id))


@tool(domain=DOMAIN_NAME, title="List invoices", hints="R I", scope="invoices:read", route="GET /v1/invoices")
async def list_invoices(ctx: ToolContext, args: ListInvoicesInput) -> InvoicePage:
    """Invoices newest first, filtered by status, member and creation days (workspace timezone)."""
    stmt = ctx.db.select(Invoice)
    if args.status:
        stmt = stmt.where(col(Invoice.status) == args.status)
    if args.member_id:
        stmt = stmt.where(col(Invoice.member_id) == args.member_id)
    if args.created_from or args.created_to:
        tz = service.zone(await ctx.db.workspace())
        if args.created_from:
            stmt = stmt.where(col(Invoice.created_at) >= service.day_start(args.created_from, tz))
        if args.created_to:
            stmt = stmt.where(col(Invoice.created_at) < service.day_start(args.created_to + service.ONE_DAY, tz))
    rows, cursor = await ctx.db.page(stmt, col(Invoice.id), args)
    return InvoicePage(items=[service.summary(i) for i in rows], next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME,
    title="Update invoice draft",
    hints="W I",
    scope="invoices:write",
    route="PATCH /v1/invoices/{invoice_id}",
)
async def update_invoice_draft(ctx: ToolContext, args: UpdateInvoiceDraftInput) -> DraftInvoice:
    """Change a draft: lines (replaces them all), due date, memo, promotion code (null removes it); fields left
    out stay. A finalized invoice is refused: correct it with create_credit_note."""
    changed = args.model_fields_set - {"idempotency_key", "invoice_id"}
    invoice = await service.update_draft(
        ctx,
        args.invoice_id,
        changed=changed,
        lines=args.lines,
        currency=args.currency,
        due_date=args.due_date,
        memo=args.memo,
        promotion_code=args.promotion_code,
    )
    ctx.record_change(invoice_id=invoice.id, fields=sorted(changed))
    return await service.draft_public(ctx, invoice)


@tool(
    domain=DOMAIN_NAME,
    title="Finalize invoice",
    hints="W I",
    scope="invoices:write",
    route="POST /v1/invoices/{invoice_id}/finalize",
)
async def finalize_invoice(ctx: ToolContext, args: InvoiceInput) -> InvoiceSummary:
    """Finalize a draft: it takes the next invoice number (gap-free, never reused), its lines freeze and it is
    open for payment, due in 30 days unless set. A zero total is paid at once; a repeat answers as it is."""
    number = await service.finalize(ctx, args.invoice_id)
    ctx.record_change(invoice_id=args.invoice_id, number=number)
    return service.summary(await service.load(ctx, args.invoice_id))


def _money(invoice: Invoice, minor: int, locale: str) -> str:
    return format_money(Money(minor, invoice.currency), locale)


async def _ask_send(ctx: ToolContext, args: InvoiceInput) -> ApprovalAsk:
    invoice = await service.load(ctx, args.invoice_id)
    sending.check_sendable(invoice)
    _, to = await sending.recipient(ctx, invoice)
    total = _money(invoice, invoice.amount_remaining, (await ctx.db.workspace()).locale)
    return ApprovalAsk(
        channel=Channel.email,
        kind=SendKind.transactional,
        recipient=to,
        summary=f"Email invoice {invoice.number} ({total} due) to {to}.",
    )


@tool(
    domain=DOMAIN_NAME,
    title="Send invoice",
    hints="W O",
    scope="invoices:write",
    gate="approval",
    ask=_ask_send,
    route="POST /v1/invoices/{invoice_id}/send",
)
async def send_invoice(ctx: ToolContext, args: InvoiceInput) -> SentInvoice:
    """Email an open invoice (lines, totals, amount due, due date) to the member's email address. May wait for
    approval under the workspace's policy. Refused for a member without email or erased."""
    invoice = await service.load(ctx, args.invoice_id, lock=True)
    sending.check_sendable(invoice)
    to, message = await sending.email_invoice(ctx, invoice)
    invoice.sent_at = invoice.updated_at = ctx.now
    ctx.record_change(invoice_id=invoice.id, message_id=message.id)
    return SentInvoice(
        status="done",
        invoice_id=invoice.id,
        number=invoice.number,
        recipient=to,
        message_id=message.id,
        sent_at=ctx.now,
    )


def _preview(invoice: Invoice, summary: str, *, nothing_to_do: bool = False) -> InvoicePreview:
    return InvoicePreview(
        summary=summary,
        nothing_to_do=nothing_to_do,
        invoice_id=invoice.id,
        number=invoice.number,
        status=invoice.status,
        currency=invoice.currency,
        total=invoice.total,
        amount_paid=invoice.amount_paid,
        amount_remaining=invoice.amount_remaining,
    )


async def _preview_void(ctx: ToolContext, args: VoidInvoiceInput) -> InvoicePreview:
    invoice = await service.load(ctx, args.invoice_id)
    if invoice.status == InvoiceStatus.void:
        return _preview(invoice, f"Invoice {invoice.number} is already void; nothing changes.", nothing_to_do=True)
    service.check_voidable(invoice)
    total = _money(invoice, invoice.total, (await ctx.db.workspace()).locale)
    return _preview(
        invoice,
        f"Void invoice {invoice.number} ({total}): nothing is owed on it any more; it stays on record and its "
        "number is never reused.",
    )


@tool(
    domain=DOMAIN_NAME,
    title="Void invoice",
    hints="D I",
    scope="invoices:admin",
    gate="confirm",
    preview=_preview_void,
    route="POST /v1/invoices/{invoice_id}/void",
)
async def void_invoice(ctx: ToolContext, args: VoidInvoiceInput) -> InvoiceSummary:
    """Void an open or uncollectible invoice that has no payments: it stays on record with its number and owes
    nothing. Paid or part-paid invoices are refused: use create_credit_note (and refund_payment)."""
    invoice = await service.void(ctx, args.invoice_id)
    ctx.record_change(invoice_id=invoice.id)
    return service.summary(invoice)


async def _preview_uncollectible(ctx: ToolContext, args: MarkUncollectibleInput) -> InvoicePreview:
    invoice = await service.load(ctx, args.invoice_id)
    if invoice.status == InvoiceStatus.uncollectible:
        return _preview(invoice, f"Invoice {invoice.number} is already uncollectible.", nothing_to_do=True)
    if invoice.status != InvoiceStatus.open:
        raise INVOICE_LIFECYCLE.refuse(invoice.id, InvoiceStatus(invoice.status), InvoiceStatus.uncollectible)
    owed = _money(invoice, invoice.amount_remaining, (await ctx.db.workspace()).locale)
    return _preview(
        invoice,
        f"Write off invoice {invoice.number}: the {owed} still owed is reported as uncollectible; a later "
        "payment still settles it.",
    )


@tool(
    domain=DOMAIN_NAME,
    title="Mark invoice uncollectible",
    hints="D I",
    scope="invoices:admin",
    gate="confirm",
    preview=_preview_uncollectible,
    route="POST /v1/invoices/{invoice_id}/mark-uncollectible",
)
async def mark_invoice_uncollectible(ctx: ToolContext, args: MarkUncollectibleInput) -> InvoiceSummary:
    """Write off an open invoice as uncollectible (bad debt). It can still be paid or voided later."""
    invoice = await service.mark_uncollectible(ctx, args.invoice_id)
    ctx.record_change(invoice_id=invoice.id)
    return service.summary(invoice)


@tool(
    domain=DOMAIN_NAME,
    title="Create credit note",
    hints="W",
    scope="invoices:admin",
    route="POST /v1/invoices/{invoice_id}/credit-notes",
)
async def create_credit_note(ctx: ToolContext, args: CreateCreditNoteInput) -> CreditNotePublic:
    """Credit part or all of an open, uncollectible or paid invoice, never beyond its total. It lowers what is
    still owed (nothing left owed: paid); the part already paid becomes refund_due (then refund_payment)."""
    invoice = await service.load(ctx, args.invoice_id)
    amount = Money(args.amount, args.currency or invoice.currency)
    note = await service.credit(ctx, invoice.id, amount, args.reason)
    ctx.record_change(invoice_id=args.invoice_id, credit_note_id=note.id)
    return service.credit_note_public(note)


@tool(
    domain=DOMAIN_NAME,
    title="List overdue invoices",
    hints="R I",
    scope="invoices:read",
    route="GET /v1/invoices/overdue",
)
async def list_overdue_invoices(ctx: ToolContext, args: ListOverdueInput) -> OverduePage:
    """Open invoices whose due date has passed (workspace timezone), oldest due first, with days overdue and the
    reminders sent so far (send_payment_reminder)."""
    today = await service.today(ctx)
    stmt = ctx.db.select(Invoice, col(Invoice.status) == InvoiceStatus.open, col(Invoice.due_date) < today)
    if args.cursor:
        due, ident = _overdue_cursor(args.cursor)
        stmt = stmt.where(or_(col(Invoice.due_date) > due, and_(col(Invoice.due_date) == due, col(Invoice.id) > ident)))
    rows = await ctx.db.all(stmt.order_by(col(Invoice.due_date), col(Invoice.id)).limit(args.limit + 1))
    cursor = None
    if len(rows) > args.limit:
        rows = rows[: args.limit]
        last = rows[-1]
        assert last.due_date is not None
        cursor = encode_cursor({"due": last.due_date.isoformat(), "id": last.id})
    history = await sending.reminder_history(ctx, [i.id for i in rows])
    items = []
    for invoice in rows:
        assert invoice.due_date is not None
        sent, last_at = history.get(invoice.id, (0, None))
        items.append(
            OverdueInvoice.model_validate(
                {
                    **service.summary(invoice).model_dump(),
                    "bill_to_name": invoice.bill_to_name,
                    "days_overdue": (today - invoice.due_date).days,
                    "reminders_sent": sent,
                    "last_reminder_at": last_at,
                }
            )
        )
    return OverduePage(items=items, next_cursor=cursor, has_more=cursor is not None)


def _overdue_cursor(cursor: str) -> tuple[date, str]:
    """The (due date, id) a page of overdue invoices ended at."""
    after = decode_cursor(cursor)
    try:
        return date.fromisoformat(after.get("due", "")), str(after.get("id", ""))
    except ValueError:
        raise validation_failed(
            "The cursor is not one this server issued.",
            [FieldError(field="cursor", message="pass next_cursor from a previous page unchanged")],
        ) from None


async def _ask_remind(ctx: ToolContext, args: SendReminderInput) -> ApprovalAsk:
    invoice = await service.load(ctx, args.invoice_id)
    days = await sending.days_overdue(ctx, invoice)
    await sending.check_reminder_gap(ctx, invoice)
    _, to = await sending.recipient(ctx, invoice)
    owed = _money(invoice, invoice.amount_remaining, (await ctx.db.workspace()).locale)
    return ApprovalAsk(
        channel=Channel.email,
        kind=SendKind.transactional,
        recipient=to,
        summary=f"Payment reminder for invoice {invoice.number} ({owed} open, {days} days overdue) to {to}.",
    )


@tool(
    domain=DOMAIN_NAME,
    title="Send payment reminder",
    hints="W O",
    scope="invoices:write",
    gate="approval",
    ask=_ask_remind,
    route="POST /v1/invoices/{invoice_id}/reminders",
)
async def send_payment_reminder(ctx: ToolContext, args: SendReminderInput) -> SentReminder:
    """Email a payment reminder for an overdue open invoice (amount due, days overdue, the invoice). At most one
    per invoice a day; recorded in the reminder history. May wait for approval under the workspace's policy."""
    invoice = await service.load(ctx, args.invoice_id, lock=True)
    days = await sending.days_overdue(ctx, invoice)
    await sending.check_reminder_gap(ctx, invoice)
    to, message = await sending.email_invoice(ctx, invoice, days=days)
    count = await sending.record_reminder(ctx, invoice, to, message)
    ctx.record_change(invoice_id=invoice.id, message_id=message.id)
    return SentReminder(
        status="done",
        invoice_id=invoice.id,
        number=invoice.number,
        recipient=to,
        message_id=message.id,
        sent_at=ctx.now,
        reminders_sent=count,
    )


async def _member_money(ctx: ToolContext, member_id: str) -> dict[str, Any]:
    """The customer's unpaid invoices (open or uncollectible), oldest due first, for get_member_profile."""
    unpaid = await ctx.db.all(
        ctx.db.select(Invoice, col(Invoice.member_id) == member_id, col(Invoice.status).in_(service.PAYABLE)).order_by(
            col(Invoice.due_date), col(Invoice.id)
        )
    )
    fields = ("id", "number", "status", "currency", "total", "amount_remaining", "due_date")
    return {"open_invoices": [{name: getattr(i, name) for name in fields} for i in unpaid]}


def _export(row: Any) -> dict[str, Any]:
    return dict(row.model_dump(mode="json", exclude={"workspace_id"}))


MEMBER_LINKS = [
    MemberLink(
        "invoices",
        Invoice,
        "member_id",
        OnMerge.move,
        OnErase.pseudonymise,
        personal_fields={"bill_to_name": None, "bill_to_email": None},
        export=_export,
    ),
    MemberLink("credit_notes", CreditNote, "member_id", OnMerge.move, OnErase.keep, export=_export),
    MemberLink(
        "invoice_reminders",
        InvoiceReminder,
        "member_id",
        OnMerge.move,
        OnErase.pseudonymise,
        personal_fields={"recipient": None},
        export=_export,
    ),
]

DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[
        create_invoice,
        get_invoice,
        list_invoices,
        update_invoice_draft,
        finalize_invoice,
        send_invoice,
        void_invoice,
        mark_invoice_uncollectible,
        create_credit_note,
        list_overdue_invoices,
        send_payment_reminder,
    ],
    member_links=MEMBER_LINKS,
    events=EVENTS,
    member_money=_member_money,
)
