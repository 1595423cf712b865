"""Expired rate-limit windows, idempotency records, spent confirmation tokens and old codes are purged; live
ones are kept."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from favmcp.app import App
from favmcp.auth.models import OneTimeCode, RateLimitBucket
from favmcp.db.maintenance import purge_expired
from favmcp.registry.models import IdempotencyRecord, UsedConfirmation
from tests.support import FakeClock, Owner, call, confirmed


async def counts(app: App, owner: Owner, now: Any) -> dict[str, int]:
    """This owner's rows, and the rate-limit windows (keyed by HMACs, so counted by expiry) already over."""
    async with app.db.transaction() as session:

        async def count(stmt: Any) -> int:
            return int((await session.execute(stmt)).scalar_one())

        return {
            "idempotency": await count(
                select(func.count()).select_from(IdempotencyRecord).where(col(IdempotencyRecord.scope) == owner.key_id)
            ),
            "confirmations": await count(
                select(func.count())
                .select_from(UsedConfirmation)
                .where(col(UsedConfirmation.workspace_id) == owner.workspace_id)
            ),
            "codes": await count(
                select(func.count()).select_from(OneTimeCode).where(col(OneTimeCode.email) == owner.email)
            ),
            "windows_over": await count(
                select(func.count()).select_from(RateLimitBucket).where(col(RateLimitBucket.expires_at) <= now)
            ),
        }


async def test_purge_keeps_live_rows_and_removes_expired_ones(app: App, owner: Owner, clock: FakeClock) -> None:
    made = await call(app, owner.key, "create_api_key", {"name": "k", "idempotency_key": "once"})
    assert (await confirmed(app, owner.key, "revoke_api_key", {"key_id": made.data["key"]["id"]})).ok
    before = await counts(app, owner, clock.now())
    assert before == {"idempotency": 1, "confirmations": 1, "codes": 1, "windows_over": 0}

    await purge_expired(app.db, clock.now())
    assert await counts(app, owner, clock.now()) == before, "nothing live is purged"

    clock.advance(days=2)
    assert (await counts(app, owner, clock.now()))["windows_over"] > 0, "the signup's windows are over by now"
    await purge_expired(app.db, clock.now())
    assert await counts(app, owner, clock.now()) == {
        "idempotency": 0,
        "confirmations": 0,
        "codes": 0,
        "windows_over": 0,
    }
    again = await call(app, owner.key, "create_api_key", {"name": "k", "idempotency_key": "once"})
    assert again.ok and again.data["key"]["id"] != made.data["key"]["id"], "an expired key is free again"
