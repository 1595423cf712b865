"""The order lifecycle as data: open -> paid -> fulfilled; open | paid -> cancelled.

The events carry the member, so the code that makes each move emits them (the table's events stay empty).
"""

from __future__ import annotations

from favmcp.core.lifecycle import Lifecycle
from favmcp.domains.orders.models import OrderStatus

ORDER_LIFECYCLE = Lifecycle(
    entity="order",
    states=OrderStatus,
    transitions={
        OrderStatus.open: {OrderStatus.paid: "record_payment", OrderStatus.cancelled: "cancel_order"},
        OrderStatus.paid: {OrderStatus.fulfilled: "fulfil_order", OrderStatus.cancelled: "cancel_order"},
    },
    events={},
)
