"""The outbox channel "webhook": POST a delivery to its endpoint, signed, and record what came back.

One outbox row per delivery. The channel reads the delivery and its endpoint (read_system), POSTs outside any
transaction, then records the attempt and settles the delivery in one unit of work as the system (run_system). A
non-2xx answer or no answer raises, so the outbox retries on this channel's schedule (RETRIES: about three days),
after which the delivery has failed. An endpoint whose every delivery has failed for DISABLE_AFTER (its
failing_since that old at a delivery's final failure) is disabled: its pending deliveries stop, no new ones are
queued, until a redelivery enables it again.

A worker that dies between recording a success and marking its outbox row leaves the row to another worker, which
finds the delivery settled and sends nothing. One that dies during the POST sends it again with the same
webhook-id, by which receivers drop the copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from cryptography.exceptions import InvalidTag
from sqlmodel import col

from favmcp.core.clock import Clock, utc
from favmcp.core.errors import FavError
from favmcp.core.ids import new_id
from favmcp.core.sealing import unseal
from favmcp.domains.webhooks import service
from favmcp.domains.webhooks.models import (
    DeliveryStatus,
    EndpointStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from favmcp.effects.channels.webhook import Outcome, WebhookSender
from favmcp.effects.models import OutboxMessage, Undeliverable
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import ChannelOf

if TYPE_CHECKING:
    from favmcp.registry.runner import Runner

log = structlog.get_logger("favmcp.webhooks")

NAME = "webhook:deliver"
# The wait after the 1st, 2nd ... failed attempt; after the last, the delivery has failed (75 h in all).
RETRIES = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
]
DISABLE_AFTER = timedelta(days=3)


class DeliveryFailed(Exception):
    """The endpoint did not answer 2xx: the outbox tries again later."""


@dataclass(frozen=True)
class Target:
    delivery_id: str
    status: DeliveryStatus
    endpoint_status: EndpointStatus
    url: str
    secret: str  # sealed
    body: str


async def _target(ctx: ToolContext, delivery_id: str) -> Target | None:
    delivery = await ctx.db.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return None
    endpoint = await ctx.db.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None:
        return None
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)
    return Target(delivery.id, delivery.status, endpoint.status, endpoint.url, endpoint.secret, body)


async def settle(ctx: ToolContext, delivery_id: str, outcome: Outcome, wait: timedelta | None) -> None:
    """Record one attempt and move the delivery: succeeded, pending until now + wait, or failed (wait None). The
    endpoint's failing_since starts at its first failure since a success, and a final failure that finds it older
    than DISABLE_AFTER disables the endpoint."""
    found = await ctx.db.get(WebhookDelivery, delivery_id)
    # Lock order, as delete_webhook_endpoint and the fan-out take them: the endpoint, then its deliveries.
    if found is None or await service.hold_endpoint(ctx, found.endpoint_id) is None:
        return  # deleted while the POST was out
    delivery = await ctx.db.get(WebhookDelivery, delivery_id, lock=True)
    if delivery is None or delivery.status != DeliveryStatus.pending:
        return  # deleted, or stopped (endpoint disabled) meanwhile
    ctx.db.add(
        WebhookAttempt(
            id=new_id("wha"),
            workspace_id=ctx.workspace_id,
            delivery_id=delivery.id,
            attempted_at=ctx.now,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            error=outcome.error,
        )
    )
    values: dict[str, Any] = {
        "attempts": col(WebhookDelivery.attempts) + 1,
        "last_status_code": outcome.status_code,
        "last_latency_ms": outcome.latency_ms,
        "last_error": outcome.error,
    }
    endpoint_id = delivery.endpoint_id
    this = col(WebhookEndpoint.id) == endpoint_id
    if outcome.ok:
        values.update(status=DeliveryStatus.succeeded, delivered_at=ctx.now, next_attempt_at=None)
        await ctx.db.update(WebhookEndpoint, this, col(WebhookEndpoint.failing_since).is_not(None),
                            values={"failing_since": None, "updated_at": ctx.now})  # fmt: skip
    else:
        await ctx.db.update(WebhookEndpoint, this, col(WebhookEndpoint.failing_since).is_(None),
                            values={"failing_since": ctx.now, "updated_at": ctx.now})  # fmt: skip
        if wait is None:
            values.update(status=DeliveryStatus.failed, next_attempt_at=None)
        else:
            values.update(next_attempt_at=ctx.now + wait)
    await ctx.db.update(WebhookDelivery, col(WebhookDelivery.id) == delivery.id, values=values)
    if not outcome.ok and wait is None:
        await _disable_if_failing(ctx, endpoint_id)


async def _disable_if_failing(ctx: ToolContext, endpoint_id: str) -> None:
    endpoint = await ctx.db.get(WebhookEndpoint, endpoint_id, fresh=True)  # held since settle began
    if endpoint is None or endpoint.status != EndpointStatus.enabled or endpoint.failing_since is None:
        return
    if utc(endpoint.failing_since) > ctx.now - DISABLE_AFTER:
        return
    await ctx.db.update(
        WebhookEndpoint,
        col(WebhookEndpoint.id) == endpoint.id,
        col(WebhookEndpoint.status) == EndpointStatus.enabled,
        values={"status": EndpointStatus.disabled, "disabled_at": ctx.now, "updated_at": ctx.now},
    )
    stopped = await service.stop_pending(ctx, endpoint.id, "the endpoint was disabled after failing for 3 days")
    ctx.record_change(endpoint_id=endpoint.id, disabled=True, deliveries_stopped=stopped)
    log.warning("webhook_endpoint_disabled", workspace=ctx.workspace_id, endpoint_id=endpoint.id)


async def _stop(ctx: ToolContext, delivery_id: str, why: str) -> None:
    await ctx.db.update(
        WebhookDelivery,
        col(WebhookDelivery.id) == delivery_id,
        col(WebhookDelivery.status) == DeliveryStatus.pending,
        values={"status": DeliveryStatus.failed, "next_attempt_at": None, "last_error": why},
    )


class WebhookChannel:
    """Delivers the outbox rows of channel "webhook" (see the module's docstring)."""

    name = service.CHANNEL

    def __init__(self, runner: Runner, *, wall: Clock | None = None) -> None:
        self.runner = runner
        self.wall = wall

    def retry_in(self, attempts: int) -> timedelta | None:
        return RETRIES[attempts - 1] if 1 <= attempts <= len(RETRIES) else None

    async def send(self, message: OutboxMessage, body: str) -> dict[str, Any] | None:
        workspace_id = message.workspace_id or ""
        delivery_id = str(message.payload.get("delivery_id", ""))
        try:
            target = await self.runner.read_system(workspace_id, NAME, lambda ctx: _target(ctx, delivery_id))
        except FavError as exc:  # the workspace is gone
            raise Undeliverable(exc.body.message) from None
        if target is None:
            raise Undeliverable("the delivery or its endpoint was deleted")
        if target.status == DeliveryStatus.succeeded:
            return {"status": target.status.value}  # sent by a worker that died before marking the row
        if target.status == DeliveryStatus.failed:
            raise Undeliverable("the delivery was stopped")
        if target.endpoint_status != EndpointStatus.enabled:
            await self._run(workspace_id, lambda ctx: _stop(ctx, delivery_id, "the endpoint is disabled"))
            raise Undeliverable("the endpoint is disabled")
        try:
            secret = str(unseal(self.runner.settings.secret_keys, service.SEAL_PURPOSE, target.secret))
        except InvalidTag:
            outcome = Outcome(None, 0, "the signing secret opens with no server secret in use; recreate the endpoint")
            await self._run(workspace_id, lambda ctx: settle(ctx, delivery_id, outcome, None))
            raise Undeliverable(outcome.error or "") from None
        sender = WebhookSender(allow_private=self.runner.settings.allow_private_targets, wall=self.wall)
        outcome = await sender.post(target.url, secret, delivery_id, target.body)
        wait = None if outcome.ok else self.retry_in(message.attempts + 1)
        await self._run(workspace_id, lambda ctx: settle(ctx, delivery_id, outcome, wait))
        if not outcome.ok:
            raise DeliveryFailed(outcome.error or "no 2xx answer")
        return {"status_code": outcome.status_code, "latency_ms": outcome.latency_ms}

    async def _run(self, workspace_id: str, work: Any) -> None:
        try:
            await self.runner.run_system(workspace_id, NAME, work)
        except FavError as exc:  # the workspace was deleted meanwhile
            raise Undeliverable(exc.body.message) from None


def _channel(runner: Runner) -> WebhookChannel:
    return WebhookChannel(runner)


OUTBOX_CHANNELS: dict[str, ChannelOf] = {service.CHANNEL: _channel}
