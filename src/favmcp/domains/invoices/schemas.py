"""Tool inputs and answers of the invoices domain. Amounts are integers in minor units beside their currency."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from favmcp.core.money import Amount, CurrencyCode, Percent, PositiveAmount
from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.core.times import CalendarDate
from favmcp.domains.invoices.models import InvoiceStatus
from favmcp.registry.spec import ConfirmInput, GatedResult, Preview, ToolInput, UpdateInput, WriteInput

InvoiceId = Annotated[str, Field(min_length=1, max_length=40, description="An invoice id (inv_...).")]
MemberId = Annotated[str, Field(min_length=1, max_length=40, description="A member id (mem_...).")]
RefId = Annotated[str, Field(min_length=1, max_length=40)]
Memo = Annotated[str, Field(max_length=2000, description="Notes printed on the invoice.")]
PromotionCode = Annotated[str, Field(min_length=1, max_length=80, description="A promotion code to apply.")]
MAX_QUANTITY = 1_000_000


NO_TAX = Percent(Decimal("0"))


# A line as entered; the server prices it (unit_amount excludes tax unless the workspace's prices include it).
class DraftLine(Schema):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    description: str = Field(min_length=1, max_length=300)
    quantity: int = Field(default=1, strict=True, ge=1, le=MAX_QUANTITY)
    unit_amount: Amount
    tax_rate: Percent = Field(default_factory=lambda: NO_TAX, description='Percent, e.g. "21"; default "0".')
    product_id: RefId | None = None
    service_id: RefId | None = None
    plan_id: RefId | None = None


Lines = Annotated[list[DraftLine], Field(min_length=1, max_length=100)]


class CreateInvoiceInput(WriteInput):
    member_id: MemberId
    lines: Lines
    currency: CurrencyCode | None = Field(default=None, description="Defaults to the workspace currency.")
    due_date: CalendarDate | None = Field(default=None, description="Defaults to 30 days after finalizing.")
    memo: Memo | None = None
    promotion_code: PromotionCode | None = None


class UpdateInvoiceDraftInput(UpdateInput):
    not_clearable = frozenset({"invoice_id", "lines", "currency"})

    invoice_id: InvoiceId
    lines: Lines | None = Field(default=None, description="Replaces all lines.")
    currency: CurrencyCode | None = Field(default=None, description="Of the lines' amounts.")
    due_date: CalendarDate | None = None
    memo: Memo | None = None
    promotion_code: PromotionCode | None = Field(default=None, description="null removes the promotion.")


class InvoiceInput(WriteInput):
    invoice_id: InvoiceId


class GetInvoiceInput(ToolInput):
    invoice_id: InvoiceId


class ListInvoicesInput(ToolInput, PageParams):
    status: InvoiceStatus | None = None
    member_id: MemberId | None = None
    created_from: CalendarDate | None = Field(default=None, description="First day, workspace timezone.")
    created_to: CalendarDate | None = Field(default=None, description="Last day, workspace timezone.")


class VoidInvoiceInput(ConfirmInput):
    invoice_id: InvoiceId


class MarkUncollectibleInput(ConfirmInput):
    invoice_id: InvoiceId


class CreateCreditNoteInput(WriteInput):
    invoice_id: InvoiceId
    amount: PositiveAmount
    currency: CurrencyCode | None = Field(default=None, description="The invoice's; another is refused.")
    reason: str = Field(min_length=1, max_length=500)


class ListOverdueInput(ToolInput, PageParams):
    pass


class SendReminderInput(WriteInput):
    invoice_id: InvoiceId
    channel: Literal["email"] = Field(default="email", description="Only email for now.")


class LinePublic(Schema):
    description: str
    quantity: int
    unit_amount: int
    tax_rate: str
    currency: str
    discount: int = Field(description="This line's share of the promotion discount.")
    net: int
    tax: int
    gross: int
    product_id: str | None
    service_id: str | None
    plan_id: str | None


class TaxByRate(Schema):
    rate: str
    currency: str
    net: int
    tax: int


class CreditNotePublic(Schema):
    id: str
    invoice_id: str
    currency: str
    amount: int
    applied: int = Field(description="The part that lowered what was owed.")
    refund_due: int = Field(description="The part owed back to the customer (already paid).")
    reason: str
    created_by_user_id: str | None
    created_at: datetime


class InvoicePublic(Schema):
    id: str
    number: str | None = Field(description="Assigned when finalized.")
    status: InvoiceStatus
    member_id: str
    bill_to_name: str | None
    bill_to_email: str | None
    currency: str
    subtotal: int = Field(description="Lines' net amounts, after discounts, before tax.")
    discount: int
    tax: int
    total: int
    amount_paid: int
    amount_credited: int
    amount_refunded: int
    amount_remaining: int = Field(description="Still owed: total - credited - paid, never below 0; 0 once void.")
    refund_due: int = Field(description="Credited beyond what was owed and not refunded yet (refund_payment).")
    promotion_code: str | None
    due_date: date | None
    memo: str | None
    lines: list[LinePublic]
    tax_by_rate: list[TaxByRate]
    credit_notes: list[CreditNotePublic]
    created_at: datetime
    finalized_at: datetime | None
    sent_at: datetime | None
    paid_at: datetime | None
    voided_at: datetime | None
    marked_uncollectible_at: datetime | None


class DraftInvoice(Schema):
    """A draft as priced: get_invoice shows everything else."""

    id: str
    status: InvoiceStatus
    member_id: str
    currency: str
    subtotal: int = Field(description="Lines' net amounts, after discounts, before tax.")
    discount: int
    tax: int
    total: int
    promotion_code: str | None
    due_date: date | None
    memo: str | None
    lines: list[LinePublic]


class InvoiceSummary(Schema):
    id: str
    number: str | None
    status: InvoiceStatus
    member_id: str
    currency: str
    total: int
    amount_paid: int
    amount_remaining: int
    due_date: date | None
    created_at: datetime


class InvoicePage(Page[InvoiceSummary]):
    pass


class OverdueInvoice(InvoiceSummary):
    bill_to_name: str | None
    days_overdue: int
    reminders_sent: int
    last_reminder_at: datetime | None


class OverduePage(Page[OverdueInvoice]):
    pass


class InvoicePreview(Preview):
    invoice_id: str
    number: str | None
    status: InvoiceStatus
    currency: str
    total: int
    amount_paid: int
    amount_remaining: int


class SentInvoice(GatedResult):
    invoice_id: str | None = None
    number: str | None = None
    recipient: str | None = None
    message_id: str | None = Field(default=None, description="The queued email (outbox).")
    sent_at: datetime | None = None


class SentReminder(SentInvoice):
    reminders_sent: int | None = Field(default=None, description="Reminders for this invoice so far.")
