"""What a staff user sees: the bookings assigned to them, and (through every member-linked table) those bookings'
customers. Declared here, applied by the workspace-bound data access (see Platform.staff_viewer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel, col, select

from favmcp.domains.bookings.models import Booking


def staff_customers(workspace_id: str, user_id: str) -> Select[Any]:
    """The customers of the staff member's bookings (any state: a past customer stays theirs)."""
    return select(col(Booking.member_id)).where(
        col(Booking.workspace_id) == workspace_id, col(Booking.staff_user_id) == user_id
    )


def staff_rows(workspace_id: str, user_id: str, customers: Select[Any]) -> Mapping[type[SQLModel], ColumnElement[bool]]:
    """A booking is seen by the staff member it is assigned to, not by everyone who has its customer."""
    return {Booking: col(Booking.staff_user_id) == user_id}
