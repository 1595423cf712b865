"""One-time codes for signup and invite acceptance: 6 digits, 10 minutes, hashed, 5 tries, rate limited."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from favmcp.auth import ratelimit
from favmcp.auth.models import CodePurpose, OneTimeCode
from favmcp.core.clock import Random
from favmcp.core.errors import ErrorCode, FavError
from favmcp.core.ids import new_id

CODE_TTL = timedelta(minutes=10)
MAX_TRIES = 5
PER_HOUR = 3
PER_DAY = 20


def _digest(secret_key: bytes, *parts: str) -> str:
    return hmac.new(secret_key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


async def issue(
    session: AsyncSession,
    *,
    purpose: CodePurpose,
    email: str,
    client_address: str,
    workspace_id: str | None,
    payload: dict[str, Any],
    secret_key: bytes,
    random: Random,
    now: datetime,
) -> tuple[OneTimeCode, str]:
    """Count the request against the email and the client address, then store a new hashed code."""
    for who in (f"email:{_digest(secret_key, email)}", f"addr:{_digest(secret_key, client_address)}"):
        await ratelimit.hit(session, f"code:{purpose}:{who}", PER_HOUR, ratelimit.HOUR, now)
        await ratelimit.hit(session, f"code:{purpose}:{who}", PER_DAY, ratelimit.DAY, now)
    code = random.digits(6)
    row = OneTimeCode(
        id=new_id("otc"),
        workspace_id=workspace_id,
        purpose=purpose,
        email=email,
        code_hash="",
        payload=payload,
        created_at=now,
        expires_at=now + CODE_TTL,
    )
    row.code_hash = _digest(secret_key, row.id, code)
    session.add(row)
    await session.flush()
    return row, code


def _refused(message: str) -> FavError:
    # The attempt counter must survive the refusal, so the runner keeps this transaction's writes.
    return FavError(
        ErrorCode.validation_failed,
        message,
        hint="Request a new code with the matching *_request tool.",
        persist=True,
    )


async def verify(
    session: AsyncSession,
    *,
    request_id: str,
    code: str,
    purpose: CodePurpose,
    secret_key: bytes,
    now: datetime,
) -> OneTimeCode:
    """Spend one try on the code; on a match, consume it (once, even under concurrent verifies)."""
    table = OneTimeCode.__table__  # type: ignore[attr-defined]
    counted = await session.execute(
        update(table)
        .where(
            table.c.id == request_id,
            table.c.purpose == purpose,
            table.c.consumed_at.is_(None),
            table.c.attempts < MAX_TRIES,
            table.c.expires_at > now,
        )
        .values(attempts=table.c.attempts + 1)
        .returning(table.c.code_hash, table.c.attempts)
    )
    row = counted.first()
    if row is None:
        raise _refused("This code is invalid, used, expired or out of tries.")
    if not hmac.compare_digest(row.code_hash, _digest(secret_key, request_id, code)):
        left = MAX_TRIES - row.attempts
        raise _refused(f"The code does not match; {left} tries left." if left else "The code does not match.")
    consumed = await session.execute(
        update(table)
        .where(table.c.id == request_id, table.c.consumed_at.is_(None))
        .values(consumed_at=now)
        .returning(table.c.id)
    )
    if consumed.first() is None:
        raise _refused("This code is invalid, used, expired or out of tries.")
    found = await session.get(OneTimeCode, request_id, populate_existing=True)
    assert found is not None
    return found
