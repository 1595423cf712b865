"""Payments, refunds, hosted payment links and the provider events already processed.

Balances on a payment are guarded by the database: `amount_refunded + amount_reserved <= amount` is a CHECK, and
every change to them is one conditional UPDATE (see service.py). Refunds are their own rows, never edited but for
their settlement (pending -> succeeded | failed).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, text
from sqlmodel import Field

from favmcp.db.types import Table, amount_field, enum_field, utc_field, workspace_fk


class PaymentMethod(StrEnum):
    cash = "cash"
    card_terminal = "card_terminal"
    bank_transfer = "bank_transfer"
    online = "online"  # paid through the payment provider's hosted page


class PaymentStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"
    partially_refunded = "partially_refunded"
    refunded = "refunded"


class RefundStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


class LinkStatus(StrEnum):
    open = "open"
    complete = "complete"
    expired = "expired"


HAS_PROVIDER_REF = text("provider_ref IS NOT NULL")
HAS_PROVIDER_REFUND = text("provider_refund_id IS NOT NULL")


class Payment(Table, table=True):
    """Money received against one invoice or order. An online payment is recorded once per provider reference
    (the Checkout Session id), whatever the number of events that announce it."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="ck_payments_amount_positive"),
        CheckConstraint("amount_applied >= 0 AND amount_applied <= amount", name="ck_payments_applied"),
        CheckConstraint(
            "amount_refunded >= 0 AND amount_reserved >= 0 AND amount_refunded + amount_reserved <= amount",
            name="ck_payments_refundable",
        ),
        Index(
            "uq_payments_provider_ref",
            "workspace_id",
            "provider_ref",
            unique=True,
            sqlite_where=HAS_PROVIDER_REF,
            postgresql_where=HAS_PROVIDER_REF,
        ),
        Index("ix_payments_workspace_keyset", "workspace_id", "id"),
        Index("ix_payments_workspace_paid_at", "workspace_id", "paid_at"),  # revenue by when money came in
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    member_id: str = Field(foreign_key="members.id", index=True, max_length=40)
    invoice_id: str | None = Field(default=None, max_length=40, index=True)
    order_id: str | None = Field(default=None, max_length=40, index=True)
    method: PaymentMethod = enum_field(PaymentMethod)
    status: PaymentStatus = enum_field(PaymentStatus, PaymentStatus.pending, index=True)
    currency: str = Field(max_length=3)
    amount: int = amount_field()
    # What was applied to the invoice or order (less than amount when it was settled otherwise before the money
    # arrived online: the rest is for a refund).
    amount_applied: int = amount_field(default=0)
    amount_refunded: int = amount_field(default=0)
    # Held by refunds still pending: not refundable again until they settle or fail.
    amount_reserved: int = amount_field(default=0)
    reference: str | None = Field(default=None, max_length=200)  # a receipt or transfer reference; personal
    payer_email: str | None = Field(default=None, max_length=320)  # from the provider; personal
    provider: str | None = Field(default=None, max_length=20)
    provider_ref: str | None = Field(default=None, max_length=255)  # Checkout Session id
    provider_payment_id: str | None = Field(default=None, max_length=255)  # PaymentIntent id: what refunds name
    recorded_by: str | None = Field(default=None, max_length=40)
    paid_at: datetime | None = utc_field(nullable=True)
    created_at: datetime = utc_field()


class Refund(Table, table=True):
    """Money given back on one payment; its amount is held on the payment while it is pending."""

    __tablename__ = "payment_refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="ck_payment_refunds_amount_positive"),
        Index(
            "uq_payment_refunds_provider_id",
            "workspace_id",
            "provider_refund_id",
            unique=True,
            sqlite_where=HAS_PROVIDER_REFUND,
            postgresql_where=HAS_PROVIDER_REFUND,
        ),
        Index("ix_payment_refunds_workspace_keyset", "workspace_id", "id"),
        Index("ix_payment_refunds_workspace_settled_at", "workspace_id", "settled_at"),  # revenue: money given back
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    payment_id: str = Field(foreign_key="payments.id", index=True, max_length=40)
    member_id: str = Field(foreign_key="members.id", index=True, max_length=40)
    invoice_id: str | None = Field(default=None, max_length=40)
    order_id: str | None = Field(default=None, max_length=40)
    status: RefundStatus = enum_field(RefundStatus, RefundStatus.pending, index=True)
    currency: str = Field(max_length=3)
    amount: int = amount_field()
    reason: str | None = Field(default=None, max_length=500)  # free text; personal
    provider: str | None = Field(default=None, max_length=20)
    provider_refund_id: str | None = Field(default=None, max_length=255)
    outbox_id: str | None = Field(default=None, max_length=40, index=True)
    failure_reason: str | None = Field(default=None, max_length=500)
    requested_by: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()
    settled_at: datetime | None = utc_field(nullable=True)


class PaymentLink(Table, table=True):
    """A hosted payment page (a Stripe Checkout Session) for what remains on an invoice or order."""

    __tablename__ = "payment_links"
    __table_args__ = (
        Index("uq_payment_links_session", "workspace_id", "provider_session_id", unique=True),
        Index("ix_payment_links_workspace_keyset", "workspace_id", "id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk()
    member_id: str = Field(foreign_key="members.id", index=True, max_length=40)
    invoice_id: str | None = Field(default=None, max_length=40, index=True)
    order_id: str | None = Field(default=None, max_length=40, index=True)
    status: LinkStatus = enum_field(LinkStatus, LinkStatus.open, index=True)
    currency: str = Field(max_length=3)
    amount: int = amount_field()
    provider: str = Field(max_length=20)
    provider_session_id: str = Field(max_length=255)
    url: str = Field(max_length=2000)
    payment_id: str | None = Field(default=None, max_length=40)
    expires_at: datetime = utc_field()
    created_at: datetime = utc_field()


class ProviderEvent(Table, table=True):
    """A provider event already processed (by webhook or reconciliation): the key that makes each one count once."""

    __tablename__ = "payment_provider_events"

    workspace_id: str = Field(primary_key=True, foreign_key="workspaces.id", max_length=40, ondelete="CASCADE")
    event_id: str = Field(primary_key=True, max_length=255)
    provider: str = Field(max_length=20)
    type: str = Field(max_length=100)
    created: datetime = utc_field()  # when the provider made the event
    processed_at: datetime = utc_field()
