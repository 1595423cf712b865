"""Webhook endpoints and deliveries: checking a target, the fan-out of domain events, queueing a delivery with its
outbox row, and the answers the tools give."""

from __future__ import annotations

import base64
from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import case, func
from sqlmodel import col

from favmcp.core.errors import FieldError, not_found, validation_failed
from favmcp.core.events import DomainEvent
from favmcp.core.ids import new_id
from favmcp.core.times import format_utc
from favmcp.domains.webhooks.models import (
    DeliveryStatus,
    EndpointStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from favmcp.domains.webhooks.schemas import (
    AttemptPublic,
    DeliveryPublic,
    EndpointPublic,
    EndpointWithHealth,
    Health,
)
from favmcp.effects.channels.webhook import TargetRefused, resolve_public
from favmcp.effects.models import OutboxKind, OutboxMessage, OutboxStatus
from favmcp.registry.context import ToolContext

CHANNEL = "webhook"  # the outbox channel that delivers them (delivery.WebhookChannel)
SEAL_PURPOSE = "webhook_secret"
ALL = "*"
RECENT_ATTEMPTS = 5  # attempts shown with each delivery
KEEP_LOG = timedelta(days=30)  # finished deliveries (and their attempts) older than this are purged


# -- endpoints ---------------------------------------------------------------------------------------------------


def event_names(ctx: ToolContext, given: list[str]) -> list[str]:
    """The subscribed names, sorted and once each; ["*"] for everything. Unknown names are refused, listing the
    known ones."""
    if ALL in given:
        return [ALL]
    known = {e.name for e in ctx.platform.events}
    unknown = sorted(set(given) - known)
    if unknown:
        raise validation_failed(
            f'Unknown event names: {", ".join(unknown)}. Known events: {", ".join(sorted(known))}; or ["*"].',
            [FieldError(field="events", message=f"unknown: {', '.join(unknown)}")],
        )
    return sorted(set(given))


async def ensure_target(ctx: ToolContext, url: str) -> None:
    """The URL may receive webhooks: https, and only public addresses unless the operator allows private ones."""
    try:
        await resolve_public(url, allow_private=ctx.settings.allow_private_targets)
    except TargetRefused as exc:
        raise validation_failed(
            f"This URL cannot receive webhooks: {exc}.", [FieldError(field="url", message=str(exc))]
        ) from None


def new_secret(ctx: ToolContext) -> str:
    """A Standard Webhooks signing secret: `whsec_` and base64 of 32 random bytes (from the injected source)."""
    raw = ctx.random.token(32).encode()[:32]
    return "whsec_" + base64.b64encode(raw).decode()


async def load_endpoint(ctx: ToolContext, endpoint_id: str, *, lock: bool = False) -> WebhookEndpoint:
    endpoint = await ctx.db.get(WebhookEndpoint, endpoint_id, lock=lock)
    if endpoint is None:
        raise not_found("webhook endpoint", endpoint_id, hint="See the endpoints with list_webhook_endpoints.")
    return endpoint


async def hold_endpoint(ctx: ToolContext, endpoint_id: str) -> WebhookEndpoint | None:
    """The endpoint row locked FOR NO KEY UPDATE: it waits for a delete (FOR UPDATE) and makes one wait, but lets
    the fan-out (FOR KEY SHARE) queue deliveries for it meanwhile."""
    stmt = ctx.db.select(WebhookEndpoint, col(WebhookEndpoint.id) == endpoint_id)
    return await ctx.db.first(stmt.with_for_update(key_share=True).execution_options(populate_existing=True))


async def load_delivery(ctx: ToolContext, delivery_id: str) -> WebhookDelivery:
    found = await ctx.db.get(WebhookDelivery, delivery_id)
    if found is None:
        raise not_found("webhook delivery", delivery_id, hint="See past deliveries with list_webhook_deliveries.")
    return found


def endpoint_public(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return EndpointPublic(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        events=list(endpoint.events),
        status=endpoint.status,
        disabled_at=endpoint.disabled_at,
        created_at=endpoint.created_at,
    ).model_dump()


async def with_health(ctx: ToolContext, endpoints: list[WebhookEndpoint]) -> list[EndpointWithHealth]:
    """Each endpoint with its health: the latest delivery, pending deliveries, and the last 24 h's attempts that
    succeeded and failed. Three grouped queries for the whole page."""
    ids = [e.id for e in endpoints]
    per_endpoint = await ctx.db.rows(
        ctx.db.select_columns(
            WebhookDelivery,
            col(WebhookDelivery.endpoint_id),
            func.max(col(WebhookDelivery.id)),
            func.sum(case((col(WebhookDelivery.status) == DeliveryStatus.pending, 1), else_=0)),
        )
        .where(col(WebhookDelivery.endpoint_id).in_(ids))
        .group_by(col(WebhookDelivery.endpoint_id))
    )
    latest_ids = [row[1] for row in per_endpoint]
    latest = {
        d.endpoint_id: d
        for d in await ctx.db.all(ctx.db.select(WebhookDelivery, col(WebhookDelivery.id).in_(latest_ids)))
    }
    pending = {row[0]: int(row[2] or 0) for row in per_endpoint}
    succeeded = (col(WebhookAttempt.status_code) >= 200) & (col(WebhookAttempt.status_code) < 300)
    recent = await ctx.db.rows(
        ctx.db.select_columns(
            WebhookAttempt,
            col(WebhookDelivery.endpoint_id),
            func.sum(case((succeeded, 1), else_=0)),
            func.count(),
        )
        .join(WebhookDelivery, col(WebhookDelivery.id) == col(WebhookAttempt.delivery_id))
        .where(
            ctx.db.owns(WebhookDelivery),
            col(WebhookDelivery.endpoint_id).in_(ids),
            col(WebhookAttempt.attempted_at) >= ctx.now - timedelta(hours=24),
        )
        .group_by(col(WebhookDelivery.endpoint_id))
    )
    attempts = {row[0]: (int(row[1] or 0), int(row[2] or 0)) for row in recent}
    answers = []
    for endpoint in endpoints:
        last = latest.get(endpoint.id)
        ok, total = attempts.get(endpoint.id, (0, 0))
        health = Health(
            failing_since=endpoint.failing_since,
            last_delivery_status=last.status if last else None,
            last_delivery_at=(last.delivered_at or last.created_at) if last else None,
            last_status_code=last.last_status_code if last else None,
            succeeded_24h=ok,
            failed_24h=total - ok,
            pending=pending.get(endpoint.id, 0),
        )
        answers.append(EndpointWithHealth(**endpoint_public(endpoint), health=health))
    return answers


async def stop_pending(ctx: ToolContext, endpoint_id: str, why: str) -> int:
    """Fail an endpoint's pending deliveries and their outbox rows (those still pending: one a worker is sending
    settles by itself). Returns how many deliveries stopped."""
    pending = (col(WebhookDelivery.endpoint_id) == endpoint_id, col(WebhookDelivery.status) == DeliveryStatus.pending)
    outbox_ids = ctx.db.select_columns(WebhookDelivery, col(WebhookDelivery.outbox_id)).where(*pending)
    await ctx.db.update(
        OutboxMessage,
        col(OutboxMessage.id).in_(outbox_ids),
        col(OutboxMessage.status) == OutboxStatus.pending,
        values={"status": OutboxStatus.failed, "last_error": why},
    )
    return await ctx.db.update(
        WebhookDelivery,
        *pending,
        values={"status": DeliveryStatus.failed, "next_attempt_at": None, "last_error": why},
    )


# -- deliveries --------------------------------------------------------------------------------------------------


def queue(
    ctx: ToolContext,
    endpoint_id: str,
    *,
    event_id: str,
    event_name: str,
    payload: dict[str, Any],
    redelivery_of: str | None = None,
) -> WebhookDelivery:
    """A delivery and its outbox row, in the caller's transaction: the worker POSTs it after commit."""
    delivery_id = new_id("whd")
    outbox = ctx.db.add(
        OutboxMessage(
            id=new_id("out"),
            workspace_id=ctx.workspace_id,
            channel=CHANNEL,
            kind=OutboxKind.system,
            recipient=endpoint_id,
            subject=event_name,
            body="",  # the payload stays on the delivery; the channel reads it there
            payload={"delivery_id": delivery_id},
            next_attempt_at=ctx.now,
            created_at=ctx.now,
        )
    )
    return ctx.db.add(
        WebhookDelivery(
            id=delivery_id,
            workspace_id=ctx.workspace_id,
            endpoint_id=endpoint_id,
            event_id=event_id,
            event_name=event_name,
            payload=payload,
            next_attempt_at=ctx.now,
            redelivery_of=redelivery_of,
            outbox_id=outbox.id,
            created_at=ctx.now,
        )
    )


async def on_event(ctx: ToolContext, event: DomainEvent) -> None:
    """Every domain event, for each enabled endpoint of the workspace subscribed to it (or to "*"): a delivery in
    the emitting call's transaction. The endpoints are read FOR KEY SHARE, so an endpoint deleted meanwhile is
    skipped (Postgres re-reads it after the delete commits) rather than failing the call on its foreign key."""
    if ctx.caller.workspace_id is None:  # a signup's events: the new workspace has no endpoints yet
        return
    enabled = ctx.db.select(WebhookEndpoint, col(WebhookEndpoint.status) == EndpointStatus.enabled)
    endpoints = await ctx.db.all(enabled.with_for_update(read=True, key_share=True))
    subscribed = [e for e in endpoints if ALL in e.events or event.name in e.events]
    if not subscribed:
        return
    payload = {"type": event.name, "timestamp": format_utc(ctx.now), "data": event.model_dump(mode="json")}
    event_id = new_id("evt")
    for endpoint in subscribed:
        queue(ctx, endpoint.id, event_id=event_id, event_name=event.name, payload=payload)


async def purge_log(ctx: ToolContext) -> None:
    """The daily job: finished deliveries older than KEEP_LOG leave the log, their attempts with them."""
    finished = col(WebhookDelivery.status).in_([DeliveryStatus.succeeded, DeliveryStatus.failed])
    gone = await ctx.db.delete(WebhookDelivery, finished, col(WebhookDelivery.created_at) < ctx.now - KEEP_LOG)
    if gone:
        ctx.record_change(deliveries_purged=gone)


async def delivery_public(ctx: ToolContext, deliveries: list[WebhookDelivery]) -> list[DeliveryPublic]:
    """Deliveries with their last few attempts, newest first (one query for the page)."""
    ids = [d.id for d in deliveries]
    found = await ctx.db.all(
        ctx.db.select(WebhookAttempt, col(WebhookAttempt.delivery_id).in_(ids)).order_by(
            col(WebhookAttempt.attempted_at).desc(), col(WebhookAttempt.id).desc()
        )
    )
    attempts: dict[str, list[AttemptPublic]] = defaultdict(list)
    for a in found:
        if len(attempts[a.delivery_id]) < RECENT_ATTEMPTS:
            attempts[a.delivery_id].append(
                AttemptPublic(
                    attempted_at=a.attempted_at, status_code=a.status_code, latency_ms=a.latency_ms, error=a.error
                )
            )
    return [
        DeliveryPublic(
            id=d.id,
            endpoint_id=d.endpoint_id,
            event_id=d.event_id,
            event=d.event_name,
            status=d.status,
            attempts=d.attempts,
            last_status_code=d.last_status_code,
            last_latency_ms=d.last_latency_ms,
            last_error=d.last_error,
            next_attempt_at=d.next_attempt_at if d.status == DeliveryStatus.pending else None,
            redelivery_of=d.redelivery_of,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
            recent_attempts=attempts.get(d.id, []),
        )
        for d in deliveries
    ]
