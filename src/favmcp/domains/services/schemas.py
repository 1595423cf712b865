"""Tool inputs and outputs of the services domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from favmcp.core.money import Amount, CurrencyCode, Percent
from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.domains.bookings.schemas import ServiceId
from favmcp.domains.services.models import ServiceStatus
from favmcp.registry.spec import ToolInput, UpdateInput, WriteInput

Duration = Annotated[int, Field(ge=5, le=1440)]
UserRef = Annotated[str, Field(min_length=1, max_length=40)]  # a user id (usr_...), said once by the list
Buffer = Annotated[int, Field(ge=0, le=240, description="Minutes kept free for the staff member.")]
Capacity = Annotated[int, Field(ge=1, le=1000, description="1 = appointment; 2 to 1000 = class seats per session.")]


class CreateServiceInput(WriteInput):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    duration_minutes: Duration
    unit_amount: Amount
    currency: CurrencyCode | None = Field(default=None, description="The workspace's by default.")
    tax_rate: Percent = Field(default="0", validate_default=True)
    buffer_before_minutes: Buffer = 0
    buffer_after_minutes: Buffer = 0
    capacity: Capacity = 1
    members_only: bool = Field(default=False, description="Booking needs an active membership.")
    staff_ids: list[UserRef] | None = Field(default=None, max_length=200, description="Who delivers it.")


class ListServicesInput(ToolInput, PageParams):
    status: ServiceStatus | Literal["all"] = ServiceStatus.active


class UpdateServiceInput(UpdateInput):
    not_clearable = frozenset(
        {
            "name", "duration_minutes", "unit_amount", "currency", "tax_rate", "buffer_before_minutes",
            "buffer_after_minutes", "capacity", "members_only",
        }
    )  # fmt: skip

    service_id: ServiceId
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    duration_minutes: Duration | None = None
    unit_amount: Amount | None = None
    currency: CurrencyCode | None = None
    tax_rate: Percent | None = Field(default=None, description='e.g. "21"')
    buffer_before_minutes: Buffer | None = None
    buffer_after_minutes: Buffer | None = None
    capacity: Capacity | None = None
    members_only: bool | None = None


class ArchiveServiceInput(WriteInput):
    service_id: ServiceId


class AssignStaffInput(WriteInput):
    service_id: ServiceId
    staff_ids: list[UserRef] = Field(max_length=200, description="The whole set; replaces the current one.")


class ServicePublic(Schema):
    id: str
    status: ServiceStatus
    name: str
    description: str | None
    duration_minutes: int
    unit_amount: int
    currency: str
    tax_rate: str
    buffer_before_minutes: int
    buffer_after_minutes: int
    capacity: int
    is_class: bool = Field(description="Capacity above 1: booked by the seat in class sessions.")
    members_only: bool
    staff_ids: list[str] = Field(description="Active team members who deliver it.")
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class ServicePage(Page[ServicePublic]):
    pass
