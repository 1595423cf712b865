"""The staff calendar feed (issue 10): a private iCalendar URL per staff member, fetched over real HTTP from a
server on the loopback interface, parsed strictly (RFC 5545 lines, folding, nesting); a wrong token, a rotated
URL, a deactivated or unknown person answer 404. SQLite and Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import httpx
import uvicorn

from favmcp.app import App
from favmcp.domains.bookings.calendar import feed_token
from favmcp.transports.http import build_http_app
from tests.servers import free_port
from tests.support import FakeClock, Owner, call, confirmed, join
from tests.test_bookings import at, ok, studio


@asynccontextmanager
async def served(app: App) -> AsyncIterator[str]:
    """The app's HTTP face on a loopback port of its own (uvicorn, as `favmcp serve --http` runs it)."""
    port = free_port()
    config = uvicorn.Config(
        build_http_app(app, run_dispatcher=False), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started, "the server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def parse_ics(raw: bytes) -> list[dict[str, Any]]:
    """A strict reading of the feed: CRLF lines of at most 75 octets, continuation lines unfolded, every BEGIN
    closed by its END; returns the calendar and each event as {name: value} (text values unescaped)."""
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b""), "CRLF line endings only"
    physical = raw[:-2].split(b"\r\n")
    assert all(len(line) <= 75 for line in physical), "folded at 75 octets"
    lines: list[str] = []
    for line in physical:
        if line.startswith(b" "):
            assert lines, "a continuation line needs a line to continue"
            lines[-1] += line[1:].decode()
        else:
            lines.append(line.decode())
    stack: list[str] = []
    components: list[dict[str, Any]] = []
    for line in lines:
        name, sep, value = line.partition(":")
        assert sep and name and name == name.upper(), line
        if name == "BEGIN":
            stack.append(value)
            components.append({"_type": value})
        elif name == "END":
            assert stack and stack.pop() == value, line
        else:
            assert stack, "a property outside any component"
            text = value.replace("\\n", "\n").replace("\\,", ",").replace("\\;", ";").replace("\\\\", "\\")
            current = next(c for c in reversed(components) if c["_type"] == stack[-1])
            current[name] = text
    assert not stack, "every component closed"
    assert components[0]["_type"] == "VCALENDAR" and components[0]["VERSION"] == "2.0"
    assert "PRODID" in components[0]
    return components


def utc(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def feed_url(app: App, key: str, user_id: str, clock: FakeClock) -> str | None:
    day = at(clock, 0)[:10]
    shown = await call(app, key, "get_staff_schedule", {"user_id": user_id, "from_date": day, "to_date": day})
    assert shown.ok, shown.data
    url: str | None = shown.data["calendar_feed_url"]
    return url


async def test_a_staff_members_feed_lists_their_bookings(app: App, owner: Owner, clock: FakeClock) -> None:
    service = await studio(app, owner)
    one, two = await join(app, owner), await join(app, owner)
    await ok(app, owner, "assign_staff_to_service", {"service_id": service, "staff_ids": [one.user_id, two.user_id]})
    ann = (await ok(app, owner, "create_member", {"name": "Ann Marie Lee", "email": "ann@x.example"}))["id"]
    bo = (await ok(app, owner, "create_member", {"name": "Bo, the; Builder", "email": "bo@x.example"}))["id"]
    made = {}
    for name, member, staff, day in (("ann", ann, one, 1), ("bo", bo, one, 2), ("theirs", ann, two, 3)):
        args = {"member_id": member, "service_id": service, "starts_at": at(clock, day), "staff_id": staff.user_id}
        made[name] = await ok(app, owner, "create_booking", args)
    far = {"member_id": bo, "service_id": service, "starts_at": at(clock, 4), "staff_id": one.user_id}
    gone = await ok(app, owner, "create_booking", far)
    cancelled = await confirmed(app, owner.key, "cancel_booking", {"booking_id": gone["id"], "reason": "ill"})
    if not cancelled.ok:  # cancel_booking may not be confirm-gated
        cancelled = await call(app, owner.key, "cancel_booking", {"booking_id": gone["id"], "reason": "ill"})
    assert cancelled.ok, cancelled.data

    # the URL: for the person themselves and for team admins; another staff member gets null
    mine = await feed_url(app, one.key, one.user_id, clock)
    assert mine is not None and mine == await feed_url(app, owner.key, one.user_id, clock)
    assert await feed_url(app, two.key, one.user_id, clock) is None
    path = urlparse(mine).path
    assert path.startswith(f"/calendar/{one.user_id}/") and path.endswith(".ics")

    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        got = await http.get(path)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"].startswith("text/calendar")
        calendar, *events = parse_ics(got.content)
        assert calendar["X-WR-CALNAME"].endswith(": Sofia")  # the workspace and the person
        by_uid = {e["UID"]: e for e in events}
        assert set(by_uid) == {f"{made['ann']['id']}@favmcp", f"{made['bo']['id']}@favmcp"}, "theirs, active only"
        ann_event = by_uid[f"{made['ann']['id']}@favmcp"]
        assert ann_event["SUMMARY"] == "Massage: Ann" and ann_event["STATUS"] == "CONFIRMED"
        assert utc(ann_event["DTSTART"]) == iso(made["ann"]["starts_at"])
        assert utc(ann_event["DTEND"]) == iso(made["ann"]["ends_at"])
        assert by_uid[f"{made['bo']['id']}@favmcp"]["SUMMARY"] == "Massage: Bo,", "first name only, escaped"
        assert "Lee" not in got.text and "@x.example" not in got.text, "no surname or contact leaves favmcp"

        # wrong tokens, someone else's path, an unknown person: 404, the same
        wrong = path.rsplit("/", 1)[0] + "/" + "A" * 43 + ".ics"
        other = path.replace(one.user_id, two.user_id)
        unknown = path.replace(one.user_id, "usr_" + "0" * 26)
        for bad in (wrong, other, unknown, path[:-4], path + "x"):
            assert (await http.get(bad)).status_code == 404, bad

        # an older server secret still opens the feed (the server's secret was rotated since it was handed out)
        old = feed_token(b"an-older-secret", owner.workspace_id, one.user_id, 1)
        app.settings.secret_keys = (*app.settings.secret_keys, b"an-older-secret")
        assert (await http.get(f"/calendar/{one.user_id}/{old}.ics")).status_code == 200

        # rotation: the old URL 404s, the new one answers; the hours stay
        await ok(
            app, owner, "set_staff_working_hours",
            {"user_id": one.user_id, "weekly": {"mon": [{"open": "09:00", "close": "17:00"}]}},
        )  # fmt: skip
        rotate = {"user_id": one.user_id, "rotate_calendar_feed": True}
        rotated = await ok(app, owner, "set_staff_working_hours", rotate)
        assert rotated["weekly"] == {"mon": [{"open": "09:00", "close": "17:00"}]}
        new = rotated["calendar_feed_url"]
        assert new and new != mine and new == await feed_url(app, one.key, one.user_id, clock)
        assert (await http.get(path)).status_code == 404
        assert (await http.get(urlparse(new).path)).status_code == 200
        assert (await ok(app, owner, "set_staff_working_hours", {"user_id": one.user_id, "weekly": {}}))[
            "calendar_feed_url"
        ] is None, "setting hours alone does not rotate"
        assert (await http.get(urlparse(new).path)).status_code == 200

        # the window: a booking more than 30 days past leaves the feed
        clock.advance(days=40)
        _, *later = parse_ics((await http.get(urlparse(new).path)).content)
        assert later == []

        # a deactivated person's feed is gone
        assert (await confirmed(app, owner.key, "deactivate_team_member", {"user_id": one.user_id})).ok
        assert (await http.get(urlparse(new).path)).status_code == 404
        assert await feed_url(app, owner.key, one.user_id, clock) is None


async def test_rotation_needs_hours_or_the_flag(app: App, owner: Owner) -> None:
    one = await join(app, owner)
    missing = await call(app, owner.key, "set_staff_working_hours", {"user_id": one.user_id})
    assert missing.data["error"]["code"] == "validation_failed"
    rotate = {"user_id": one.user_id, "rotate_calendar_feed": True}
    assert (await call(app, one.key, "set_staff_working_hours", rotate)).data["error"]["code"] == "forbidden"
    fresh = await ok(app, owner, "set_staff_working_hours", rotate)
    assert fresh["weekly"] == {} and fresh["updated_at"] is None and fresh["calendar_feed_url"]
