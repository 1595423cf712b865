"""The webhooks domain's arguments and answers: endpoints, their health, deliveries and attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.domains.webhooks.models import DeliveryStatus, EndpointStatus
from favmcp.registry.spec import ToolInput, WriteInput

Id = Annotated[str, Field(min_length=1, max_length=40)]
EventName = Annotated[str, Field(min_length=1, max_length=80)]


class CreateEndpointInput(WriteInput):
    url: str = Field(min_length=8, max_length=2000, description="https URL that receives the POSTs.")
    events: list[EventName] = Field(min_length=1, max_length=100, description='Event names, or ["*"] for all.')
    description: str | None = Field(default=None, max_length=300)


class EndpointIdInput(WriteInput):
    endpoint_id: Id


class ListEndpointsInput(ToolInput, PageParams):
    pass


class ListDeliveriesInput(ToolInput, PageParams):
    endpoint_id: Id | None = None
    status: DeliveryStatus | None = None
    event: EventName | None = Field(default=None, description="An event name, e.g. member.created.")


class RedeliverInput(WriteInput):
    delivery_id: Id


class Health(Schema):
    failing_since: datetime | None = Field(description="First failed attempt since the last success.")
    last_delivery_status: DeliveryStatus | None
    last_delivery_at: datetime | None
    last_status_code: int | None
    succeeded_24h: int
    failed_24h: int
    pending: int = Field(description="Deliveries waiting for their first attempt or a retry.")


class EndpointPublic(Schema):
    id: str
    url: str
    description: str | None
    events: list[str]
    status: EndpointStatus
    disabled_at: datetime | None
    created_at: datetime


class EndpointWithHealth(EndpointPublic):
    health: Health


class EndpointCreated(EndpointPublic):
    secret: str = Field(description="whsec_… signing secret (Standard Webhooks). Shown only in this answer.")


class EndpointPage(Page[EndpointWithHealth]):
    pass


class EndpointDeleted(Schema):
    endpoint_id: str
    deliveries_stopped: int = Field(description="Pending deliveries that will not be sent.")


class AttemptPublic(Schema):
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None


class DeliveryPublic(Schema):
    id: str = Field(description="The webhook-id header; the same on every retry.")
    endpoint_id: str
    event_id: str
    event: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_latency_ms: int | None
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="When the next retry goes, while pending.")
    redelivery_of: str | None
    created_at: datetime
    delivered_at: datetime | None
    recent_attempts: list[AttemptPublic] = Field(description="The last few attempts, newest first.")


class DeliveryPage(Page[DeliveryPublic]):
    pass


class Redelivered(Schema):
    delivery: DeliveryPublic
    endpoint_reenabled: bool = Field(description="The endpoint had been disabled and is enabled again.")
