"""Report periods: half-open ranges and day/week/month buckets in the workspace's timezone.

A report's range is local dates from_date..to_date, inclusive, which is the half-open instant range
[from_date 00:00 local, to_date+1 00:00 local). Buckets start at local midnight (weeks on Monday, ISO weeks; months
on the 1st), so a bucket over a daylight-saving change is 23 or 25 hours long and still holds exactly the moments
whose local date falls in it. Every boundary is returned in UTC, the way moments are stored.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import case, literal_column

Grouping = Literal["day", "week", "month"]

MAX_RANGE_DAYS = 731
"""A report covers at most two years (731 days: two years including a leap day)."""


@dataclass(frozen=True)
class Bucket:
    """One bucket: its first local date (the label) and its half-open UTC range [starts_at, ends_at)."""

    label: date
    starts_at: datetime
    ends_at: datetime


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local calendar day, in UTC (a day starting in a DST gap starts when the clock jumps)."""
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def bounds(from_date: date, to_date: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The half-open UTC range [from_date 00:00 local, to_date+1 00:00 local) of inclusive local dates."""
    return local_midnight(from_date, tz), local_midnight(to_date + timedelta(days=1), tz)


def bucket_start(day: date, grouping: Grouping) -> date:
    """The first local date of the bucket holding `day`: itself, its ISO week's Monday, or its month's 1st."""
    if grouping == "day":
        return day
    if grouping == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_start(start: date, grouping: Grouping) -> date:
    """The first local date of the bucket after the one starting on `start`."""
    if grouping == "day":
        return start + timedelta(days=1)
    if grouping == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def buckets(from_date: date, to_date: date, grouping: Grouping, tz: ZoneInfo) -> list[Bucket]:
    """Every bucket overlapping from_date..to_date, in order, empty ones included. The first and last are clipped
    to the range, so the buckets tile exactly `bounds(from_date, to_date, tz)`; a label is the bucket's first
    local date (a week's Monday, a month's 1st) even when the range starts later."""
    end = to_date + timedelta(days=1)
    out: list[Bucket] = []
    start = bucket_start(from_date, grouping)
    while start < end:
        after = next_start(start, grouping)
        out.append(Bucket(start, local_midnight(max(start, from_date), tz), local_midnight(min(after, end), tz)))
        start = after
    return out


def index_of(moment: datetime, starts: Sequence[datetime]) -> int:
    """The index of the bucket holding `moment`, given the buckets' sorted UTC starts (-1 before the first)."""
    return bisect_right(starts, moment.astimezone(UTC)) - 1


def bucket_index(column: Any, items: Sequence[Bucket]) -> Any:
    """A SQL expression giving the index of the bucket that holds `column` (a UTC moment column), for GROUP BY.

    A balanced tree of CASE comparisons against the bucket starts (depth log2 of the bucket count), the same on
    SQLite and Postgres since it compares stored UTC moments only; moments outside the buckets get the nearest end
    index, so filter the range in WHERE first."""

    def tree(lo: int, hi: int) -> Any:
        if lo == hi:
            return literal_column(str(lo))
        mid = (lo + hi + 1) // 2
        return case((column < items[mid].starts_at, tree(lo, mid - 1)), else_=tree(mid, hi))

    return tree(0, len(items) - 1)
