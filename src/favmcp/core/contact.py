"""Reaching people: the channels, and normalising what people type (emails case-insensitive, phones E.164)."""

from __future__ import annotations

import re
from enum import StrEnum

from favmcp.core.errors import FieldError, validation_failed


# Where a customer can be reached: consent is per channel, and so is the approval policy. (A comment, not a
# docstring: pydantic would repeat a docstring in every tool schema that names a channel.)
class Channel(StrEnum):
    whatsapp = "whatsapp"
    sms = "sms"
    email = "email"


def normalise_email(value: str) -> str:
    """Raises ValueError with a readable reason (pydantic turns it into a field error)."""
    # The address and phone libraries load when first needed: a command that reads no contact never pays for them.
    from email_validator import EmailNotValidError, validate_email

    try:
        info = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return info.normalized.lower()


# What a phone number may look like before its country is known: digits (any script) and the punctuation people
# write around them. The full check needs the workspace's country, so a schema makes only this one.
_PHONE_TEXT = re.compile(r"[+\d\s().\-/]+")
SEND_INTERNATIONAL = "send it with its country code, e.g. +31 6 12345678"


def phone_text(value: str) -> str:
    """The check a schema can make without the workspace's country; raises ValueError in our words."""
    value = value.strip()
    if not _PHONE_TEXT.fullmatch(value) or not any(c.isdigit() for c in value):
        raise ValueError(f"a phone number is digits, spaces and + ( ) - . / only; {SEND_INTERNATIONAL}")
    return value


def is_national(value: str) -> bool:
    """Written without its country code (06 12345678): it means something only in a country."""
    return "+" not in value


def normalise_phone(value: str, country: str | None) -> str:
    """E.164 from a phone as people write it: with its country code (+31 6 12345678), or national (06 12345678)
    read in `country` (ISO alpha-2). Raises ValueError in our words, never the library's."""
    import phonenumbers

    value = value.strip()
    national = is_national(value)
    if national and country is None:
        raise ValueError(
            f"a number without its country code needs the workspace's country: {SEND_INTERNATIONAL}, "
            "or set the workspace country with update_workspace"
        )
    try:
        number = phonenumbers.parse(value, country if national else None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        where = f" in {country}" if national else ""
        raise ValueError(f"not a valid phone number{where}; {SEND_INTERNATIONAL}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_argument(value: str, country: str | None, field: str) -> str:
    """normalise_phone for a tool argument: a refusal is a validation error naming the field."""
    try:
        return normalise_phone(value, country)
    except ValueError as exc:
        raise validation_failed(
            f"The {field} is not a phone number we can use.", [FieldError(field=field, message=str(exc))]
        ) from None


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def is_country(code: str) -> bool:
    """An ISO 3166-1 alpha-2 code that phone numbers can be read in."""
    import phonenumbers

    return code.upper() in phonenumbers.SUPPORTED_REGIONS
