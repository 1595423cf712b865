"""The subscription lifecycle (domain-rules.md, Subscriptions): states as an enum, moves as a table."""

from __future__ import annotations

from favmcp.core.events import DomainEvent
from favmcp.core.lifecycle import Lifecycle
from favmcp.domains.subscriptions.events import (
    SubscriptionActivated,
    SubscriptionCancelled,
    SubscriptionPastDue,
    SubscriptionPaused,
    SubscriptionResumed,
)
from favmcp.domains.subscriptions.models import SubscriptionStatus as S

PAY = "record_payment (the subscription's open invoice)"
CANCEL = "cancel_subscription"
PAUSE = "pause_subscription"
RESUME = "resume_subscription"
BILLING = "run_subscription_billing"


def _active(subscription_id: str, before: S, _to: S) -> DomainEvent:
    if before == S.paused:
        return SubscriptionResumed(subscription_id=subscription_id)
    return SubscriptionActivated(subscription_id=subscription_id)


# Cancelled is final. Incomplete: created, waiting for its first invoice to be paid.
SUBSCRIPTION_LIFECYCLE = Lifecycle(
    entity="subscription",
    states=S,
    transitions={
        S.incomplete: {S.active: PAY, S.cancelled: CANCEL},
        S.trialing: {S.active: PAY, S.paused: f"{PAUSE} or {BILLING} (trial end)", S.cancelled: CANCEL},
        S.active: {S.past_due: BILLING, S.paused: PAUSE, S.cancelled: CANCEL},
        S.past_due: {S.active: PAY, S.paused: PAUSE, S.cancelled: CANCEL},
        S.paused: {S.active: f"{RESUME} or {PAY}", S.cancelled: CANCEL},
    },
    events={
        S.active: _active,
        S.paused: lambda subscription_id, _from, _to: SubscriptionPaused(subscription_id=subscription_id),
        S.past_due: lambda subscription_id, _from, _to: SubscriptionPastDue(subscription_id=subscription_id),
        S.cancelled: lambda subscription_id, _from, _to: SubscriptionCancelled(subscription_id=subscription_id),
    },
)

# States that hold a place on the plan (counted as subscribers, billed at period end when not paused).
LIVE = (S.incomplete, S.trialing, S.active, S.past_due, S.paused)
SUBSCRIBED = (S.trialing, S.active, S.past_due)
