"""Purging what has served its time: rate-limit windows, idempotency records, spent tokens, old codes.

Rows are only deleted once nothing can consult them any more, so running it often, on several workers at
once, is harmless.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import col

from favmcp.auth.codes import CODE_TTL
from favmcp.auth.models import OneTimeCode, RateLimitBucket
from favmcp.db.engine import Database
from favmcp.registry.confirm import TTL as CONFIRMATION_TTL
from favmcp.registry.models import IdempotencyRecord, UsedConfirmation

# A spent confirmation token must stay recorded while the token itself could still be presented.
KEEP_SPENT_TOKENS = CONFIRMATION_TTL + timedelta(minutes=5)
KEEP_CODES = CODE_TTL + timedelta(days=1)


async def purge_expired(db: Database, now: datetime) -> dict[str, int]:
    """Delete expired rows; returns how many of each kind went."""
    statements = {
        "rate_limit_buckets": delete(RateLimitBucket).where(col(RateLimitBucket.expires_at) <= now),
        "idempotency_records": delete(IdempotencyRecord).where(col(IdempotencyRecord.expires_at) <= now),
        "used_confirmations": delete(UsedConfirmation).where(col(UsedConfirmation.used_at) <= now - KEEP_SPENT_TOKENS),
        "one_time_codes": delete(OneTimeCode).where(col(OneTimeCode.created_at) <= now - KEEP_CODES),
    }
    purged: dict[str, int] = {}
    async with db.transaction() as session:
        for name, statement in statements.items():
            result = await session.execute(statement)
            purged[name] = int(getattr(result, "rowcount", 0) or 0)
    return purged
