"""Read-only views of the team's calendars for availability: weekly working hours and time off of some staff.
Each is one query, whatever the number of staff; the caller passes the data access it may read through."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import col

from favmcp.db.scoped import WorkspaceDB
from favmcp.domains.team.models import StaffSchedule, StaffTimeOff


async def weekly_hours(db: WorkspaceDB, user_ids: Sequence[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The weekly working hours ({"mon": [{"open": "09:00", "close": "17:00"}], ...}, workspace-local) of the
    given staff who have any set; someone left out has none set (they work the opening hours)."""
    if not user_ids:
        return {}
    rows = await db.rows(
        db.select_columns(StaffSchedule, col(StaffSchedule.user_id), col(StaffSchedule.weekly)).where(
            col(StaffSchedule.user_id).in_(list(user_ids))
        )
    )
    return {user_id: weekly for user_id, weekly in rows if weekly and any(weekly.values())}


async def time_off(
    db: WorkspaceDB, user_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[tuple[datetime, datetime]]]:
    """The time off (not removed) of the given staff overlapping [start, end), as (starts_at, ends_at) in UTC,
    earliest first, by user id (everyone given has a list)."""
    found: dict[str, list[tuple[datetime, datetime]]] = {user_id: [] for user_id in user_ids}
    if not user_ids:
        return found
    rows = await db.rows(
        db.select_columns(
            StaffTimeOff, col(StaffTimeOff.user_id), col(StaffTimeOff.starts_at), col(StaffTimeOff.ends_at)
        )
        .where(
            col(StaffTimeOff.user_id).in_(list(user_ids)),
            col(StaffTimeOff.removed_at).is_(None),
            col(StaffTimeOff.starts_at) < end,
            col(StaffTimeOff.ends_at) > start,
        )
        .order_by(col(StaffTimeOff.starts_at))
    )
    for user_id, starts_at, ends_at in rows:
        found[user_id].append((starts_at, ends_at))
    return found
