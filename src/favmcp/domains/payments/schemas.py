from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from favmcp.core.money import CurrencyCode, PositiveAmount
from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.core.times import UtcDateTime
from favmcp.domains.payments.models import LinkStatus, PaymentMethod, PaymentStatus, RefundStatus
from favmcp.registry.spec import ConfirmInput, Preview, ToolInput, WriteInput

PaymentId = Annotated[
    str, Field(min_length=1, max_length=40, description="A payment id (pay_...), from list_payments.")
]
InvoiceId = Annotated[str, Field(min_length=1, max_length=40)]
OrderId = Annotated[str, Field(min_length=1, max_length=40)]


def required_key() -> Any:
    """idempotency_key made required (WriteInput's is optional): a retry of a money movement never moves it twice."""
    return Field(min_length=1, max_length=200, description="Required; retry-safe.")


class Target(Schema):
    """Exactly one of invoice_id and order_id: what the money settles."""

    invoice_id: InvoiceId | None = None
    order_id: OrderId | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Target:
        if (self.invoice_id is None) == (self.order_id is None):
            raise ValueError("give exactly one of invoice_id and order_id")
        return self


class RecordPaymentInput(WriteInput):
    idempotency_key: str = required_key()
    method: Literal["cash", "card_terminal", "bank_transfer"]
    amount: PositiveAmount
    currency: CurrencyCode | None = None
    invoice_id: InvoiceId | None = None
    order_id: OrderId | None = None
    reference: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one_target(self) -> RecordPaymentInput:
        Target(invoice_id=self.invoice_id, order_id=self.order_id)
        return self


class PaymentPublic(Schema):
    id: str
    status: PaymentStatus
    method: PaymentMethod
    member_id: str
    invoice_id: str | None
    order_id: str | None
    currency: str
    amount: int
    amount_refunded: int
    amount_refundable: int = Field(description="Paid less refunded and pending refunds.")
    amount_unapplied: int = Field(description="Paid online once the target was settled otherwise.")
    reference: str | None
    paid_at: datetime | None
    created_at: datetime


class RecordedPayment(PaymentPublic):
    amount_remaining: int = Field(description="Still owed on the invoice or order after this payment.")


class RefundPublic(Schema):
    id: str
    payment_id: str
    status: RefundStatus
    currency: str
    amount: int
    reason: str | None
    failure_reason: str | None
    created_at: datetime
    settled_at: datetime | None


class PaymentDetail(PaymentPublic):
    refunds: list[RefundPublic]


class GetPaymentInput(ToolInput):
    payment_id: PaymentId


class ListPaymentsInput(ToolInput, PageParams):
    paid_from: UtcDateTime | None = None
    paid_before: UtcDateTime | None = None
    method: PaymentMethod | None = None
    status: PaymentStatus | None = None
    member_id: str | None = Field(default=None, max_length=40)
    invoice_id: str | None = Field(default=None, max_length=40)
    order_id: str | None = Field(default=None, max_length=40)


class PaymentPage(Page[PaymentPublic]):
    pass


class RefundPaymentInput(ConfirmInput):
    idempotency_key: str = required_key()
    payment_id: PaymentId
    amount: PositiveAmount | None = Field(default=None, description="Default: all that is refundable.")
    currency: CurrencyCode | None = None
    reason: str | None = Field(default=None, max_length=500)


class RefundPreview(Preview):
    payment_id: str
    currency: str
    amount: int = Field(description="What would be refunded.")
    amount_refundable: int = Field(description="Refundable on the payment now.")
    through_provider: bool = Field(description="Sent to the payment provider (an online payment); else at once.")


class ListRefundsInput(ToolInput, PageParams):
    created_from: UtcDateTime | None = None
    created_before: UtcDateTime | None = None
    payment_id: str | None = Field(default=None, max_length=40)
    status: RefundStatus | None = None


class RefundPage(Page[RefundPublic]):
    pass


class CreatePaymentLinkInput(WriteInput):
    invoice_id: InvoiceId | None = None
    order_id: OrderId | None = None
    expires_in_hours: int = Field(default=24, ge=1, le=24)

    @model_validator(mode="after")
    def _one_target(self) -> CreatePaymentLinkInput:
        Target(invoice_id=self.invoice_id, order_id=self.order_id)
        return self


class PaymentLinkPublic(Schema):
    id: str
    url: str
    status: LinkStatus
    invoice_id: str | None
    order_id: str | None
    currency: str
    amount: int = Field(description="The amount remaining when it was made.")
    expires_at: datetime
    created_at: datetime
