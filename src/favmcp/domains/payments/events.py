"""What happens to money received and given back, for other domains to react to (loyalty, reports, webhooks)."""

from __future__ import annotations

from favmcp.core.events import DomainEvent


class PaymentSucceeded(DomainEvent):
    name = "payment.succeeded"

    payment_id: str
    member_id: str
    amount: int
    currency: str
    invoice_id: str | None
    order_id: str | None


class PaymentRefunded(DomainEvent):
    name = "payment.refunded"

    payment_id: str
    refund_id: str
    amount: int
    currency: str


EVENTS: list[type[DomainEvent]] = [PaymentSucceeded, PaymentRefunded]
