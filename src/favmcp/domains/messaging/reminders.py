"""Booking reminders: a transactional template sent a set time before each confirmed booking, once.

A channel takes part when its settings hold `reminders: {template_id, hours_before}`. Every 5 minutes the job
queues a reminder for each confirmed booking starting within (now, now + hours_before] on that channel, keyed
`reminder:{booking_id}:{channel}:{start}` so that a second run, or a second worker, queues none again. A customer
the rules refuse (no consent, opted out, no address, erased) is skipped, and tried again on the next run while the
booking is ahead. A booking cancelled before its reminder left takes the reminder with it; a rescheduled one too,
and the next run reminds of the new time."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from favmcp.core.clock import utc
from favmcp.core.contact import Channel
from favmcp.core.errors import FavError
from favmcp.core.events import DomainEvent
from favmcp.domains.bookings.events import BookingCancelled, BookingRescheduled
from favmcp.domains.bookings.models import Booking, BookingStatus
from favmcp.domains.members.models import Member
from favmcp.domains.messaging import sending, status
from favmcp.domains.messaging.models import ChannelConfig, Message, MessageStatus, MessageTemplate
from favmcp.domains.services.models import Service
from favmcp.effects.approvals import SendKind
from favmcp.effects.models import OutboxMessage, OutboxStatus
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Job, Subscriber

EVERY = timedelta(minutes=5)
REMINDER = "reminder:"  # the dedupe keys of reminders
BATCH = 500  # bookings per channel and run; the rest wait for the next run
MAX_HOURS_BEFORE = 24 * 14
# What a reminder template may declare, filled from the booking (name and first_name come from the member).
BOOKING_VARIABLES = frozenset({"service", "date", "time", "business"})


def dedupe_key(booking: Booking, channel: str) -> str:
    """One reminder per booking, channel and start time: a rescheduled booking is reminded of its new time."""
    return f"{REMINDER}{booking.id}:{channel}:{int(utc(booking.starts_at).timestamp())}"


def reminder_setting(config: ChannelConfig) -> tuple[str, timedelta] | None:
    """(template id, how long before the start) when the channel sends reminders."""
    stored = config.settings.get("reminders")
    if not isinstance(stored, dict) or not stored.get("template_id"):
        return None
    try:
        hours = float(stored.get("hours_before", 24))
    except (TypeError, ValueError):
        return None
    if not 0 < hours <= MAX_HOURS_BEFORE:
        return None
    return str(stored["template_id"]), timedelta(hours=hours)


def booking_values(
    template: MessageTemplate, booking: Booking, service: Service | None, business: str, tz: ZoneInfo
) -> dict[str, str]:
    local = booking.starts_at.astimezone(tz)
    known = {
        "service": service.name if service else "",
        "date": local.strftime("%A %d %B %Y").replace(" 0", " "),
        "time": local.strftime("%H:%M"),
        "business": business,
    }
    return {name: known[name] for name in template.variables if name in known}


async def _due(ctx: ToolContext, channel: Channel, ahead: timedelta) -> list[Booking]:
    """Confirmed bookings starting within (now, now + ahead] with no reminder on this channel yet. The query
    leaves out those reminded since their last change (through the customer's messages, which are indexed), so a
    batch is not filled with bookings done already; the exact key then decides."""
    reminded_since_change = ctx.db.exists(
        Message,
        col(Message.member_id) == col(Booking.member_id),
        col(Message.booking_id) == col(Booking.id),
        col(Message.channel) == channel,
        col(Message.dedupe_key).startswith(REMINDER),
        col(Message.created_at) > col(Booking.updated_at),
    )
    stmt = ctx.db.select(
        Booking,
        col(Booking.status) == BookingStatus.confirmed,
        col(Booking.starts_at) > ctx.now,
        col(Booking.starts_at) <= ctx.now + ahead,
        ~reminded_since_change,
    )
    bookings = await ctx.db.all(stmt.order_by(col(Booking.starts_at), col(Booking.id)).limit(BATCH))
    if not bookings:
        return []
    keys = [dedupe_key(b, channel.value) for b in bookings]
    done = await ctx.db.all(ctx.db.select(Message, col(Message.dedupe_key).in_(keys)))
    reminded = {m.dedupe_key for m in done}
    return [b for b in bookings if dedupe_key(b, channel.value) not in reminded]


async def send_reminders(ctx: ToolContext) -> None:
    """The job: queue the reminders that are due on every channel that sends them."""
    workspace = await ctx.db.workspace()
    tz = ZoneInfo(workspace.timezone)
    queued, skipped = 0, Counter[str]()
    for config in await ctx.db.all(ctx.db.select(ChannelConfig).order_by(col(ChannelConfig.channel))):
        setting = reminder_setting(config)
        if setting is None:
            continue
        template_id, ahead = setting
        template = await ctx.db.get(MessageTemplate, template_id)
        bookings = await _due(ctx, config.channel, ahead)
        if not bookings:
            continue
        if template is None or template.channel != config.channel:
            skipped["template_missing"] += len(bookings)
            continue
        if template.kind is not SendKind.transactional:  # a reminder never carries marketing past its rules
            skipped["template_not_transactional"] += len(bookings)
            continue
        services = {
            s.id: s
            for s in await ctx.db.all(ctx.db.select(Service, col(Service.id).in_({b.service_id for b in bookings})))
        }
        people = {
            m.id: m
            for m in await ctx.db.all(ctx.db.select(Member, col(Member.id).in_({b.member_id for b in bookings})))
        }
        for booking in bookings:
            member = people.get(booking.member_id)
            if member is None:
                continue
            out = sending.Outgoing(
                member=member,
                channel=config.channel,
                kind=SendKind.transactional,
                template=template,
                variables=booking_values(template, booking, services.get(booking.service_id), workspace.name, tz),
                booking_id=booking.id,
                dedupe_key=dedupe_key(booking, config.channel.value),
            )
            try:
                async with ctx.db.savepoint():
                    await sending.queue(ctx, out)
            except FavError as refused:  # a rule refused it: skipped, and looked at again next run
                skipped[str((refused.body.details or {}).get("rule") or refused.code.value)] += 1
            except IntegrityError:  # another run queued it first
                skipped["already_queued"] += 1
            else:
                queued += 1
    if queued or skipped:
        ctx.record_change(reminders_queued=queued, reminders_skipped=dict(sorted(skipped.items())))


async def stop_reminders(ctx: ToolContext, event: BookingCancelled | BookingRescheduled) -> None:
    """A booking cancelled or moved before its reminder left: the reminder is cancelled and its outbox row
    stopped (a moved booking is reminded of its new time by the next run)."""
    whole = ctx.unfiltered()  # a staff member's cancel stops the reminder whoever can see it
    db = whole.db
    stopped = await status.advance(
        whole,
        MessageStatus.cancelled,
        col(Message.booking_id) == event.booking_id,
        col(Message.dedupe_key).startswith(REMINDER),
        at=ctx.now,
    )
    if not stopped:
        return
    rows = await db.all(db.select(Message, col(Message.id).in_(stopped)))
    outbox_ids = [m.outbox_id for m in rows if m.outbox_id]
    if outbox_ids:
        await db.update(
            OutboxMessage,
            col(OutboxMessage.id).in_(outbox_ids),
            col(OutboxMessage.status) == OutboxStatus.pending,
            values={
                "status": OutboxStatus.failed,
                "last_error": f"cancelled: the booking was {event.name.split('.')[-1]}",
            },
        )
    ctx.record_change(reminders_cancelled=stopped)


SUBSCRIBERS: dict[type[DomainEvent], list[Subscriber]] = {
    BookingCancelled: [stop_reminders],
    BookingRescheduled: [stop_reminders],
}
JOBS: list[Job] = [Job("booking_reminders", EVERY, send_reminders)]
