"""The services contract other domains use: load a service, its staff, the time a booking of it takes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col

from favmcp.auth.models import User, UserStatus
from favmcp.core.errors import invalid_state, not_found
from favmcp.domains.services.models import Service, ServiceStaff, ServiceStatus
from favmcp.registry.context import ToolContext

FIND = "Find services with list_services."


@dataclass(frozen=True)
class Span:
    """A booking's time and the time it blocks for its staff member (widened by the service's buffers)."""

    starts_at: datetime
    ends_at: datetime
    blocked_from: datetime
    blocked_until: datetime


def span(service: Service, starts_at: datetime) -> Span:
    ends_at = starts_at + timedelta(minutes=service.duration_minutes)
    return Span(
        starts_at=starts_at,
        ends_at=ends_at,
        blocked_from=starts_at - timedelta(minutes=service.buffer_before_minutes),
        blocked_until=ends_at + timedelta(minutes=service.buffer_after_minutes),
    )


async def load(ctx: ToolContext, service_id: str, *, lock: bool = False) -> Service:
    """A service of this workspace, archived or not."""
    service = await ctx.db.get(Service, service_id, lock=lock, fresh=lock)
    if service is None:
        raise not_found("service", service_id, hint=FIND)
    return service


async def load_bookable(ctx: ToolContext, service_id: str) -> Service:
    """An active service; an archived one is refused (it takes no new bookings)."""
    service = await load(ctx, service_id)
    if service.status != ServiceStatus.active:
        raise invalid_state(
            f"Service {service.name} ({service.id}) is archived and takes no new bookings.",
            current=service.status,
            hint=FIND,
            id=service.id,
        )
    return service


async def staff_of(ctx: ToolContext, service_id: str) -> list[str]:
    """The active team members who deliver the service, by id."""
    return (await staff_by_service(ctx, [service_id]))[service_id]


async def ensure_delivers(ctx: ToolContext, service: Service, user_id: str) -> None:
    """Refuse a staff member who is not an active deliverer of the service."""
    if user_id not in await staff_of(ctx, service.id):
        raise invalid_state(
            f"Team member {user_id} does not deliver {service.name} ({service.id}), or is deactivated.",
            current="not_assigned",
            hint="Pick one of the service's staff (list_services), or assign_staff_to_service.",
            service_id=service.id,
            user_id=user_id,
        )


async def services_of(ctx: ToolContext, user_ids: Sequence[str]) -> dict[str, list[str]]:
    """The active services each team member delivers, by user id (for list_team_members)."""
    if not user_ids:
        return {}
    stmt = (
        ctx.db.unfiltered.select_columns(ServiceStaff, col(ServiceStaff.user_id), col(ServiceStaff.service_id))
        .join(Service, col(Service.id) == col(ServiceStaff.service_id))
        .where(
            col(ServiceStaff.user_id).in_(list(user_ids)),
            col(Service.status) == ServiceStatus.active,
            ctx.db.owns(Service),
        )
        .order_by(col(ServiceStaff.service_id))
    )
    found: dict[str, list[str]] = {user_id: [] for user_id in user_ids}
    for user_id, service_id in await ctx.db.unfiltered.rows(stmt):
        found[user_id].append(service_id)
    return found


async def staff_by_service(ctx: ToolContext, service_ids: Sequence[str]) -> dict[str, list[str]]:
    """The active team members who deliver each of the services, in one query (for list_services)."""
    if not service_ids:
        return {}
    stmt = (
        ctx.db.unfiltered.select_columns(ServiceStaff, col(ServiceStaff.service_id), col(ServiceStaff.user_id))
        .join(User, col(User.id) == col(ServiceStaff.user_id))
        .where(
            col(ServiceStaff.service_id).in_(list(service_ids)),
            col(User.status) == UserStatus.active,
            ctx.db.owns(User),
        )
        .order_by(col(ServiceStaff.user_id))
    )
    found: dict[str, list[str]] = {service_id: [] for service_id in service_ids}
    for service_id, user_id in await ctx.db.unfiltered.rows(stmt):
        found[service_id].append(user_id)
    return found


async def ensure_active_staff(ctx: ToolContext, user_ids: Sequence[str]) -> list[str]:
    """The given team members, deduplicated and sorted; refuses an unknown or deactivated one, naming it."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return []
    users = await ctx.db.unfiltered.all(ctx.db.unfiltered.select(User, col(User.id).in_(wanted)))
    status = {u.id: u.status for u in users}
    for user_id in wanted:
        if user_id not in status:
            raise not_found("team member", user_id, hint="Find team members with list_team_members.")
        if status[user_id] != UserStatus.active:
            raise invalid_state(
                f"Team member {user_id} is deactivated and cannot deliver services.",
                current=status[user_id].value,
                hint="Pick active team members (list_team_members).",
                user_id=user_id,
            )
    return wanted
