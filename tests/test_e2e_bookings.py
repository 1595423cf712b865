"""End to end over MCP: the seed's booking app, run by an agent against a real `favmcp serve --http` process with the
SDK's client, on SQLite and Postgres, on the real clock.

The agent reads the services and the free slots, finds a returning customer by email, books a class full and puts
the next customer on its waitlist; a seat freed by a cancellation promotes them; a late cancellation of an
appointment lands as a fee line on the customer's draft invoice; a no-show after the start adds the no-show fee;
and get_booking_stats agrees with list_bookings.

The workspace's timezone is chosen so that the local time is near midday when the test runs (a fixed UTC offset,
Etc/GMT-N), so that appointments starting within the next hour never cross the end of the opening day.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio

from tests.servers import server_env
from tests.support import Owner, unique_email
from tests.test_e2e_mcp import http_server, ok, refused

LATE_FEE = 1500
NO_SHOW_FEE = 2000
EVERY_DAY = {day: [{"open": "00:00", "close": "24:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def midday_zone(now: datetime) -> str:
    """A fixed-offset IANA zone in which it is about noon now (Etc/GMT signs are inverted: Etc/GMT-3 is UTC+3)."""
    offset = 12 - now.hour  # hours to add to UTC: -11 .. +12, all valid Etc/GMT zones
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def confirmed(client: Any, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """A confirm-gated call without elicitation: the preview and its token, then the call with the token."""
    gate = refused(await client.call_tool(tool, args), "confirmation_required")
    return ok(await client.call_tool(tool, {**args, "confirmation_token": gate["details"]["confirmation_token"]}))


async def test_the_booking_app_from_services_to_stats(database_url: str, tmp_path: Path, owner: Owner) -> None:
    now = datetime.now(UTC)
    async with (
        http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as http,
        http.session("auto", key=owner.key) as agent,
    ):

        async def tool(name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
            return ok(await agent.call_tool(name, args or {}))

        await tool("update_workspace", {"timezone": midday_zone(now), "currency": "EUR"})
        await tool("set_business_hours", {"weekly": EVERY_DAY})
        await tool(
            "update_booking_settings",
            {"min_notice_minutes": 0, "slot_step_minutes": 5, "cancellation_window_hours": 24,
             "late_cancel_fee": LATE_FEE, "no_show_fee": NO_SHOW_FEE},
        )  # fmt: skip
        massage = await tool(
            "create_service",
            {"name": "Massage", "duration_minutes": 30, "unit_amount": 6000, "staff_ids": [owner.user_id]},
        )
        yoga = await tool(
            "create_service",
            {"name": "Yoga", "duration_minutes": 60, "unit_amount": 1500, "capacity": 2, "staff_ids": [owner.user_id]},
        )

        # The front end lists the services and the free slots of the next days.
        services = {s["name"]: s for s in (await tool("list_services"))["items"]}
        assert services["Massage"]["staff_ids"] == [owner.user_id] and services["Yoga"]["capacity"] == 2
        assert (await tool("get_workspace"))["timezone"] == midday_zone(now)
        local_today = now.astimezone(ZoneInfo(midday_zone(now))).date()
        slots = await tool(
            "get_available_slots",
            {"service_id": massage["id"], "from_date": local_today.isoformat(),
             "to_date": (local_today + timedelta(days=6)).isoformat(), "limit": 100},
        )  # fmt: skip
        assert slots["items"] and all(s["staff_user_id"] == owner.user_id for s in slots["items"])

        # A returning customer, found by email; two more customers.
        ann_email = unique_email("ann")
        ann = await tool("create_member", {"name": "Ann Regular", "email": ann_email})
        found = (await tool("search_members", {"text": ann_email}))["items"]
        assert [m["id"] for m in found] == [ann["id"]]
        bo = await tool("create_member", {"name": "Bo Second", "email": unique_email("bo")})
        cy = await tool("create_member", {"name": "Cy Third", "email": unique_email("cy")})

        # A class booked full; the next customer waits; a seat freed (early: no fee) promotes them.
        in_three_days = (now + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
        scheduled = await tool(
            "schedule_class_session",
            {"service_id": yoga["id"], "staff_id": owner.user_id, "starts_at": iso(in_three_days)},
        )
        session_id = scheduled["sessions"][0]["id"]
        seat = {"service_id": yoga["id"], "class_session_id": session_id}
        await tool("create_booking", {"member_id": ann["id"], **seat})
        bo_seat = await tool("create_booking", {"member_id": bo["id"], **seat})
        full = refused(await agent.call_tool("create_booking", {"member_id": cy["id"], **seat}), "conflict")
        assert full["details"]["reason"] == "full"
        waiting = await tool("join_waitlist", {"member_id": cy["id"], "class_session_id": session_id})
        assert waiting["position"] == 1
        cancelled = await confirmed(agent, "cancel_booking", {"booking_id": bo_seat["id"]})
        assert cancelled["status"] == "cancelled" and cancelled["fee_amount"] is None
        roster = await tool("get_class_roster", {"class_session_id": session_id})
        seated = {a["member_id"] for a in roster["attendees"] if a["status"] == "confirmed"}
        assert seated == {ann["id"], cy["id"]} and roster["waitlist"] == []

        # A late cancellation (inside the 24-hour window) is charged once, on a draft invoice.
        soon = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
        appointment = await tool(
            "create_booking", {"member_id": ann["id"], "service_id": massage["id"], "starts_at": iso(soon)}
        )
        late = await confirmed(agent, "cancel_booking", {"booking_id": appointment["id"], "reason": "ill"})
        assert (late["late_cancel"], late["fee_amount"]) == (True, LATE_FEE)
        invoice = await tool("get_invoice", {"invoice_id": late["fee_invoice_id"]})
        assert invoice["status"] == "draft" and invoice["member_id"] == ann["id"]
        assert [line["unit_amount"] for line in invoice["lines"]] == [LATE_FEE]

        # A no-show is possible only once the booking has started; then the fee lands on the same kind of draft.
        starts = datetime.now(UTC) + timedelta(seconds=3)
        missed = await tool(
            "create_booking", {"member_id": bo["id"], "service_id": massage["id"], "starts_at": iso(starts)}
        )
        early = refused(await agent.call_tool("mark_no_show", {"booking_id": missed["id"]}), "invalid_state")
        assert early["details"]["reason"] == "not_started"
        await anyio.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()) + 0.5)
        no_show = await tool("mark_no_show", {"booking_id": missed["id"]})
        assert (no_show["status"], no_show["fee_amount"]) == ("no_show", NO_SHOW_FEE)
        bo_invoice = await tool("get_invoice", {"invoice_id": no_show["fee_invoice_id"]})
        assert bo_invoice["member_id"] == bo["id"] and bo_invoice["total"] == NO_SHOW_FEE

        # The stats agree with the list they summarise.
        window = {"from_date": local_today.isoformat(), "to_date": (local_today + timedelta(days=6)).isoformat()}
        stats = await tool("get_booking_stats", window)
        listed = await tool(
            "list_bookings", {"starts_from": stats["starts_from"], "starts_to": stats["starts_to"], "limit": 100}
        )
        assert not listed["has_more"]
        counted = Counter(b["status"] for b in listed["items"])
        assert {k: v for k, v in stats["by_status"].items() if v} == dict(counted)
        assert stats["total"] == len(listed["items"]) == 5
        assert stats["no_show_rate"] == "100.0"  # one no-show, nothing completed
