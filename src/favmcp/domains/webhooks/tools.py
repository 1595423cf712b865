"""Outgoing webhooks: endpoints subscribed to domain events, each event POSTed to them signed the Standard Webhooks
way (delivery.py), a delivery log, redelivery. The fan-out is service.on_event, which hears every event."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col

from favmcp.core.errors import conflict
from favmcp.core.events import DomainEvent
from favmcp.core.ids import new_id
from favmcp.core.sealing import seal
from favmcp.db.maintenance import SealedColumn
from favmcp.domains.webhooks import delivery, service
from favmcp.domains.webhooks.models import EndpointStatus, WebhookDelivery, WebhookEndpoint
from favmcp.domains.webhooks.schemas import (
    CreateEndpointInput,
    DeliveryPage,
    EndpointCreated,
    EndpointDeleted,
    EndpointIdInput,
    EndpointPage,
    ListDeliveriesInput,
    ListEndpointsInput,
    Redelivered,
    RedeliverInput,
)
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain, Job
from favmcp.registry.spec import tool

DOMAIN_NAME = "webhooks"
MAX_ENDPOINTS = 20  # per workspace: each event is POSTed to every subscribed one


@tool(
    domain=DOMAIN_NAME,
    title="Create webhook endpoint",
    hints="W",
    scope="webhooks:admin",
    returns_secret=True,
    route="POST /v1/webhook-endpoints",
)
async def create_webhook_endpoint(ctx: ToolContext, args: CreateEndpointInput) -> EndpointCreated:
    """Subscribe an https URL to domain events by name (booking.created, member.updated ...; an unknown name is
    refused with the known ones) or ["*"]. Each is POSTed as JSON, signed per Standard Webhooks with the secret
    shown only in this answer."""
    events = service.event_names(ctx, args.events)
    await service.ensure_target(ctx, args.url)
    await ctx.db.workspace(lock=True)  # creates take turns, so the cap holds
    if await ctx.db.count(WebhookEndpoint) >= MAX_ENDPOINTS:
        raise conflict(
            f"This workspace has {MAX_ENDPOINTS} webhook endpoints, the most it may have.",
            hint='Remove one with delete_webhook_endpoint; one endpoint can take many events, or ["*"].',
        )
    secret = service.new_secret(ctx)
    endpoint = ctx.db.add(
        WebhookEndpoint(
            id=new_id("whe"),
            workspace_id=ctx.workspace_id,
            url=args.url,
            description=args.description,
            events=events,
            secret=seal(ctx.settings.secret_key, service.SEAL_PURPOSE, secret),
            created_at=ctx.now,
            updated_at=ctx.now,
        )
    )
    await ctx.db.flush()
    ctx.record_change(endpoint_id=endpoint.id, events=events)
    return EndpointCreated(**service.endpoint_public(endpoint), secret=secret)


@tool(
    domain=DOMAIN_NAME,
    title="List webhook endpoints",
    hints="R I",
    scope="webhooks:admin",
    route="GET /v1/webhook-endpoints",
)
async def list_webhook_endpoints(ctx: ToolContext, args: ListEndpointsInput) -> EndpointPage:
    """Webhook endpoints newest first, with their events and health: status, failing since, the latest delivery,
    pending deliveries and the last 24 h's attempts. Never the secret."""
    rows, cursor = await ctx.db.page(ctx.db.select(WebhookEndpoint), col(WebhookEndpoint.id), args)
    return EndpointPage(items=await service.with_health(ctx, rows), next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME,
    title="Delete webhook endpoint",
    hints="D I",
    scope="webhooks:admin",
    route="DELETE /v1/webhook-endpoints/{endpoint_id}",
)
async def delete_webhook_endpoint(ctx: ToolContext, args: EndpointIdInput) -> EndpointDeleted:
    """Remove an endpoint and its delivery log; its pending deliveries are not sent. A repeat finds nothing
    (not_found)."""
    endpoint = await service.load_endpoint(ctx, args.endpoint_id, lock=True)  # new deliveries for it wait here
    stopped = await service.stop_pending(ctx, endpoint.id, "the endpoint was deleted")
    await ctx.db.delete(WebhookEndpoint, col(WebhookEndpoint.id) == endpoint.id)  # deliveries and attempts cascade
    ctx.record_change(endpoint_id=endpoint.id, deliveries_stopped=stopped)
    return EndpointDeleted(endpoint_id=endpoint.id, deliveries_stopped=stopped)


@tool(
    domain=DOMAIN_NAME,
    title="List webhook deliveries",
    hints="R I",
    scope="webhooks:admin",
    route="GET /v1/webhook-deliveries",
)
async def list_webhook_deliveries(ctx: ToolContext, args: ListDeliveriesInput) -> DeliveryPage:
    """Deliveries newest first, by endpoint, status or event: attempts, last status code and latency, next retry,
    and the last few attempts."""
    where = []
    if args.endpoint_id is not None:
        where.append(col(WebhookDelivery.endpoint_id) == args.endpoint_id)
    if args.status is not None:
        where.append(col(WebhookDelivery.status) == args.status)
    if args.event is not None:
        where.append(col(WebhookDelivery.event_name) == args.event)
    rows, cursor = await ctx.db.page(ctx.db.select(WebhookDelivery, *where), col(WebhookDelivery.id), args)
    items = await service.delivery_public(ctx, rows)
    return DeliveryPage(items=items, next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME,
    title="Redeliver webhook",
    hints="W O",
    scope="webhooks:admin",
    route="POST /v1/webhook-deliveries/{delivery_id}/redeliver",
)
async def redeliver_webhook(ctx: ToolContext, args: RedeliverInput) -> Redelivered:
    """Send a past delivery's event again to its endpoint, as a new delivery with a new webhook-id. A disabled
    endpoint is enabled again by it."""
    original = await service.load_delivery(ctx, args.delivery_id)
    endpoint = await service.load_endpoint(ctx, original.endpoint_id, lock=True)
    reenabled = bool(
        await ctx.db.update(
            WebhookEndpoint,
            col(WebhookEndpoint.id) == endpoint.id,
            col(WebhookEndpoint.status) == EndpointStatus.disabled,
            values={
                "status": EndpointStatus.enabled,
                "disabled_at": None,
                "failing_since": None,
                "updated_at": ctx.now,
            },
        )
    )
    again = service.queue(
        ctx,
        endpoint.id,
        event_id=original.event_id,
        event_name=original.event_name,
        payload=original.payload,
        redelivery_of=original.id,
    )
    await ctx.db.flush()
    ctx.record_change(delivery_id=again.id, redelivery_of=original.id, endpoint_reenabled=reenabled)
    [public] = await service.delivery_public(ctx, [again])
    return Redelivered(delivery=public, endpoint_reenabled=reenabled)


DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[
        create_webhook_endpoint,
        list_webhook_endpoints,
        delete_webhook_endpoint,
        list_webhook_deliveries,
        redeliver_webhook,
    ],
    subscribers={DomainEvent: [service.on_event]},
    outbox_channels=delivery.OUTBOX_CHANNELS,
    jobs=[Job("purge_webhook_log", timedelta(days=1), service.purge_log)],
    sealed_columns=[SealedColumn("webhook_secrets", WebhookEndpoint, "secret", service.SEAL_PURPOSE)],
)
