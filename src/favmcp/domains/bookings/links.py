"""The bookings' links to a customer: merged with them, pseudonymised (their note cleared) when they are erased,
exported as the booking."""

from __future__ import annotations

from typing import Any

from favmcp.core.links import MemberLink, OnErase, OnMerge
from favmcp.domains.bookings.models import Booking
from favmcp.domains.bookings.schemas import BookingPublic, untrusted


def _export(booking: Booking) -> dict[str, Any]:
    exported = BookingPublic.model_validate(booking, from_attributes=True).model_dump(mode="json")
    note = untrusted(booking.customer_note)
    exported["customer_note"] = note.model_dump(mode="json") if note else None
    return exported


MEMBER_LINKS: list[MemberLink] = [
    MemberLink(
        "bookings",
        Booking,
        "member_id",
        OnMerge.move,
        OnErase.pseudonymise,
        personal_fields={"customer_note": None},
        export=_export,
    ),
]
