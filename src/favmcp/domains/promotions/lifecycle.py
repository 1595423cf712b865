"""The promotion lifecycle as data: active -> inactive (final)."""

from __future__ import annotations

from favmcp.core.lifecycle import Lifecycle
from favmcp.domains.promotions.models import PromotionStatus

PROMOTION_LIFECYCLE = Lifecycle(
    entity="promotion",
    states=PromotionStatus,
    transitions={PromotionStatus.active: {PromotionStatus.inactive: "deactivate_promotion"}},
    events={},
)
