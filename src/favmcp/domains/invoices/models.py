"""Invoice tables: the invoice with its stored totals, its lines, credit notes, reminders and the number counter."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index
from sqlmodel import Field

from favmcp.db.types import Table, amount_field, enum_field, utc_field, workspace_fk


class InvoiceStatus(StrEnum):
    draft = "draft"
    open = "open"
    paid = "paid"
    void = "void"
    uncollectible = "uncollectible"


class Invoice(Table, table=True):
    """A bill to one member. Amounts in minor units of `currency`; the totals are the server's, never the caller's.

    amount_remaining = max(0, total - amount_credited - amount_paid), kept by conditional UPDATEs; refund_due is
    what credit notes gave back beyond what was still owed (money the business owes), less refunds recorded."""

    __tablename__ = "invoices"
    __table_args__ = (
        # Gap-free numbers are assigned from InvoiceCounter; this index makes a duplicate impossible regardless.
        Index("uq_invoices_workspace_number", "workspace_id", "number", unique=True),
        Index("ix_invoices_workspace_status_due", "workspace_id", "status", "due_date"),
        CheckConstraint("amount_credited <= total", name="ck_invoices_credited_within_total"),
        CheckConstraint("amount_remaining >= 0", name="ck_invoices_remaining_not_negative"),
        CheckConstraint("amount_refunded <= amount_paid", name="ck_invoices_refunded_within_paid"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    member_id: str = Field(max_length=40, index=True)
    status: InvoiceStatus = enum_field(InvoiceStatus, InvoiceStatus.draft)
    number: str | None = Field(default=None, max_length=40)
    currency: str = Field(max_length=3)
    subtotal: int = amount_field(default=0)
    tax: int = amount_field(default=0)
    discount: int = amount_field(default=0)
    total: int = amount_field(default=0)
    amount_paid: int = amount_field(default=0)
    amount_credited: int = amount_field(default=0)
    amount_refunded: int = amount_field(default=0)
    amount_remaining: int = amount_field(default=0)
    refund_due: int = amount_field(default=0)
    promotion_code: str | None = Field(default=None, max_length=80)
    promotion_id: str | None = Field(default=None, max_length=40)
    due_date: date | None = None
    memo: str | None = Field(default=None, max_length=2000)
    # The bill-to snapshot printed on the invoice; cleared when the member is erased.
    bill_to_name: str | None = Field(default=None, max_length=200)
    bill_to_email: str | None = Field(default=None, max_length=320)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    finalized_at: datetime | None = utc_field(nullable=True)
    sent_at: datetime | None = utc_field(nullable=True)
    paid_at: datetime | None = utc_field(nullable=True)
    voided_at: datetime | None = utc_field(nullable=True)
    marked_uncollectible_at: datetime | None = utc_field(nullable=True)


class InvoiceLine(Table, table=True):
    """One line as priced: each amount rounded once (core.money.price_line); net + tax == gross."""

    __tablename__ = "invoice_lines"
    __table_args__ = (Index("ix_invoice_lines_invoice_position", "invoice_id", "position"),)

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    invoice_id: str = Field(foreign_key="invoices.id", max_length=40, ondelete="CASCADE")
    position: int
    description: str = Field(max_length=500)
    quantity: int
    unit_amount: int = amount_field()
    tax_rate: str = Field(max_length=12)
    currency: str = Field(max_length=3)
    discount: int = amount_field(default=0)
    net: int = amount_field()
    tax: int = amount_field()
    gross: int = amount_field()
    product_id: str | None = Field(default=None, max_length=40)
    service_id: str | None = Field(default=None, max_length=40)
    plan_id: str | None = Field(default=None, max_length=40)


class CreditNote(Table, table=True):
    """A credit against a finalized invoice: `applied` lowered what was owed, `refund_due` is owed back."""

    __tablename__ = "invoice_credit_notes"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    invoice_id: str = Field(foreign_key="invoices.id", index=True, max_length=40, ondelete="CASCADE")
    member_id: str = Field(max_length=40, index=True)
    currency: str = Field(max_length=3)
    amount: int = amount_field()
    applied: int = amount_field()
    refund_due: int = amount_field()
    reason: str = Field(max_length=500)
    created_by_user_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()


class InvoiceReminder(Table, table=True):
    """A payment reminder sent for an invoice (the reminder history of list_overdue_invoices)."""

    __tablename__ = "invoice_reminders"
    __table_args__ = (Index("ix_invoice_reminders_invoice_sent", "invoice_id", "sent_at"),)

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    invoice_id: str = Field(foreign_key="invoices.id", max_length=40, ondelete="CASCADE")
    member_id: str = Field(max_length=40, index=True)
    channel: str = Field(max_length=20)
    recipient: str | None = Field(default=None, max_length=320)
    message_id: str | None = Field(default=None, max_length=40)
    sent_by_user_id: str | None = Field(default=None, max_length=40)
    sent_at: datetime = utc_field()


class InvoiceCounter(Table, table=True):
    """The workspace's last invoice number (one row per workspace, id = workspace id), moved by one UPDATE in the
    finalizing transaction: a rolled-back finalize gives its number back, a committed one never does."""

    __tablename__ = "invoice_counters"

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    last_number: int = Field(default=0)
