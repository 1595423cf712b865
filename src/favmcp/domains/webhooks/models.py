"""Outgoing webhooks: endpoints subscribed to domain events, each event's delivery to each endpoint, and every
attempt at it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field

from favmcp.db.types import Table, enum_field, json_field, utc_field, workspace_fk


class EndpointStatus(StrEnum):
    enabled = "enabled"
    disabled = "disabled"  # by persistent failure; nothing more is queued for it


class WebhookEndpoint(Table, table=True):
    """`events` lists event names (`booking.created`) or ["*"]; `secret` is the sealed `whsec_…` signing secret,
    shown once when the endpoint is created."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_workspace_keyset", "workspace_id", "id"),)

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    url: str = Field(max_length=2000)
    description: str | None = Field(default=None, max_length=300)
    events: list[str] = json_field(list)
    secret: str
    status: EndpointStatus = enum_field(EndpointStatus, EndpointStatus.enabled)
    failing_since: datetime | None = utc_field(nullable=True)
    disabled_at: datetime | None = utc_field(nullable=True)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()


class DeliveryStatus(StrEnum):
    pending = "pending"  # waiting for its first attempt or its next retry
    succeeded = "succeeded"  # the endpoint answered 2xx
    failed = "failed"  # retries are over (about 3 days), or the endpoint was disabled or deleted


class WebhookDelivery(Table, table=True):
    """One event for one endpoint; its id is the `webhook-id` header, the same on every retry (receivers dedupe by
    it). A redelivery is a new delivery of the same event."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint", "workspace_id", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_workspace_keyset", "workspace_id", "id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    endpoint_id: str = Field(foreign_key="webhook_endpoints.id", max_length=40, ondelete="CASCADE")
    event_id: str = Field(max_length=40)  # the domain event (event log) it carries
    event_name: str = Field(max_length=80)
    payload: dict[str, Any] = json_field()
    status: DeliveryStatus = enum_field(DeliveryStatus, DeliveryStatus.pending)
    attempts: int = 0
    next_attempt_at: datetime | None = utc_field(nullable=True)
    last_status_code: int | None = None
    last_latency_ms: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    redelivery_of: str | None = Field(default=None, max_length=40)
    outbox_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()
    delivered_at: datetime | None = utc_field(nullable=True)


class WebhookAttempt(Table, table=True):
    """Append-only: one POST to an endpoint and what came back."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "attempted_at"),)

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    delivery_id: str = Field(foreign_key="webhook_deliveries.id", max_length=40, ondelete="CASCADE")
    attempted_at: datetime = utc_field()
    status_code: int | None = None
    latency_ms: int
    error: str | None = Field(default=None, max_length=500)
