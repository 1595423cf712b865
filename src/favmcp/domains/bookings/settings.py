"""The workspace's booking rules: minimum notice, maximum advance, slot step, confirmation, cancellation window,
fees."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from favmcp.core.money import Amount, CurrencyCode, Percent
from favmcp.core.schema import Schema
from favmcp.domains.bookings.models import BookingSettings
from favmcp.registry.context import ToolContext
from favmcp.registry.spec import ToolInput, ToolSpec, UpdateInput, tool

FIELDS = (
    "min_notice_minutes", "max_advance_days", "slot_step_minutes", "requires_confirmation",
    "cancellation_window_hours", "late_cancel_fee", "no_show_fee", "fee_currency", "fee_tax_rate",
)  # fmt: skip


async def load_settings(ctx: ToolContext) -> BookingSettings:
    """The workspace's booking rules; the defaults until update_booking_settings first saves them."""
    found = await ctx.db.first(ctx.db.select(BookingSettings))
    if found is not None:
        return found
    return BookingSettings(workspace_id=ctx.workspace_id, updated_at=ctx.now)


class GetBookingSettingsInput(ToolInput):
    pass


class UpdateBookingSettingsInput(UpdateInput):
    not_clearable = frozenset(set(FIELDS) - {"fee_currency"})

    min_notice_minutes: int | None = Field(default=None, ge=0, le=525_600, description="Earliest start from now.")
    max_advance_days: int | None = Field(default=None, ge=1, le=730, description="Latest start, days from now.")
    slot_step_minutes: int | None = Field(default=None, ge=5, le=240, description="Slots start on this step.")
    requires_confirmation: bool | None = Field(default=None, description="New bookings start pending.")
    cancellation_window_hours: int | None = Field(
        default=None, ge=0, le=8760, description="Cancelling later than this before the start is late."
    )
    late_cancel_fee: Amount | None = None
    no_show_fee: Amount | None = None
    fee_currency: CurrencyCode | None = Field(default=None, description="Null: the workspace currency.")
    fee_tax_rate: Percent | None = Field(default=None, description='e.g. "21"')


class BookingSettingsPublic(Schema):
    min_notice_minutes: int
    max_advance_days: int
    slot_step_minutes: int
    requires_confirmation: bool
    cancellation_window_hours: int
    late_cancel_fee: int = Field(description="Minor units of currency; 0 = none.")
    no_show_fee: int = Field(description="Minor units of currency; 0 = none.")
    currency: str = Field(description="Of the fees.")
    fee_tax_rate: str
    saved: bool = Field(description="False: the defaults, never changed.")
    updated_at: datetime | None


async def _public(ctx: ToolContext, found: BookingSettings, saved: bool) -> BookingSettingsPublic:
    return BookingSettingsPublic(
        **{name: getattr(found, name) for name in FIELDS if name != "fee_currency"},
        currency=found.fee_currency or (await ctx.db.workspace()).currency,
        saved=saved,
        updated_at=found.updated_at if saved else None,
    )


@tool(
    domain="bookings",
    title="Get booking settings",
    hints="R I",
    scope="bookings:read",
    route="GET /v1/booking-settings",
)
async def get_booking_settings(ctx: ToolContext, args: GetBookingSettingsInput) -> BookingSettingsPublic:
    """The booking rules: minimum notice, maximum advance, slot step, whether bookings need confirmation, the
    cancellation window and the late-cancel and no-show fees (with their currency)."""
    found = await ctx.db.first(ctx.db.select(BookingSettings))
    return await _public(ctx, found or await load_settings(ctx), found is not None)


@tool(
    domain="bookings",
    title="Update booking settings",
    hints="W I",
    scope="bookings:admin",
    route="PATCH /v1/booking-settings",
)
async def update_booking_settings(ctx: ToolContext, args: UpdateBookingSettingsInput) -> BookingSettingsPublic:
    """Change booking rules; fields left out stay, fee_currency null means the workspace currency. Applies to new
    bookings, cancellations and no-shows from now on."""
    given = args.model_dump(exclude_unset=True, exclude={"idempotency_key"})
    if "fee_tax_rate" in given:
        given["fee_tax_rate"] = str(args.fee_tax_rate)
    defaults = await load_settings(ctx)
    saved, changed = await ctx.db.save_settings(
        BookingSettings, {name: getattr(defaults, name) for name in FIELDS}, given, now=ctx.now
    )
    if changed:
        ctx.record_change(fields=changed)
    return await _public(ctx, saved, True)


TOOLS: list[ToolSpec] = [get_booking_settings, update_booking_settings]
