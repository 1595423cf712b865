"""Cursor pagination: `limit` (default 20, at most 100), an opaque cursor, `next_cursor` and `has_more`."""

from __future__ import annotations

import base64
import json
from typing import Any, Generic, TypeVar

from pydantic import Field

from favmcp.core.errors import FieldError, validation_failed
from favmcp.core.schema import Schema

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class PageParams(Schema):
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, description="next_cursor of the previous page.")


class Page(Schema, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    has_more: bool = False


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(_printable(v) for v in data.values()):
        raise validation_failed(
            "The cursor is not one this server issued.",
            [FieldError(field="cursor", message="pass next_cursor from a previous page unchanged")],
        )
    return data


def _printable(value: Any) -> bool:
    """Cursors this server issues hold ids: plain printable ASCII, never text a database might refuse."""
    return isinstance(value, str) and value.isascii() and value.isprintable()
