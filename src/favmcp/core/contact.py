"""Reaching people: the channels, and normalising what people type (emails case-insensitive, phones E.164)."""

from __future__ import annotations

from enum import StrEnum

import phonenumbers
from email_validator import EmailNotValidError, validate_email


# Where a customer can be reached: consent is per channel, and so is the approval policy. (A comment, not a
# docstring: pydantic would repeat a docstring in every tool schema that names a channel.)
class Channel(StrEnum):
    whatsapp = "whatsapp"
    sms = "sms"
    email = "email"


def normalise_email(value: str) -> str:
    """Raises ValueError with a readable reason (pydantic turns it into a field error)."""
    try:
        info = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return info.normalized.lower()


def normalise_phone(value: str, region: str | None = None) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number; use E.164, e.g. +31201234567")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)
