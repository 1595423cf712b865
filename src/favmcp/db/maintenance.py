"""Purging what has served its time (rate-limit windows, idempotency records, spent tokens, old codes, the bodies
of delivered system mail) and sealing stored secrets anew after the server secret was rotated.

Rows are only deleted once nothing can consult them any more, so running it often, on several workers at
once, is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import and_, delete, or_, select, tuple_, update
from sqlmodel import SQLModel, col

from favmcp.auth.codes import CODE_TTL
from favmcp.auth.models import OneTimeCode, RateLimitBucket
from favmcp.auth.oauth.models import OAuthAuthorization, OAuthToken
from favmcp.core.sealing import reseal
from favmcp.db.engine import Database
from favmcp.db.scoped import column
from favmcp.db.tenancy import PAYMENT_PROVIDER_SEAL, Workspace
from favmcp.effects.models import OutboxKind, OutboxMessage, OutboxStatus
from favmcp.effects.outbox import SEAL_PURPOSE as OUTBOX_SEAL_PURPOSE
from favmcp.registry.confirm import TTL as CONFIRMATION_TTL
from favmcp.registry.models import IdempotencyRecord, UsedConfirmation

# A spent confirmation token must stay recorded while the token itself could still be presented.
KEEP_SPENT_TOKENS = CONFIRMATION_TTL + timedelta(minutes=5)
KEEP_CODES = CODE_TTL + timedelta(days=1)
# Codes and invite links are of no use to anyone once delivered; a day leaves time to answer "did it arrive?".
KEEP_SYSTEM_MAIL_BODIES = timedelta(hours=24)
IDEMPOTENCY_SEAL_PURPOSE = "idempotency"  # the runner seals replayed answers that carry a secret with it
RESEAL_BATCH = 500


async def purge_expired(db: Database, now: datetime) -> dict[str, int]:
    """Delete expired rows and clear the bodies of old system mail; returns how many of each kind went."""
    mail_before = now - KEEP_SYSTEM_MAIL_BODIES
    statements = {
        "rate_limit_buckets": delete(RateLimitBucket).where(col(RateLimitBucket.expires_at) <= now),
        "idempotency_records": delete(IdempotencyRecord).where(col(IdempotencyRecord.expires_at) <= now),
        "used_confirmations": delete(UsedConfirmation).where(col(UsedConfirmation.used_at) <= now - KEEP_SPENT_TOKENS),
        "one_time_codes": delete(OneTimeCode).where(col(OneTimeCode.created_at) <= now - KEEP_CODES),
        # A rotated refresh token kept until it expires: a reuse inside that time revokes its grant.
        "oauth_tokens": delete(OAuthToken).where(col(OAuthToken.expires_at) <= now),
        "oauth_authorizations": delete(OAuthAuthorization).where(col(OAuthAuthorization.expires_at) <= now),
        "system_mail_bodies": update(OutboxMessage)
        .where(
            col(OutboxMessage.kind) == OutboxKind.system,
            col(OutboxMessage.body) != "",
            or_(
                and_(col(OutboxMessage.status) == OutboxStatus.sent, col(OutboxMessage.sent_at) <= mail_before),
                # never sent: its code expired long ago
                and_(col(OutboxMessage.status) == OutboxStatus.failed, col(OutboxMessage.created_at) <= mail_before),
            ),
        )
        .values(body="", html=""),
    }
    purged: dict[str, int] = {}
    async with db.transaction() as session:
        for name, statement in statements.items():
            result = await session.execute(statement)
            purged[name] = int(getattr(result, "rowcount", 0) or 0)
    return purged


@dataclass(frozen=True)
class SealedColumn:
    """A column of a domain's table that holds one value sealed with `purpose` (a channel's provider secrets)."""

    label: str
    model: type[SQLModel]
    column: str
    purpose: str


async def reseal_secrets(
    db: Database,
    secret_keys: Sequence[bytes],
    *,
    batch: int = RESEAL_BATCH,
    sealed_columns: Sequence[SealedColumn] = (),
) -> dict[str, dict[str, int]]:
    """Seal every stored sealed value with the newest secret (the first), a batch per transaction, so that older
    secrets can be retired. Returns per table how many were resealed, were already current, and could not be
    opened with any of the secrets. `sealed_columns`: the domains' own (see Domain.sealed_columns)."""
    counts = {
        "outbox_bodies": await _reseal_outbox(db, secret_keys, batch),
        "idempotency_records": await _reseal_idempotency(db, secret_keys, batch),
        "payment_provider_keys": await _reseal_column(
            db, secret_keys, batch, Workspace, "payment_provider", PAYMENT_PROVIDER_SEAL
        ),
    }
    for sealed in sealed_columns:
        counts[sealed.label] = await _reseal_column(db, secret_keys, batch, sealed.model, sealed.column, sealed.purpose)
    return counts


def _counts() -> dict[str, int]:
    return {"resealed": 0, "current": 0, "unreadable": 0}


def _resealed(secret_keys: Sequence[bytes], purpose: str, token: str, counts: dict[str, int]) -> str | None:
    try:
        fresh = reseal(secret_keys, purpose, token)
    except InvalidTag:
        counts["unreadable"] += 1
        return None
    if fresh is None:
        counts["current"] += 1
    return fresh


async def _reseal_outbox(db: Database, secret_keys: Sequence[bytes], batch: int) -> dict[str, int]:
    counts = _counts()
    after = ""
    while True:
        async with db.transaction() as session:
            rows = (
                await session.execute(
                    select(col(OutboxMessage.id), col(OutboxMessage.body), col(OutboxMessage.html))
                    .where(col(OutboxMessage.id) > after, col(OutboxMessage.body) != "")
                    .order_by(col(OutboxMessage.id))
                    .limit(batch)
                )
            ).all()
            for message_id, body, html in rows:
                fresh = _resealed(secret_keys, OUTBOX_SEAL_PURPOSE, body, counts)
                if fresh is not None:
                    # The HTML alternative was sealed with the body, so it opens and reseals with it.
                    fresh_html = (reseal(secret_keys, OUTBOX_SEAL_PURPOSE, html) or html) if html else ""
                    # Only the body read here is replaced: a purge that came in between stands.
                    result: Any = await session.execute(
                        update(OutboxMessage)
                        .where(col(OutboxMessage.id) == message_id, col(OutboxMessage.body) == body)
                        .values(body=fresh, html=fresh_html)
                    )
                    counts["resealed"] += result.rowcount
        if len(rows) < batch:
            return counts
        after = rows[-1].id


async def _reseal_idempotency(db: Database, secret_keys: Sequence[bytes], batch: int) -> dict[str, int]:
    counts = _counts()
    key_columns = (col(IdempotencyRecord.scope), col(IdempotencyRecord.key))
    after: tuple[str, str] | None = None
    while True:
        async with db.transaction() as session:
            stmt = select(*key_columns, col(IdempotencyRecord.response)).order_by(*key_columns).limit(batch)
            if after is not None:
                stmt = stmt.where(tuple_(*key_columns) > tuple_(*after))
            rows = (await session.execute(stmt)).all()
            for scope, key, response in rows:
                if not (isinstance(response, dict) and set(response) == {"sealed"}):
                    continue  # stored in the clear: nothing secret in it
                fresh = _resealed(secret_keys, IDEMPOTENCY_SEAL_PURPOSE, response["sealed"], counts)
                if fresh is not None:
                    await session.execute(
                        update(IdempotencyRecord)
                        .where(col(IdempotencyRecord.scope) == scope, col(IdempotencyRecord.key) == key)
                        .values(response={"sealed": fresh})
                    )
                    counts["resealed"] += 1
        if len(rows) < batch:
            return counts
        after = (rows[-1].scope, rows[-1].key)


async def _reseal_column(
    db: Database, secret_keys: Sequence[bytes], batch: int, model: type[SQLModel], name: str, purpose: str
) -> dict[str, int]:
    counts = _counts()
    ident, sealed_column = column(model, "id"), column(model, name)
    after = ""
    while True:
        async with db.transaction() as session:
            rows = (
                await session.execute(
                    select(ident, sealed_column)
                    .where(ident > after, sealed_column.is_not(None), sealed_column != "")
                    .order_by(ident)
                    .limit(batch)
                )
            ).all()
            for row_id, sealed in rows:
                fresh = _resealed(secret_keys, purpose, str(sealed), counts)
                if fresh is not None:
                    # Only the value read here is replaced: one set again in between stands.
                    result: Any = await session.execute(
                        update(model).where(ident == row_id, sealed_column == sealed).values({name: fresh})
                    )
                    counts["resealed"] += result.rowcount
        if len(rows) < batch:
            return counts
        after = rows[-1][0]
