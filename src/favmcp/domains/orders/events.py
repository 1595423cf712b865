"""What happens to orders, for other domains to react to (loyalty, messaging, webhooks)."""

from __future__ import annotations

from favmcp.core.events import DomainEvent


class OrderCreated(DomainEvent):
    name = "order.created"

    order_id: str
    member_id: str
    total: int
    currency: str


class OrderPaid(DomainEvent):
    name = "order.paid"

    order_id: str
    member_id: str


class OrderFulfilled(DomainEvent):
    name = "order.fulfilled"

    order_id: str
    member_id: str


class OrderCancelled(DomainEvent):
    name = "order.cancelled"

    order_id: str
    member_id: str
    refund_due: int
    currency: str


EVENTS: list[type[DomainEvent]] = [OrderCreated, OrderPaid, OrderFulfilled, OrderCancelled]
