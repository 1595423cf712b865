"""A staff member's bookings outside favmcp: what they are committed to (for their schedule and time off), and a
private iCalendar (RFC 5545) feed of their appointments and classes for their own calendar app.

The feed's URL is `/calendar/{user_id}/{token}.ics`, the token an HMAC-SHA256 under the server secret over the
workspace, the user and the feed's generation; nothing secret is stored, so the URL can be shown again to those
allowed, and rotating (bumping the generation) retires the old URL. Any of the server's secrets, the older ones
too, is accepted: rotating the server secret does not break the feeds people subscribed to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import col

from favmcp.auth.models import User, UserStatus
from favmcp.core.clock import utc
from favmcp.db.scoped import WorkspaceDB
from favmcp.domains.bookings.models import ACTIVE, Booking, BookingStatus, CalendarFeed
from favmcp.domains.classes.models import ClassSession, SessionStatus
from favmcp.domains.members.models import Member
from favmcp.domains.services.models import Service
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Commitment, HttpEndpoint

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from favmcp.registry.runner import Runner

PATH = "/calendar/{user_id}/{token}.ics"
NAME = "calendar:feed"
FEED_PAST = timedelta(days=30)
FEED_AHEAD = timedelta(days=180)
# Appointments that hold the staff member's time (a pending request included: the slot is theirs until declined).
COMMITTED = (BookingStatus.pending, BookingStatus.confirmed, BookingStatus.checked_in)
SHOWN = (*ACTIVE, BookingStatus.completed)
ICS_STATUS = {BookingStatus.pending: "TENTATIVE"}


# What a staff member is committed to


async def staff_commitments(db: WorkspaceDB, user_id: str, starts_at: datetime, ends_at: datetime) -> list[Commitment]:
    """The person's appointments (pending, confirmed or checked in) overlapping [starts_at, ends_at), as `db` sees
    them; class sessions are the classes domain's to declare."""
    stmt = (
        db.select_columns(Booking, Booking, col(Service.name))
        .join(Service, col(Service.id) == col(Booking.service_id))
        .where(
            db.owns(Service),
            col(Booking.staff_user_id) == user_id,
            col(Booking.class_session_id).is_(None),
            col(Booking.status).in_(COMMITTED),
            col(Booking.starts_at) < ends_at,
            col(Booking.ends_at) > starts_at,
        )
        .order_by(col(Booking.starts_at), col(Booking.id))
    )
    return [
        Commitment(
            kind="booking",
            id=b.id,
            starts_at=b.starts_at,
            ends_at=b.ends_at,
            summary=f"{name} ({b.status.value})",
        )
        for b, name in await db.rows(stmt)
    ]


# The feed's URL


def feed_token(secret: bytes, workspace_id: str, user_id: str, generation: int) -> str:
    mac = hmac.new(secret, "\x1f".join(("calendar", workspace_id, user_id, str(generation))).encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


async def generation_of(db: WorkspaceDB, user_id: str) -> int:
    feed = await db.unfiltered.first(db.unfiltered.select(CalendarFeed, col(CalendarFeed.user_id) == user_id))
    return feed.generation if feed is not None else 1


def feed_url(ctx: ToolContext, user_id: str, generation: int) -> str:
    """Under FAVMCP_PUBLIC_URL; a path on this server when it is not set."""
    token = feed_token(ctx.settings.secret_key, ctx.workspace_id, user_id, generation)
    return (ctx.settings.public_url or "") + PATH.format(user_id=user_id, token=token)


async def current_feed_url(ctx: ToolContext, user_id: str) -> str:
    return feed_url(ctx, user_id, await generation_of(ctx.db, user_id))


async def rotate_feed(ctx: ToolContext, user_id: str) -> str:
    """Retire the person's feed URL and answer the new one. Call it with the person's user row locked."""
    generation = await generation_of(ctx.db, user_id) + 1
    await ctx.db.upsert(
        CalendarFeed,
        {"user_id": user_id, "generation": generation, "rotated_at": ctx.now},
        key=["user_id"],
        changes=["generation", "rotated_at"],
    )
    return feed_url(ctx, user_id, generation)


# The feed itself


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    """Lines of at most 75 octets, continued with CRLF and a space (RFC 5545 3.1), never splitting a character."""
    out: list[str] = []
    current = b""
    for ch in line:
        encoded = ch.encode()
        if len(current) + len(encoded) > (75 if not out else 74):
            out.append(current.decode())
            current = b""
        current += encoded
    out.append(current.decode())
    return "\r\n ".join(out)


def _stamp(moment: datetime) -> str:
    return utc(moment).strftime("%Y%m%dT%H%M%SZ")


def _event(uid: str, starts_at: datetime, ends_at: datetime, summary: str, status: str, now: datetime) -> list[str]:
    return [
        "BEGIN:VEVENT",
        f"UID:{uid}@favmcp",
        f"DTSTAMP:{_stamp(now)}",
        f"DTSTART:{_stamp(starts_at)}",
        f"DTEND:{_stamp(ends_at)}",
        f"SUMMARY:{_escape(summary)}",
        f"STATUS:{status}",
        "END:VEVENT",
    ]


def _first_name(name: str) -> str:
    parts = name.split()
    return parts[0] if parts else ""


async def render_feed(ctx: ToolContext, user: User) -> str:
    """The person's appointments (active or completed) and class sessions from 30 days ago to 180 days ahead.
    Only the service and the customer's first name are shown: a calendar app is outside favmcp's care."""
    db = ctx.db.unfiltered
    start, end = ctx.now - FEED_PAST, ctx.now + FEED_AHEAD
    appointments = await db.rows(
        db.select_columns(Booking, Booking, col(Service.name), col(Member.name))
        .join(Service, col(Service.id) == col(Booking.service_id))
        .join(Member, col(Member.id) == col(Booking.member_id))
        .where(
            db.owns(Service),
            db.owns(Member),
            col(Booking.staff_user_id) == user.id,
            col(Booking.class_session_id).is_(None),
            col(Booking.status).in_(SHOWN),
            col(Booking.starts_at) < end,
            col(Booking.ends_at) > start,
        )
        .order_by(col(Booking.starts_at), col(Booking.id))
    )
    sessions = await db.rows(
        db.select_columns(ClassSession, ClassSession, col(Service.name))
        .join(Service, col(Service.id) == col(ClassSession.service_id))
        .where(
            db.owns(Service),
            col(ClassSession.staff_user_id) == user.id,
            col(ClassSession.status) == SessionStatus.scheduled,
            col(ClassSession.starts_at) < end,
            col(ClassSession.ends_at) > start,
        )
        .order_by(col(ClassSession.starts_at), col(ClassSession.id))
    )
    ws = await db.workspace()
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//favmcp//bookings//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_escape(f'{ws.name}: {user.name}')}",
    ]
    for b, service, customer in appointments:
        summary = f"{service}: {_first_name(customer)}".rstrip(": ")
        lines += _event(b.id, b.starts_at, b.ends_at, summary, ICS_STATUS.get(b.status, "CONFIRMED"), ctx.now)
    for s, service in sessions:
        summary = f"{service} (class, {s.booked}/{s.capacity} booked)"
        lines += _event(s.id, s.starts_at, s.ends_at, summary, "CONFIRMED", ctx.now)
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)


async def _workspace_of(runner: Runner, user_id: str) -> str | None:
    """The workspace of the person the URL names, before any workspace-bound access can be had: one indexed read,
    the kind the credential check of every call makes (the token is checked next, in that workspace)."""
    row = await runner.db.fetch_row("SELECT workspace_id FROM users WHERE id = $1", user_id)
    return str(row[0]) if row is not None else None


async def calendar_feed(request: Request, runner: Runner) -> Response:
    from starlette.responses import PlainTextResponse, Response  # served over HTTP only

    user_id = str(request.path_params.get("user_id", ""))[:40]
    token = str(request.path_params.get("token", ""))[:100]
    workspace_id = await _workspace_of(runner, user_id) if user_id else None
    if workspace_id is None:
        return PlainTextResponse("Not found", status_code=404)

    async def read(ctx: ToolContext) -> str | None:
        user = await ctx.db.get(User, user_id)
        if user is None or user.status != UserStatus.active:
            return None
        generation = await generation_of(ctx.db, user.id)
        expected = [feed_token(k, workspace_id, user.id, generation) for k in ctx.settings.secret_keys]
        if not any(hmac.compare_digest(token.encode(), e.encode()) for e in expected):
            return None
        return await render_feed(ctx, user)

    body = await runner.read_system(workspace_id, NAME, read)
    if body is None:
        return PlainTextResponse("Not found", status_code=404)
    headers: dict[str, Any] = {"Cache-Control": "private, max-age=300"}
    return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)


ROUTES: dict[str, HttpEndpoint] = {f"GET {PATH}": calendar_feed}
