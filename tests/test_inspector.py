"""The errors a real MCP client shows: the pinned MCP Inspector CLI (a TypeScript SDK client) against `favmcp serve
--http`, on SQLite and Postgres, in the handshake era and the 2026-07-28 era.

The TypeScript SDK checks structuredContent against a tool's outputSchema even on isError results; an error
carried there would reach the person as a schema complaint ("data must have required property ...") instead of
our code, hint and field errors. These tests read what the Inspector prints.

The Inspector is installed once per machine into the user cache directory (a session fixture), so its download
counts against no test's timeout. Without Node.js and npm the tests are skipped, unless FAVMCP_REQUIRE_NODE=1 (CI),
which makes that a failure.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import platformdirs
import pytest

from favmcp.app import App
from tests.npm_build import node_and_npm
from tests.servers import HttpServer, http_server, server_env
from tests.support import Owner, call

INSPECTOR = "@modelcontextprotocol/inspector"
VERSION = "2.12.0"
INSTALL_TIMEOUT = 600.0
CALL_TIMEOUT = 60.0
TOOL_ERROR_EXIT = 5  # the Inspector's exit code for a result with isError: true
ERAS = ("legacy", "modern")
SCHEMA_COMPLAINT = "must have required property"


@pytest.fixture(scope="session")
def inspector() -> list[str]:
    """The command that runs the pinned Inspector."""
    node, npm = node_and_npm("to run the MCP Inspector")
    target = platformdirs.user_cache_path("favmcp") / "test-tools" / f"inspector-{VERSION}"
    if not target.is_dir():
        # Installed beside the target and renamed into place: the rename is atomic, so a directory at the target is
        # always a whole installation, also when pytest-xdist workers install at the same time.
        staging = target.with_name(f".{target.name}-{uuid.uuid4().hex}")
        install = [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund", "--ignore-scripts"]
        done = subprocess.run(
            [*install, f"{INSPECTOR}@{VERSION}"], capture_output=True, text=True, timeout=INSTALL_TIMEOUT
        )
        assert done.returncode == 0, f"npm install failed:\n{done.stdout}\n{done.stderr}"
        try:
            staging.rename(target)
        except OSError:  # another worker's installation got there first
            shutil.rmtree(staging)
    package = target / "node_modules" / INSPECTOR
    entry = json.loads((package / "package.json").read_text())["bin"]["mcp-inspector"]
    return [node, str(package / entry)]


@dataclass
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def transcript(self) -> str:
        shown = " ".join(a if " " not in a else f"'{a}'" for a in self.argv[2:])  # after node and the script
        return f"$ mcp-inspector {shown}\n[exit {self.returncode}]\n{self.stdout}{self.stderr}"


class Inspector:
    def __init__(self, command: list[str], server: HttpServer, home: Path) -> None:
        self.command = command
        self.server = server
        self.home = home  # the Inspector keeps its catalog and storage under $HOME
        self.runs: list[Run] = []

    async def call(self, era: str, key: str, tool: str, **args: str) -> Run:
        argv = [
            *self.command, "--cli", self.server.url, "--transport", "http", "--protocol-era", era,
            "--format", "json", "--header", f"Authorization: Bearer {key}",
            "--method", "tools/call", "--tool-name", tool,
        ]  # fmt: skip
        for name, value in args.items():
            argv += ["--tool-arg", f"{name}={value}"]  # a value that is not JSON is passed as a string
        env = {**os.environ, "HOME": str(self.home)}
        with anyio.fail_after(CALL_TIMEOUT):
            done = await anyio.run_process(argv, env=env, check=False)
        run = Run(argv, done.returncode, done.stdout.decode(), done.stderr.decode())
        self.runs.append(run)
        return run


def result_of(run: Run) -> dict[str, Any]:
    assert SCHEMA_COMPLAINT not in run.stdout + run.stderr, run.transcript()
    printed = json.loads(run.stdout)
    assert "result" in printed, run.transcript()
    return dict(printed["result"])


def refusal(run: Run, code: str) -> dict[str, Any]:
    """The error object as the Inspector shows it: the one text block, repeated in _meta; no structuredContent."""
    result = result_of(run)
    assert run.returncode == TOOL_ERROR_EXIT and result["isError"] is True, run.transcript()
    assert "structuredContent" not in result, run.transcript()
    [block] = result["content"]
    error = json.loads(block["text"])
    assert result["_meta"]["favmcp/error"] == error, run.transcript()
    assert error["code"] == code and error["message"] and error["request_id"], run.transcript()
    return dict(error)


async def test_inspector_shows_our_errors_not_a_schema_complaint(
    inspector: list[str], database_url: str, tmp_path: Path, app: App, owner: Owner
) -> None:
    spare = await call(app, owner.key, "create_api_key", {"name": "inspected"})
    assert spare.ok, spare.data
    spare_id = spare.data["key"]["id"]
    (tmp_path / "inspector").mkdir()
    async with http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as server:
        client = Inspector(inspector, server, tmp_path / "inspector")
        try:
            for era in ERAS:
                wrong = "fav_mcp_wrong" + "x" * 36
                refusal(await client.call(era, wrong, "get_workspace"), "unauthenticated")

                lookup = await client.call(era, owner.key, "get_member_profile", member_id="mem_nope")
                missing = refusal(lookup, "not_found")
                assert "mem_nope" in missing["message"] and missing["hint"]

                bad = await client.call(era, owner.key, "create_member", name="Ann", email="not-an-email")
                invalid = refusal(bad, "validation_failed")
                assert [f["field"] for f in invalid["field_errors"]] == ["email"], invalid

                preview = await client.call(era, owner.key, "revoke_api_key", key_id=spare_id)
                gate = refusal(preview, "confirmation_required")
                assert gate["details"]["preview"]["key"]["id"] == spare_id
                token = gate["details"]["confirmation_token"]
                assert isinstance(token, str) and token

            # The token travels back through the Inspector's --tool-arg intact and the gate lets the call through.
            args = {"key_id": spare_id, "confirmation_token": token}
            done = await client.call("modern", owner.key, "revoke_api_key", **args)
            revoked = result_of(done)
            assert done.returncode == 0 and not revoked.get("isError"), done.transcript()
            assert revoked["structuredContent"]["status"] == "revoked", done.transcript()
        finally:
            print("\n\n".join(run.transcript() for run in client.runs))  # shown by pytest -rP, or on failure


async def test_inspector_accepts_the_money_answers_against_their_output_schemas(
    inspector: list[str], database_url: str, tmp_path: Path, app: App, owner: Owner
) -> None:
    """The Inspector's client checks structuredContent against each tool's outputSchema as listed: the nested,
    nullable answers of the money domains pass it whole."""
    made = await call(app, owner.key, "create_member", {"name": "Ann Buyer", "email": "ann.inspected@example.com"})
    member_id = made.data["id"]
    line = {"description": "Massage", "quantity": 2, "unit_amount": 4500, "tax_rate": "21"}
    invoice = await call(app, owner.key, "create_invoice", {"member_id": member_id, "lines": [line]})
    assert (await call(app, owner.key, "finalize_invoice", {"invoice_id": invoice.data["id"]})).ok
    paid = {"invoice_id": invoice.data["id"], "amount": 5000, "method": "cash", "idempotency_key": "inspected"}
    payment = await call(app, owner.key, "record_payment", paid)
    plan = {"kind": "pack", "name": "Ten classes", "unit_amount": 12000, "credits": 10, "validity_days": 90}
    pack = await call(app, owner.key, "create_plan", plan)
    subscribed = await call(app, owner.key, "subscribe_member", {"member_id": member_id, "plan_id": pack.data["id"]})
    assert payment.ok and subscribed.ok, (payment.data, subscribed.data)
    (tmp_path / "inspector").mkdir()
    async with http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as server:
        client = Inspector(inspector, server, tmp_path / "inspector")
        try:
            for tool, args in [
                ("get_invoice", {"invoice_id": invoice.data["id"]}),
                ("get_payment", {"payment_id": payment.data["id"]}),
                ("get_subscription", {"subscription_id": subscribed.data["id"]}),
                ("get_member_profile", {"member_id": member_id}),
                ("list_overdue_invoices", {}),
            ]:
                run = await client.call("modern", owner.key, tool, **args)
                shown = result_of(run)
                assert run.returncode == 0 and not shown.get("isError"), run.transcript()
                assert shown["structuredContent"], run.transcript()
            profile = result_of(client.runs[3])["structuredContent"]
            owed = sorted(i["amount_remaining"] for i in profile["money"]["open_invoices"])
            assert owed == [10890 - 5000, 12000], "the part-paid invoice and the pack's first invoice"
        finally:
            print("\n\n".join(run.transcript() for run in client.runs))


async def test_inspector_accepts_the_bookings_answers_and_shows_their_refusals(
    inspector: list[str], database_url: str, tmp_path: Path, app: App, owner: Owner
) -> None:
    """The bookings domains' answers (slots, a booking with its history, a roster, stats, a profile with upcoming
    bookings) pass the Inspector's outputSchema check whole, and a refused booking reaches it as our error."""
    week = {day: [{"open": "00:00", "close": "24:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    assert (await call(app, owner.key, "set_business_hours", {"weekly": week})).ok
    staff = {"staff_ids": [owner.user_id]}
    massage = await call(app, owner.key, "create_service", {"name": "Massage", "duration_minutes": 60,
                                                            "unit_amount": 6000, **staff})  # fmt: skip
    yoga = await call(app, owner.key, "create_service", {"name": "Yoga", "duration_minutes": 60, "unit_amount": 1500,
                                                         "capacity": 2, **staff})  # fmt: skip
    member = await call(app, owner.key, "create_member", {"name": "Ann Booked", "email": "ann.booked@example.com"})
    day = (app.runner.clock.now() + timedelta(days=2)).date()
    appointment = {"member_id": member.data["id"], "service_id": massage.data["id"], "starts_at": f"{day}T09:00:00Z"}
    booking = await call(app, owner.key, "create_booking", appointment)
    session = await call(app, owner.key, "schedule_class_session", {"service_id": yoga.data["id"],
                         "staff_id": owner.user_id, "starts_at": f"{day}T18:00:00Z"})  # fmt: skip
    assert booking.ok and session.ok, (booking.data, session.data)
    session_id = session.data["sessions"][0]["id"]
    (tmp_path / "inspector").mkdir()
    async with http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as server:
        client = Inspector(inspector, server, tmp_path / "inspector")
        try:
            for tool, args in [
                ("get_available_slots", {"service_id": massage.data["id"], "from_date": str(day), "to_date": str(day)}),
                ("get_booking_detail", {"booking_id": booking.data["id"]}),
                ("get_class_roster", {"class_session_id": session_id}),
                ("get_booking_stats", {"from_date": str(day), "to_date": str(day)}),
                ("get_member_profile", {"member_id": member.data["id"]}),
            ]:
                run = await client.call("modern", owner.key, tool, **args)
                shown = result_of(run)
                assert run.returncode == 0 and not shown.get("isError"), run.transcript()
                assert shown["structuredContent"], run.transcript()
            profile = result_of(client.runs[4])["structuredContent"]
            assert [b["id"] for b in profile["upcoming_bookings"]] == [booking.data["id"]]
            clash = await client.call("modern", owner.key, "create_booking", **{**appointment, "member_id":
                                      member.data["id"]})  # fmt: skip
            refused = result_of(clash)
            assert refused.get("isError"), clash.transcript()
            error = json.loads(refused["content"][0]["text"])
            assert error["code"] == "conflict" and error["details"]["reason"] in ("staff_busy", "customer_busy")
        finally:
            print("\n\n".join(run.transcript() for run in client.runs))


async def test_inspector_accepts_the_loyalty_answers_and_shows_their_refusals(
    inspector: list[str], database_url: str, tmp_path: Path, app: App, owner: Owner
) -> None:
    """The loyalty and tiers answers (the program, a balance with tier progress, the ledger, the rewards, a voucher,
    the ladder, a profile with points) pass the Inspector's outputSchema check whole, and a redemption beyond the
    balance reaches it as our error."""

    async def made(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        result = await call(app, owner.key, tool, args)
        assert result.ok, (tool, result.data)
        return result.data

    await made("update_loyalty_program", {"earn_rules": [{"kind": "visit", "points": 50}], "expiry_days": 90})
    await made("create_membership_tier", {"name": "Silver", "threshold": 100, "earn_multiplier": "1.5"})
    member = await made("create_member", {"name": "Ann Loyal", "email": "ann.loyal@example.com"})
    await made("earn_loyalty_points", {"member_id": member["id"], "points": 300, "reason": "welcome"})
    reward = await made("create_reward", {"name": "Ten off", "kind": "discount", "percent_off": "10",
                                          "points_cost": 100, "stock": 3})  # fmt: skip
    (tmp_path / "inspector").mkdir()
    async with http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as server:
        client = Inspector(inspector, server, tmp_path / "inspector")
        try:
            for tool, args in [
                ("get_loyalty_program", {}),
                ("redeem_reward", {"member_id": member["id"], "reward_id": reward["id"]}),
                ("get_points_balance", {"member_id": member["id"]}),
                ("list_points_transactions", {"member_id": member["id"]}),
                ("list_rewards", {}),
                ("list_membership_tiers", {}),
                ("get_member_profile", {"member_id": member["id"]}),
            ]:
                run = await client.call("modern", owner.key, tool, **args)
                shown = result_of(run)
                assert run.returncode == 0 and not shown.get("isError"), run.transcript()
                assert shown["structuredContent"], run.transcript()
            balance = result_of(client.runs[2])["structuredContent"]
            assert balance["points"] == 200 and balance["tier"]["tier_name"] == "Silver"
            beyond = await client.call(
                "modern", owner.key, "redeem_loyalty_points", member_id=member["id"], points="500"
            )
            error = refusal(beyond, "conflict")
            assert error["details"]["reason"] == "insufficient_points"
        finally:
            print("\n\n".join(run.transcript() for run in client.runs))


async def test_inspector_accepts_the_content_and_report_answers_with_a_chart(
    inspector: list[str], database_url: str, tmp_path: Path, app: App, owner: Owner
) -> None:
    """A post, the posts list and the reports pass the Inspector's outputSchema check whole; a report asked for a
    chart reaches it with its structured data and a PNG image block."""
    blocks = [{"type": "heading", "text": "Spring", "level": 2}, {"type": "paragraph", "text": "New classes."}]
    post = await call(app, owner.key, "create_post", {"title": "Spring timetable", "blocks": blocks})
    assert post.ok, post.data
    assert (await call(app, owner.key, "publish_post", {"post_id": post.data["id"]})).ok
    day = app.runner.clock.now().date()
    period = {"from_date": str(day - timedelta(days=30)), "to_date": str(day)}
    (tmp_path / "inspector").mkdir()
    async with http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as server:
        client = Inspector(inspector, server, tmp_path / "inspector")
        try:
            for tool, args in [
                ("get_post", {"post_id": post.data["id"]}),
                ("list_posts", {}),
                ("get_dashboard_stats", period),
                ("no_show_report", period),
                ("membership_report", period),
                ("inactive_members_report", {"days": "30"}),
                ("revenue_report", {**period, "group_by": "week", "chart": "true"}),
            ]:
                run = await client.call("modern", owner.key, tool, **args)
                shown = result_of(run)
                assert run.returncode == 0 and not shown.get("isError"), run.transcript()
                assert shown["structuredContent"], run.transcript()
            charted = result_of(client.runs[-1])
            [picture] = [block for block in charted["content"] if block["type"] == "image"]
            assert picture["mimeType"] == "image/png"
            assert base64.b64decode(picture["data"]).startswith(b"\x89PNG\r\n\x1a\n")
        finally:
            print("\n\n".join(run.transcript() for run in client.runs))


async def test_inspector_accepts_the_messaging_answers_and_shows_a_rule_refusal(
    inspector: list[str], database_url: str, tmp_path: Path, app: App, owner: Owner
) -> None:
    """Channels, templates, a send waiting for approval, messages, a conversation, a campaign with its audience and
    statistics, webhook endpoints and deliveries pass the Inspector's outputSchema check whole; a WhatsApp free
    text outside the 24-hour window reaches it as our conflict naming the rule."""

    async def made(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        result = await call(app, owner.key, tool, args)
        assert result.ok, (tool, result.data)
        return result.data

    app.settings.allow_private_targets = True
    twilio = {"account_sid": "AC" + "0" * 32, "auth_token": "inspector-token", "from_number": "+15005550006"}
    # Quiet hours off: this test runs on the real clock, at any hour.
    await made("configure_channel", {"channel": "sms", "quiet_hours": None, **twilio})
    whatsapp = {"phone_number_id": "1234567890", "waba_id": "987654321", "access_token": "EAAG-inspector",
                "app_secret": "inspector-secret", "verify_token": "inspector-verify",
                "from_number": "+15550001111"}  # fmt: skip
    await made("configure_channel", {"channel": "whatsapp", "quiet_hours": None, **whatsapp})
    member = await made("create_member", {"name": "Ann Message", "phone": "+31612345678"})
    for channel in ("sms", "whatsapp"):
        consent = {"member_id": member["id"], "channel": channel, "granted": True, "source": "front desk"}
        await made("set_marketing_consent", consent)
    hello = await made(
        "create_message_template",
        {"channel": "sms", "name": "hello", "kind": "marketing", "body": "Hi {{first_name}}, see you soon!",
         "variables": ["first_name"]},
    )  # fmt: skip
    campaign = await made("create_campaign", {"name": "Hello all", "channel": "sms", "template_id": hello["id"]})
    await made("create_webhook_endpoint", {"url": "http://127.0.0.1:9/hook", "events": ["*"]})
    await made("add_member_note", {"member_id": member["id"], "body": "prefers SMS"})  # an event, delivered
    (tmp_path / "inspector").mkdir()
    async with http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as server:
        client = Inspector(inspector, server, tmp_path / "inspector")
        try:
            for tool, args in [
                ("get_channel_status", {}),
                ("list_message_templates", {}),
                ("send_message", {"member_id": member["id"], "channel": "sms", "template_id": hello["id"]}),
                ("list_messages", {}),
                ("get_conversation", {"member_id": member["id"]}),
                ("get_campaign", {"campaign_id": campaign["id"]}),
                ("preview_campaign_audience", {"campaign_id": campaign["id"]}),
                ("get_campaign_stats", {"campaign_id": campaign["id"]}),
                ("list_campaigns", {}),
                ("list_webhook_endpoints", {}),
                ("list_webhook_deliveries", {}),
            ]:
                run = await client.call("modern", owner.key, tool, **args)
                shown = result_of(run)
                assert run.returncode == 0 and not shown.get("isError"), run.transcript()
                assert shown["structuredContent"], run.transcript()
            assert result_of(client.runs[2])["structuredContent"]["status"] == "pending_approval"
            assert result_of(client.runs[6])["structuredContent"]["count"] == 1
            outside = await client.call(
                "modern", owner.key, "send_message", member_id=member["id"], channel="whatsapp", text="Hi!"
            )
            error = refusal(outside, "conflict")
            assert error["details"]["rule"] == "outside_whatsapp_window"
        finally:
            print("\n\n".join(run.transcript() for run in client.runs))


async def test_inspector_lists_at_most_40_tools_plus_discovery_at_the_front_desk_profile(
    inspector: list[str], database_url: str, tmp_path: Path, app: App, owner: Owner
) -> None:
    """A client that caps its tools connects to /mcp/p/front_desk with a key and sees that profile's tools only."""
    (tmp_path / "inspector").mkdir()
    async with http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as server:
        argv = [
            *inspector, "--cli", f"{server.base}/mcp/p/front_desk", "--transport", "http", "--format", "json",
            "--header", f"Authorization: Bearer {owner.key}", "--method", "tools/list",
        ]  # fmt: skip
        with anyio.fail_after(CALL_TIMEOUT):
            done = await anyio.run_process(argv, env={**os.environ, "HOME": str(tmp_path / "inspector")}, check=False)
        run = Run(argv, done.returncode, done.stdout.decode(), done.stderr.decode())
        assert run.returncode == 0, run.transcript()
        printed = json.loads(run.stdout)
        names = {t["name"] for t in printed.get("result", printed)["tools"]}
        discovery = {"whoami", "search_tools", "describe_tool"}
        assert discovery <= names and len(names - discovery) <= 40, run.transcript()
        assert "create_booking" in names and "create_invoice" not in names, sorted(names)
