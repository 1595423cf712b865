from __future__ import annotations

from favmcp.core.errors import not_found
from favmcp.db.tenancy import Workspace
from favmcp.domains.workspace.schemas import (
    GetWorkspaceInput,
    SetBusinessHoursInput,
    UpdateWorkspaceInput,
    WorkspacePublic,
)
from favmcp.registry.context import ToolContext
from favmcp.registry.spec import tool

DOMAIN = "workspace"
CLEARABLE = {"industry", "country", "contact_email", "contact_phone"}


async def _load(ctx: ToolContext, *, for_update: bool = False) -> Workspace:
    ws = await ctx.session.get(Workspace, ctx.workspace_id, with_for_update=for_update)
    if ws is None:
        raise not_found("workspace", ctx.workspace_id)
    return ws


@tool(domain=DOMAIN, title="Get workspace profile", hints="R I", scope="workspace:read")
async def get_workspace(ctx: ToolContext, args: GetWorkspaceInput) -> WorkspacePublic:
    """The business profile: name, industry, country, timezone, currency, locale, contact details,
    weekly opening hours and closure dates. Read this before anything that depends on local time or money."""
    return WorkspacePublic.model_validate(await _load(ctx), from_attributes=True)


@tool(domain=DOMAIN, title="Update workspace profile", hints="W I", scope="workspace:admin")
async def update_workspace(ctx: ToolContext, args: UpdateWorkspaceInput) -> WorkspacePublic:
    """Change profile fields of the workspace; fields left out stay as they are.
    Refuses unknown timezones, currencies and countries. Opening hours have their own tool, set_business_hours."""
    ws = await _load(ctx, for_update=True)
    fields = {
        k: v
        for k, v in args.model_dump(exclude_unset=True, exclude={"idempotency_key"}).items()
        if v is not None or k in CLEARABLE
    }
    for name, value in fields.items():
        setattr(ws, name, value)
    ws.updated_at = ctx.now
    ctx.record_change(fields=sorted(fields))
    return WorkspacePublic.model_validate(ws, from_attributes=True)


@tool(domain=DOMAIN, title="Set business hours", hints="W I", scope="workspace:admin")
async def set_business_hours(ctx: ToolContext, args: SetBusinessHoursInput) -> WorkspacePublic:
    """Replace the weekly opening hours and the closure dates as a whole (not a merge).
    Times are local to the workspace timezone; a weekday left out is closed. Intervals may not overlap."""
    ws = await _load(ctx, for_update=True)
    ws.business_hours = {day: [i.model_dump(mode="json") for i in ivs] for day, ivs in args.weekly.items()}
    ws.closures = [c.model_dump(mode="json") for c in sorted(args.closures, key=lambda c: c.date)]
    ws.updated_at = ctx.now
    ctx.record_change(fields=["business_hours", "closures"])
    return WorkspacePublic.model_validate(ws, from_attributes=True)


TOOLS = [get_workspace, update_workspace, set_business_hours]
