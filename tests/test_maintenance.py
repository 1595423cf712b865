"""Expired rate-limit windows, idempotency records, spent confirmation tokens and old codes are purged; live
ones are kept. Delivered system mail loses its body after a day; customer conversations keep theirs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import col

from favmcp.app import App
from favmcp.auth.models import OneTimeCode, RateLimitBucket
from favmcp.db.maintenance import KEEP_SYSTEM_MAIL_BODIES, purge_expired
from favmcp.effects.models import OutboxKind, OutboxMessage, OutboxStatus
from favmcp.effects.outbox import open_body, queue_email
from favmcp.registry.models import IdempotencyRecord, UsedConfirmation
from tests.support import FakeClock, Owner, call, confirmed, unique_email


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
            # Not the runner's per-minute call counters: servers of other tests on this worker's database write
            # them on the real clock, which this test's clock passes.
            "windows_over": await count(
                select(func.count())
                .select_from(RateLimitBucket)
                .where(col(RateLimitBucket.expires_at) <= now, col(RateLimitBucket.key).not_like("calls:%"))
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


async def test_delivered_system_mail_loses_its_body_after_a_day_customer_mail_keeps_it(
    app: App, clock: FakeClock
) -> None:
    mails = {
        "code, sent": (OutboxKind.system, OutboxStatus.sent),
        "invite, given up": (OutboxKind.system, OutboxStatus.failed),
        "code, still waiting": (OutboxKind.system, OutboxStatus.pending),
        "conversation, sent": (OutboxKind.customer, OutboxStatus.sent),
    }
    async with app.db.transaction() as session:
        ids = {
            text: queue_email(
                session, app.settings, to=unique_email(), subject="s", body=text, workspace_id=None,
                now=clock.now(), kind=kind,
            ).id
            for text, (kind, _) in mails.items()
        }  # fmt: skip
    async with app.db.transaction() as session:
        for text, (_, status) in mails.items():
            sent_at = clock.now() if status == OutboxStatus.sent else None
            await session.execute(
                update(OutboxMessage).where(col(OutboxMessage.id) == ids[text]).values(status=status, sent_at=sent_at)
            )

    async def bodies() -> dict[str, str]:
        async with app.db.transaction() as session:
            return {text: open_body(app.settings, await session.get_one(OutboxMessage, ids[text])) for text in ids}

    clock.advance(seconds=KEEP_SYSTEM_MAIL_BODIES.total_seconds() - 1)
    await purge_expired(app.db, clock.now())
    assert await bodies() == {text: text for text in mails}, "kept for a day"
    clock.advance(seconds=1)
    await purge_expired(app.db, clock.now())
    assert await bodies() == {
        "code, sent": "",
        "invite, given up": "",
        "code, still waiting": "code, still waiting",
        "conversation, sent": "conversation, sent",
    }
