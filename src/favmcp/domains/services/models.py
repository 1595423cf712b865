"""Bookable services and the staff who deliver them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index
from sqlmodel import Field

from favmcp.db.types import Table, amount_field, enum_field, utc_field, workspace_fk


class ServiceStatus(StrEnum):
    active = "active"
    archived = "archived"  # no new bookings; existing bookings stay


class Service(Table, table=True):
    """What a customer books. Capacity 1 is an appointment with one staff member; more is a class, booked by the
    seat in scheduled class sessions. Bookings copy price, duration and buffers when made, so a later update of
    the service never changes a booked price or time."""

    __tablename__ = "services"
    __table_args__ = (
        Index("ix_services_workspace_keyset", "workspace_id", "id"),
        CheckConstraint("duration_minutes > 0", name="ck_services_duration_positive"),
        CheckConstraint("buffer_before_minutes >= 0 AND buffer_after_minutes >= 0", name="ck_services_buffers"),
        CheckConstraint("capacity >= 1", name="ck_services_capacity"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    duration_minutes: int
    unit_amount: int = amount_field()
    currency: str = Field(max_length=3)
    tax_rate: str = Field(default="0", max_length=12)
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    capacity: int = 1
    members_only: bool = False  # needs an active (or trialing) membership to book
    status: ServiceStatus = enum_field(ServiceStatus, ServiceStatus.active)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    archived_at: datetime | None = utc_field(nullable=True)

    @property
    def is_class(self) -> bool:
        return self.capacity > 1


class ServiceStaff(Table, table=True):
    """Who delivers a service (replaced as a set by assign_staff_to_service)."""

    __tablename__ = "service_staff"
    __table_args__ = (Index("ix_service_staff_workspace_user", "workspace_id", "user_id"),)

    service_id: str = Field(foreign_key="services.id", primary_key=True, max_length=40, ondelete="CASCADE")
    user_id: str = Field(foreign_key="users.id", primary_key=True, max_length=40, ondelete="CASCADE")
    workspace_id: str = workspace_fk(index=False)
    created_at: datetime = utc_field()
