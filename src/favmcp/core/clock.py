"""Time and randomness, injected so tests control both."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Random(Protocol):
    def token(self, nbytes: int) -> str: ...

    def digits(self, n: int) -> str: ...


class SystemRandom:
    def token(self, nbytes: int) -> str:
        return secrets.token_urlsafe(nbytes).replace("-", "x").replace("_", "y")

    def digits(self, n: int) -> str:
        return "".join(secrets.choice("0123456789") for _ in range(n))


def utc(dt: datetime) -> datetime:
    """Databases may hand back naive datetimes (SQLite); every stored time is UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
