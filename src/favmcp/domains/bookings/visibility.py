"""What a staff user sees: the bookings assigned to them, and (through every member-linked table) those bookings'
customers, whatever state the booking is in (a past customer stays theirs). Declared here, applied by the
workspace-bound data access (see Platform.staff_viewer)."""

from __future__ import annotations

from favmcp.domains.bookings.models import Booking
from favmcp.registry.domain import StaffAssignment

STAFF_ASSIGNMENTS = [StaffAssignment(Booking, member_column="member_id", staff_column="staff_user_id")]
