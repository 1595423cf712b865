from __future__ import annotations

import re
from datetime import date, datetime, time
from itertools import pairwise
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator

from favmcp.core.contact import is_country, normalise_email, phone_text
from favmcp.core.money import CurrencyCode
from favmcp.core.schema import Schema
from favmcp.registry.spec import ToolInput, UpdateInput, WriteInput

_TIMEZONES = available_timezones()


def _timezone(value: str) -> str:
    if value not in _TIMEZONES:
        raise ValueError("not an IANA timezone, e.g. Europe/Amsterdam")
    return value


def _country(value: str) -> str:
    if not is_country(value):
        raise ValueError("not an ISO 3166-1 alpha-2 country code, e.g. NL")
    return value.upper()


TimezoneName = Annotated[str, Field(description="IANA timezone, e.g. Europe/Amsterdam"), AfterValidator(_timezone)]
CountryCode = Annotated[str, Field(description="ISO 3166-1 alpha-2, e.g. NL"), AfterValidator(_country)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def clock_time(value: Any) -> str:
    """A time of day as HH:MM; 24:00 is the end of the day. Older stored values (HH:MM:SS) read the same."""
    if isinstance(value, time):
        value = value.strftime("%H:%M")
    found = re.fullmatch(r"(\d{1,2}):(\d{2})(?::00)?", value.strip()) if isinstance(value, str) else None
    hour, minute = (int(found[1]), int(found[2])) if found else (-1, -1)
    if not ((0 <= hour <= 23 and 0 <= minute <= 59) or (hour, minute) == (24, 0)):
        raise ValueError("a time of day as HH:MM, 00:00 to 24:00")
    return f"{hour:02d}:{minute:02d}"


ClockTime = Annotated[str, BeforeValidator(clock_time)]


class OpeningInterval(Schema):
    open: ClockTime = Field(description="Local time, HH:MM.")
    close: ClockTime = Field(description="Local time, HH:MM, after open; 24:00 is midnight at the end of the day.")

    @model_validator(mode="after")
    def _ordered(self) -> OpeningInterval:
        if self.close <= self.open:
            raise ValueError("close must be after open")
        return self


class Closure(Schema):
    date: date
    reason: str | None = Field(default=None, max_length=200)


class PaymentProviderInput(Schema):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    provider: Literal["stripe"] = "stripe"
    secret_key: str = Field(min_length=16, max_length=255, pattern=r"^[sr]k_(test|live)_\w+$")
    webhook_secret: str | None = Field(
        default=None,
        min_length=14,
        max_length=255,
        pattern=r"^whsec_\S+$",
        description="Of the endpoint /hooks/stripe/{workspace_id}.",
    )


class PaymentProviderPublic(Schema):
    provider: str
    key_last4: str = Field(description="The last 4 characters of the secret key.")
    livemode: bool
    webhook_configured: bool


Handle = Annotated[
    str,
    Field(min_length=3, max_length=60, pattern=r"^[a-z0-9][a-z0-9-]*[a-z0-9]$", description="a-z, 0-9, dashes."),
]


class WorkspacePublic(Schema):
    id: str
    name: str
    handle: str | None = Field(description="The public name in /public/{handle}/posts URLs.")
    industry: str | None
    country: str | None
    timezone: str
    currency: str
    locale: str
    prices_include_tax: bool = Field(description="Prices entered include tax (else tax is added on top).")
    contact_email: str | None
    contact_phone: str | None
    business_hours: dict[Weekday, list[OpeningInterval]]
    closures: list[Closure]
    payment_provider: PaymentProviderPublic | None = Field(description="Null when no provider is configured.")
    created_at: datetime
    updated_at: datetime


class GetWorkspaceInput(ToolInput):
    pass


class UpdateWorkspaceInput(UpdateInput):
    not_clearable = frozenset({"name", "handle", "timezone", "currency", "locale", "prices_include_tax"})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    handle: Handle | None = Field(default=None, description="Unique; old public URLs stop working.")
    industry: str | None = Field(default=None, max_length=80)
    country: CountryCode | None = None
    timezone: TimezoneName | None = None
    currency: CurrencyCode | None = None
    locale: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$", description="e.g. en, nl-NL")
    prices_include_tax: bool | None = Field(
        default=None, description="Prices entered include tax; applies to documents created from now on."
    )
    contact_email: Annotated[str, AfterValidator(normalise_email)] | None = None
    contact_phone: Annotated[str, AfterValidator(phone_text)] | None = Field(
        default=None,
        max_length=32,
        description="e.g. +31 20 1234567; without a country code, in the workspace's country.",
    )
    payment_provider: PaymentProviderInput | None = Field(default=None, description="Write-only; null removes.")


class SetBusinessHoursInput(WriteInput):
    weekly: dict[Weekday, list[OpeningInterval]] = Field(
        description="Opening intervals per weekday in workspace local time; a missing day is closed."
    )
    closures: list[Closure] = Field(default_factory=list, max_length=366, description="Dates closed all day.")

    @model_validator(mode="after")
    def _no_overlap(self) -> SetBusinessHoursInput:
        for day, intervals in self.weekly.items():
            ordered = sorted(intervals, key=lambda i: i.open)
            for a, b in pairwise(ordered):
                if b.open < a.close:
                    raise ValueError(f"opening intervals on {day} overlap")
        return self
