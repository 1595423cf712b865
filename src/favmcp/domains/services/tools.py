"""The services domain's tools: what customers book, its price, duration, buffers, capacity and staff."""

from __future__ import annotations

from sqlmodel import col

from favmcp.core.errors import invalid_state
from favmcp.core.ids import new_id
from favmcp.domains.bookings.models import Booking
from favmcp.domains.classes.models import ClassSession
from favmcp.domains.services import service
from favmcp.domains.services.models import Service, ServiceStaff, ServiceStatus
from favmcp.domains.services.schemas import (
    ArchiveServiceInput,
    AssignStaffInput,
    CreateServiceInput,
    ListServicesInput,
    ServicePage,
    ServicePublic,
    UpdateServiceInput,
)
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain
from favmcp.registry.spec import tool

DOMAIN_NAME = "services"


def public(svc: Service, staff_ids: list[str]) -> ServicePublic:
    return ServicePublic.model_validate(
        {**svc.model_dump(), "is_class": svc.is_class, "staff_ids": staff_ids}, from_attributes=False
    )


async def _answer(ctx: ToolContext, svc: Service) -> ServicePublic:
    return public(svc, await service.staff_of(ctx, svc.id))


async def _set_staff(ctx: ToolContext, service_id: str, user_ids: list[str]) -> None:
    await ctx.db.delete(ServiceStaff, col(ServiceStaff.service_id) == service_id)
    await ctx.db.insert_or_ignore(
        ServiceStaff, [{"service_id": service_id, "user_id": u, "created_at": ctx.now} for u in user_ids]
    )


@tool(domain=DOMAIN_NAME, title="Create service", hints="W", scope="services:write", route="POST /v1/services")
async def create_service(ctx: ToolContext, args: CreateServiceInput) -> ServicePublic:
    """Create a bookable service: name, duration, price (minor units), tax rate, buffers kept free before and
    after, capacity (1 = appointment, more = class seats) and optionally its staff. Refuses unknown or
    deactivated staff."""
    staff_ids = await service.ensure_active_staff(ctx, args.staff_ids or [])
    svc = Service(
        id=new_id("svc"),
        workspace_id=ctx.workspace_id,
        name=args.name,
        description=args.description,
        duration_minutes=args.duration_minutes,
        unit_amount=args.unit_amount,
        currency=args.currency or (await ctx.db.workspace()).currency,
        tax_rate=str(args.tax_rate),
        buffer_before_minutes=args.buffer_before_minutes,
        buffer_after_minutes=args.buffer_after_minutes,
        capacity=args.capacity,
        members_only=args.members_only,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    ctx.db.add(svc)
    await ctx.db.flush()
    await _set_staff(ctx, svc.id, staff_ids)
    ctx.record_change(service_id=svc.id)
    return public(svc, staff_ids)


@tool(domain=DOMAIN_NAME, title="List services", hints="R I", scope="services:read", route="GET /v1/services")
async def list_services(ctx: ToolContext, args: ListServicesInput) -> ServicePage:
    """Services, newest first, with price, duration, buffers, capacity and the staff who deliver them; active ones
    unless a status is given."""
    stmt = ctx.db.select(Service)
    if args.status != "all":
        stmt = stmt.where(col(Service.status) == args.status)
    rows, cursor = await ctx.db.page(stmt, col(Service.id), args)
    staff = await service.staff_by_service(ctx, [s.id for s in rows])
    return ServicePage(items=[public(s, staff[s.id]) for s in rows], next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME,
    title="Update service",
    hints="W I",
    scope="services:write",
    route="PATCH /v1/services/{service_id}",
)
async def update_service(ctx: ToolContext, args: UpdateServiceInput) -> ServicePublic:
    """Change a service; fields left out stay, null clears description. Existing bookings keep their booked price
    and time. Refuses turning an appointment service into a class (or back) once it has bookings or sessions."""
    svc = await service.load(ctx, args.service_id, lock=True)
    given = args.model_dump(exclude_unset=True, exclude={"service_id", "idempotency_key"})
    if "tax_rate" in given:
        given["tax_rate"] = str(args.tax_rate)
    changes = {k: v for k, v in given.items() if getattr(svc, k) != v}
    if "capacity" in changes and (changes["capacity"] > 1) != svc.is_class:
        of_service = col(Booking.service_id) == svc.id
        used = await ctx.db.unfiltered.count(Booking, of_service) or await ctx.db.unfiltered.count(
            ClassSession, col(ClassSession.service_id) == svc.id
        )
        if used:
            raise invalid_state(
                f"Service {svc.name} ({svc.id}) already has bookings or sessions; it cannot switch between "
                "appointment and class.",
                current="class" if svc.is_class else "appointment",
                hint="Create a new service with create_service and archive this one.",
                id=svc.id,
            )
    if changes:
        for name, value in changes.items():
            setattr(svc, name, value)
        svc.updated_at = ctx.now
        ctx.db.add(svc)
        await ctx.db.flush()
        ctx.record_change(service_id=svc.id, fields=sorted(changes))
    return await _answer(ctx, svc)


@tool(
    domain=DOMAIN_NAME,
    title="Archive service",
    hints="D I",
    scope="services:write",
    route="DELETE /v1/services/{service_id}",
)
async def archive_service(ctx: ToolContext, args: ArchiveServiceInput) -> ServicePublic:
    """Archive a service: it takes no new bookings and leaves list_services (status all shows it); existing
    bookings and sessions stay. Archiving again answers the same."""
    svc = await service.load(ctx, args.service_id)
    archived = await ctx.db.update_returning(
        Service,
        col(Service.id) == svc.id,
        col(Service.status) == ServiceStatus.active,
        values={"status": ServiceStatus.archived, "archived_at": ctx.now, "updated_at": ctx.now},
    )
    if archived:
        ctx.record_change(service_id=svc.id)
    return await _answer(ctx, await service.load(ctx, svc.id, lock=True))


@tool(
    domain=DOMAIN_NAME,
    title="Assign staff to service",
    hints="W I",
    scope="services:write",
    route="PUT /v1/services/{service_id}/staff",
)
async def assign_staff_to_service(ctx: ToolContext, args: AssignStaffInput) -> ServicePublic:
    """Set which team members deliver a service, replacing the current set (an empty list removes all). Refuses
    unknown or deactivated members. Existing bookings keep their staff."""
    svc = await service.load(ctx, args.service_id, lock=True)
    staff_ids = await service.ensure_active_staff(ctx, args.staff_ids)
    if staff_ids != await service.staff_of(ctx, svc.id):
        await _set_staff(ctx, svc.id, staff_ids)
        ctx.record_change(service_id=svc.id, staff_ids=staff_ids)
    return public(svc, staff_ids)


DOMAIN = Domain(
    DOMAIN_NAME,
    tools=[create_service, list_services, update_service, archive_service, assign_staff_to_service],
)
