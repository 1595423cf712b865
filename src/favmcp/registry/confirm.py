"""Confirmation tokens: signed, bound to tool, exact arguments and credential, 5 minutes, single use."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from favmcp.core.errors import ErrorCode, FavError
from favmcp.core.ids import new_id
from favmcp.registry.models import UsedConfirmation

TTL = timedelta(minutes=5)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret_key: bytes, body: str) -> str:
    return _b64(hmac.new(secret_key, b"confirm\x1f" + body.encode(), hashlib.sha256).digest())


def issue(secret_key: bytes, *, tool: str, args_hash: str, credential: str, now: datetime) -> tuple[str, datetime]:
    expires = now + TTL
    claims = {"t": tool, "a": args_hash, "c": credential, "e": int(expires.timestamp()), "j": new_id("cfm")}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{body}.{_sign(secret_key, body)}", expires


def _refuse(message: str) -> FavError:
    return FavError(
        ErrorCode.confirmation_required,
        message,
        hint="Call the tool again without confirmation_token to get a fresh preview and token.",
    )


async def spend(
    session: AsyncSession,
    secret_keys: Sequence[bytes],
    token: str,
    *,
    tool: str,
    args_hash: str,
    credential: str,
    workspace_id: str | None,
    now: datetime,
) -> None:
    """Check the token and mark it used inside the caller's transaction. A token signed with an older secret
    (during a rotation, see FAVMCP_SECRET_KEYS) still counts."""
    body, _, signature = token.partition(".")
    # compare_digest takes ASCII text only; a token we issued is always ASCII.
    if (
        not token.isascii()
        or not signature
        or not any(hmac.compare_digest(signature, _sign(k, body)) for k in secret_keys)
    ):
        raise _refuse("This confirmation token is not valid.")
    claims: dict[str, Any] = json.loads(_unb64(body))
    if claims["t"] != tool or claims["c"] != credential:
        raise _refuse("This confirmation token was issued for another tool or caller.")
    if claims["a"] != args_hash:
        raise _refuse("This confirmation token was issued for other arguments.")
    if claims["e"] <= now.timestamp():
        raise _refuse("This confirmation token has expired.")
    try:
        async with session.begin_nested():
            session.add(UsedConfirmation(token_id=claims["j"], workspace_id=workspace_id, used_at=now))
    except IntegrityError:
        raise _refuse("This confirmation token has already been used.") from None
