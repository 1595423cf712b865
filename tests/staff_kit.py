"""Bookings put in place directly (a service and an appointment row), for tests of what staff see: they do not
depend on how create_booking places a booking, only on the rows it leaves."""

from __future__ import annotations

from datetime import datetime, timedelta

from favmcp.app import App
from favmcp.core.ids import new_id
from favmcp.domains.bookings.models import Booking, BookingStatus
from favmcp.domains.services.models import Service


async def insert_service(app: App, workspace_id: str, name: str = "Haircut", now: datetime | None = None) -> str:
    now = now or app.runner.clock.now()
    service = Service(
        id=new_id("svc"), workspace_id=workspace_id, name=name, duration_minutes=60, unit_amount=4000,
        currency="EUR", created_at=now, updated_at=now,
    )  # fmt: skip
    async with app.db.transaction() as session:
        session.add(service)
    return service.id


async def insert_booking(
    app: App,
    workspace_id: str,
    *,
    member_id: str,
    staff_user_id: str,
    service_id: str,
    starts_at: datetime,
    minutes: int = 60,
    status: BookingStatus = BookingStatus.confirmed,
) -> str:
    now = app.runner.clock.now()
    ends_at = starts_at + timedelta(minutes=minutes)
    booking = Booking(
        id=new_id("bkg"), workspace_id=workspace_id, member_id=member_id, service_id=service_id,
        staff_user_id=staff_user_id, status=status, starts_at=starts_at, ends_at=ends_at, blocked_from=starts_at,
        blocked_until=ends_at, unit_amount=4000, currency="EUR", created_at=now, updated_at=now,
    )  # fmt: skip
    async with app.db.transaction() as session:
        session.add(booking)
    return booking.id
