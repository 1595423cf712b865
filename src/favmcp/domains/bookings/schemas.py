"""The booking as answered by every bookings and classes tool, and the ids tools take."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from favmcp.domains.bookings.models import BookingPayment, BookingStatus

BookingId = Annotated[str, Field(min_length=1, max_length=40, description="A booking id (bkg_...).")]
ServiceId = Annotated[str, Field(min_length=1, max_length=40, description="A service id (svc_...).")]
SessionId = Annotated[str, Field(min_length=1, max_length=40, description="A class session id (cls_...).")]
StaffId = Annotated[str, Field(min_length=1, max_length=40, description="A staff user id (usr_...).")]


class BookingPublic(BaseModel):
    id: str
    status: BookingStatus
    member_id: str
    service_id: str
    staff_user_id: str
    class_session_id: str | None
    starts_at: datetime
    ends_at: datetime
    unit_amount: int = Field(description="The price when booked.")
    currency: str
    payment: BookingPayment
    fee_amount: int | None = Field(description="A late-cancel or no-show fee charged, on fee_invoice_id.")
    fee_invoice_id: str | None
    late_cancel: bool
    created_at: datetime
