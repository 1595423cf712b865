"""One time format everywhere: UTC, ISO 8601 with `Z`. Inputs need an offset and must fit in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_utc(moment: datetime) -> datetime:
    """The instant in UTC; one that UTC cannot represent (year 9999 at -14:00) is refused, not a crash."""
    try:
        converted = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("the date is out of range") from None
    if not 1 < converted.year < 9999:
        raise ValueError("the date is out of range")
    return converted


UtcDateTime = Annotated[AwareDatetime, AfterValidator(to_utc)]


def within_range(day: date) -> date:
    """A calendar date whose day, in any timezone, is an instant UTC can represent."""
    if not 1 < day.year < 9999:
        raise ValueError("the date is out of range")
    return day


CalendarDate = Annotated[date, AfterValidator(within_range)]
