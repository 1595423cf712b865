"""Emailing invoices and payment reminders: who receives them, whether they may, and the queued message."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func
from sqlmodel import col

from favmcp.core.errors import FavError, invalid_state, rate_limited
from favmcp.core.ids import new_id
from favmcp.core.money import Money
from favmcp.domains.invoices import documents, service
from favmcp.domains.invoices.lifecycle import allowed_next
from favmcp.domains.invoices.models import Invoice, InvoiceReminder, InvoiceStatus
from favmcp.domains.members import service as members
from favmcp.effects.models import OutboxMessage
from favmcp.registry.context import ToolContext

# A customer gets at most one payment reminder per invoice a day, however often an agent asks.
REMINDER_GAP = timedelta(hours=24)


async def recipient(ctx: ToolContext, invoice: Invoice) -> tuple[str, str]:
    """(name, email) of the invoice's member now; an erased member or one without email is refused."""
    member, _ = await members.load(ctx, invoice.member_id)
    if member.status == "erased":
        raise invalid_state(
            f"Member {member.id} was erased; nothing is sent to them any more.", current="erased", member_id=member.id
        )
    if not member.email:
        raise invalid_state(
            f"Member {member.id} has no email address; the invoice cannot be emailed.",
            current="no_email",
            hint="Add an email with update_member, then send again.",
            member_id=member.id,
        )
    return member.name, member.email


def _state(invoice: Invoice, what: str) -> FavError:
    return invalid_state(
        f"Invoice {invoice.number or invoice.id} is {invoice.status}; {what}",
        current=invoice.status,
        allowed=allowed_next(invoice.status),
        hint="finalize_invoice a draft first." if invoice.status == InvoiceStatus.draft else None,
        id=invoice.id,
    )


def check_sendable(invoice: Invoice) -> None:
    if invoice.status != InvoiceStatus.open:
        raise _state(invoice, "only open invoices are emailed.")


async def days_overdue(ctx: ToolContext, invoice: Invoice) -> int:
    """How many days past its due date an open invoice is (workspace timezone); refused unless overdue."""
    if invoice.status != InvoiceStatus.open:
        raise _state(invoice, "reminders are for open invoices past their due date.")
    today = await service.today(ctx)
    if invoice.due_date is None or invoice.due_date >= today:
        raise invalid_state(
            f"Invoice {invoice.number} is not overdue yet (due {invoice.due_date}).",
            current="not_overdue",
            hint="send_invoice sends it again; list_overdue_invoices lists the ones to remind.",
            id=invoice.id,
            due_date=invoice.due_date.isoformat() if invoice.due_date else None,
        )
    return (today - invoice.due_date).days


async def reminder_history(ctx: ToolContext, invoice_ids: list[str]) -> dict[str, tuple[int, object]]:
    """Per invoice: (reminders sent, the last one's time)."""
    if not invoice_ids:
        return {}
    stmt = (
        ctx.db.select_columns(
            InvoiceReminder, col(InvoiceReminder.invoice_id), func.count(), func.max(col(InvoiceReminder.sent_at))
        )
        .where(col(InvoiceReminder.invoice_id).in_(invoice_ids))
        .group_by(col(InvoiceReminder.invoice_id))
    )
    return {invoice_id: (int(n), last) for invoice_id, n, last in await ctx.db.rows(stmt)}


async def check_reminder_gap(ctx: ToolContext, invoice: Invoice) -> None:
    last = await ctx.db.first(
        ctx.db.select(InvoiceReminder, col(InvoiceReminder.invoice_id) == invoice.id).order_by(
            col(InvoiceReminder.sent_at).desc()
        )
    )
    if last is not None and ctx.now - last.sent_at < REMINDER_GAP:
        wait = int((last.sent_at + REMINDER_GAP - ctx.now).total_seconds()) + 1
        raise rate_limited(
            f"A reminder for invoice {invoice.number} was sent at {last.sent_at.isoformat()}; one a day at most.",
            retry_after=wait,
        )


def amount_due(invoice: Invoice) -> Money:
    return Money(invoice.amount_remaining, invoice.currency)


async def email_invoice(ctx: ToolContext, invoice: Invoice, *, days: int | None = None) -> tuple[str, OutboxMessage]:
    """Render and queue the invoice email (a reminder when `days` overdue is given); returns (recipient, message)."""
    name, to = await recipient(ctx, invoice)
    workspace = await ctx.db.workspace()
    email = documents.render(
        workspace,
        invoice,
        await service.lines_of(ctx, invoice.id),
        greeting_name=name,
        reminder_days_overdue=days,
        pay_url=await ctx.platform.payment_url(ctx, "invoice", invoice.id),
    )
    message = ctx.send_email(
        to=to, subject=email.subject, body=email.text, html=email.html, workspace_id=ctx.workspace_id
    )
    return to, message


async def record_reminder(ctx: ToolContext, invoice: Invoice, to: str, message: OutboxMessage) -> int:
    ctx.db.add(
        InvoiceReminder(
            id=new_id("rem"),
            workspace_id=ctx.workspace_id,
            invoice_id=invoice.id,
            member_id=invoice.member_id,
            channel="email",
            recipient=to,
            message_id=message.id,
            sent_by_user_id=ctx.caller.user_id,
            sent_at=ctx.now,
        )
    )
    await ctx.db.flush()
    return await ctx.db.count(InvoiceReminder, col(InvoiceReminder.invoice_id) == invoice.id)
