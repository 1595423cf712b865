"""The payment and refund state machines, as data (see core/lifecycle.py)."""

from __future__ import annotations

from favmcp.core.lifecycle import Lifecycle
from favmcp.domains.payments.models import PaymentStatus, RefundStatus

PAYMENT_LIFECYCLE = Lifecycle(
    entity="payment",
    states=PaymentStatus,
    transitions={
        PaymentStatus.pending: {PaymentStatus.succeeded: "record_payment", PaymentStatus.failed: "record_payment"},
        PaymentStatus.succeeded: {
            PaymentStatus.partially_refunded: "refund_payment",
            PaymentStatus.refunded: "refund_payment",
        },
        PaymentStatus.partially_refunded: {PaymentStatus.refunded: "refund_payment"},
    },
    events={},  # PaymentSucceeded and PaymentRefunded carry amounts: the service emits them
)

REFUND_LIFECYCLE = Lifecycle(
    entity="refund",
    states=RefundStatus,
    transitions={
        RefundStatus.pending: {RefundStatus.succeeded: "refund_payment", RefundStatus.failed: "refund_payment"},
    },
    events={},
)
