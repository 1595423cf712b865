"""The one error vocabulary every face (MCP, REST, CLI) speaks."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import Field

from favmcp.core.schema import Schema


class ErrorCode(StrEnum):
    not_found = "not_found"
    conflict = "conflict"
    invalid_state = "invalid_state"
    validation_failed = "validation_failed"
    forbidden = "forbidden"
    unauthenticated = "unauthenticated"
    rate_limited = "rate_limited"
    confirmation_required = "confirmation_required"
    declined = "declined"
    idempotency_mismatch = "idempotency_mismatch"
    internal_error = "internal_error"


class FieldError(Schema):
    field: str
    message: str


class ErrorBody(Schema):
    """What a caller receives when a tool refuses or fails."""

    code: ErrorCode
    message: str
    field_errors: list[FieldError] = Field(default_factory=list)
    retryable: bool = False
    retry_after: int | None = Field(default=None, description="Seconds to wait before retrying.")
    hint: str | None = None
    request_id: str | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class AuditSubject:
    """Who a refused call came from, when the key is known (a revoked or expired key is still someone)."""

    workspace_id: str
    user_id: str | None
    key_id: str | None


class FavError(Exception):
    """A typed refusal. Raised anywhere below the runner; the runner turns it into a result."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        field_errors: list[FieldError] | None = None,
        retryable: bool = False,
        retry_after: int | None = None,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
        persist: bool = False,
        subject: AuditSubject | None = None,
    ) -> None:
        super().__init__(message)
        self.subject = subject
        # persist: the writes made before this refusal stand (a counted failed attempt, say).
        self.persist = persist
        self.body = ErrorBody(
            code=code,
            message=message,
            field_errors=field_errors or [],
            retryable=retryable,
            retry_after=retry_after,
            hint=hint,
            details=details,
        )

    @property
    def code(self) -> ErrorCode:
        return self.body.code


def not_found(what: str, ident: str, hint: str | None = None) -> FavError:
    return FavError(ErrorCode.not_found, f"No {what} with id {ident!r}.", hint=hint)


def conflict(message: str, *, hint: str | None = None, details: dict[str, Any] | None = None) -> FavError:
    return FavError(ErrorCode.conflict, message, hint=hint, details=details)


def invalid_state(
    message: str, *, current: str, allowed: list[str] | None = None, hint: str | None = None, **facts: Any
) -> FavError:
    """A refusal because of the state a record is in: details name the current state and the allowed next ones."""
    return FavError(
        ErrorCode.invalid_state, message, hint=hint, details={"current": current, "allowed": allowed or [], **facts}
    )


def validation_failed(message: str, field_errors: list[FieldError] | None = None) -> FavError:
    return FavError(ErrorCode.validation_failed, message, field_errors=field_errors)


def forbidden(message: str, hint: str | None = None) -> FavError:
    return FavError(ErrorCode.forbidden, message, hint=hint)


def unauthenticated(message: str = "This tool needs an API key.") -> FavError:
    return FavError(
        ErrorCode.unauthenticated,
        message,
        hint="Pass a fav_mcp_ key (FAVMCP_API_KEY over stdio, Authorization: Bearer over HTTP), "
        "or sign up with register_organisation_request.",
    )


def rate_limited(message: str, retry_after: int) -> FavError:
    return FavError(ErrorCode.rate_limited, message, retryable=True, retry_after=retry_after)
