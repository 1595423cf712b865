"""What happens to subscriptions, for webhooks, messaging and loyalty."""

from __future__ import annotations

from datetime import datetime

from favmcp.core.events import DomainEvent


class SubscriptionCreated(DomainEvent):
    name = "subscription.created"

    subscription_id: str
    member_id: str
    plan_id: str


class SubscriptionActivated(DomainEvent):
    name = "subscription.activated"

    subscription_id: str


class SubscriptionPaused(DomainEvent):
    name = "subscription.paused"

    subscription_id: str


class SubscriptionResumed(DomainEvent):
    name = "subscription.resumed"

    subscription_id: str


class SubscriptionPastDue(DomainEvent):
    name = "subscription.past_due"

    subscription_id: str


class SubscriptionCancelled(DomainEvent):
    name = "subscription.cancelled"

    subscription_id: str


class SubscriptionRenewed(DomainEvent):
    name = "subscription.renewed"

    subscription_id: str
    period_start: datetime
    invoice_id: str


EVENTS: list[type[DomainEvent]] = [
    SubscriptionCreated,
    SubscriptionActivated,
    SubscriptionPaused,
    SubscriptionResumed,
    SubscriptionPastDue,
    SubscriptionCancelled,
    SubscriptionRenewed,
]
