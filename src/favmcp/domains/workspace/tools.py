"""The business profile: name, locale, money, contact details, opening hours and closures."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from favmcp.core.contact import phone_argument
from favmcp.core.errors import conflict
from favmcp.db.tenancy import Workspace
from favmcp.domains.payments import provider
from favmcp.domains.workspace.schemas import (
    GetWorkspaceInput,
    SetBusinessHoursInput,
    UpdateWorkspaceInput,
    WorkspacePublic,
)
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain
from favmcp.registry.spec import tool

DOMAIN_NAME = "workspace"


def _public(ctx: ToolContext, ws: Workspace) -> WorkspacePublic:
    """The profile as shown: of the payment provider's settings only whether they are there and the key's end."""
    fields = {name: getattr(ws, name) for name in WorkspacePublic.model_fields if name != "payment_provider"}
    return WorkspacePublic.model_validate(
        {**fields, "payment_provider": provider.summary(ctx.settings, ws.payment_provider)}
    )


@tool(domain=DOMAIN_NAME, title="Get workspace profile", hints="R I", scope="workspace:read", route="GET /v1/workspace")
async def get_workspace(ctx: ToolContext, args: GetWorkspaceInput) -> WorkspacePublic:
    """The business profile: name, industry, country, timezone, currency, locale, contact details, weekly opening
    hours and closures. Read it before anything that depends on local time or money."""
    return _public(ctx, await ctx.db.workspace())


@tool(
    domain=DOMAIN_NAME,
    title="Update workspace profile",
    hints="W I",
    scope="workspace:admin",
    route="PATCH /v1/workspace",
)
async def update_workspace(ctx: ToolContext, args: UpdateWorkspaceInput) -> WorkspacePublic:
    """Change workspace profile fields: fields left out stay, null clears. Refuses unknown timezones, currencies
    and countries, and a handle in use (a new handle retires the old public URLs). Opening hours:
    set_business_hours."""
    ws = await ctx.db.workspace(lock=True)
    fields = args.model_dump(exclude_unset=True, exclude={"idempotency_key", "payment_provider"})
    if fields.get("contact_phone") is not None:
        # A national number is read in the country this call sets, or else the one the workspace has.
        country = fields.get("country", ws.country)
        fields["contact_phone"] = phone_argument(fields["contact_phone"], country, "contact_phone")
    changed = {k: v for k, v in fields.items() if getattr(ws, k) != v}
    if "payment_provider" in args.model_fields_set:
        # Write-only and sealed: compared opened, so that sending the same keys again changes nothing.
        keys = args.payment_provider.model_dump() if args.payment_provider else None
        if keys != provider.open_provider(ctx.settings, ws.payment_provider):
            changed["payment_provider"] = provider.seal_provider(ctx.settings, keys) if keys else None
    for name, value in changed.items():
        setattr(ws, name, value)
    if "handle" in changed:
        try:
            async with ctx.db.savepoint():
                await ctx.db.flush()
        except IntegrityError:
            raise conflict(
                f"The handle {changed['handle']!r} is taken.",
                hint="Choose another handle.",
                details={"reason": "handle_taken", "field": "handle"},
            ) from None
    if changed:
        ws.updated_at = ctx.now
        ctx.record_change(fields=sorted(changed))
    return _public(ctx, ws)


@tool(
    domain=DOMAIN_NAME,
    title="Set business hours",
    hints="W I",
    scope="workspace:admin",
    route="PUT /v1/workspace/business-hours",
)
async def set_business_hours(ctx: ToolContext, args: SetBusinessHoursInput) -> WorkspacePublic:
    """Replace the weekly opening hours and the closure dates as a whole. Intervals may not overlap."""
    ws = await ctx.db.workspace(lock=True)
    ws.business_hours = {day: [i.model_dump(mode="json") for i in ivs] for day, ivs in args.weekly.items()}
    ws.closures = [c.model_dump(mode="json") for c in sorted(args.closures, key=lambda c: c.date)]
    ws.updated_at = ctx.now
    ctx.record_change(fields=["business_hours", "closures"])
    return _public(ctx, ws)


DOMAIN = Domain(name=DOMAIN_NAME, tools=[get_workspace, update_workspace, set_business_hours])
