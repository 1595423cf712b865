"""End to end over MCP: a loyalty program run by an agent against a real `favmcp serve --http` process with the SDK's
client, on SQLite and Postgres, on the real clock.

A customer completes three visits (100 points each) and reaches Silver exactly at its threshold; an invoice paid
after that earns at Silver's multiplier; they redeem a free-service reward for a voucher code, which pays for a
visit's invoice once and is refused the second time; their profile, balance and ledger agree throughout.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.servers import server_env
from tests.support import Owner, unique_email
from tests.test_e2e_bookings import EVERY_DAY, iso, midday_zone
from tests.test_e2e_mcp import http_server, ok, refused

VISIT_POINTS = 100
SILVER_AT = 3 * VISIT_POINTS  # reached exactly by the third visit
CUT_PRICE = 3000


async def test_visits_payments_tier_reward_and_voucher_agree(database_url: str, tmp_path: Path, owner: Owner) -> None:
    now = datetime.now(UTC)
    async with (
        http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as http,
        http.session("auto", key=owner.key) as agent,
    ):

        async def tool(name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
            return ok(await agent.call_tool(name, args or {}))

        async def points_agree(member_id: str) -> int:
            """The profile, the balance and the ledger's sum say the same; returns it."""
            balance = await tool("get_points_balance", {"member_id": member_id})
            profile = await tool("get_member_profile", {"member_id": member_id})
            entries = (await tool("list_points_transactions", {"member_id": member_id, "limit": 100}))["items"]
            assert profile["loyalty"]["points"] == balance["points"] == sum(e["points"] for e in entries)
            assert profile["loyalty"]["tier_id"] == balance["tier"]["tier_id"]
            return int(balance["points"])

        await tool("update_workspace", {"timezone": midday_zone(now), "currency": "EUR"})
        await tool("set_business_hours", {"weekly": EVERY_DAY})
        await tool("update_booking_settings", {"min_notice_minutes": 0, "slot_step_minutes": 5})
        cut = await tool(
            "create_service",
            {"name": "Cut", "duration_minutes": 10, "unit_amount": CUT_PRICE, "staff_ids": [owner.user_id]},
        )
        program = await tool(
            "update_loyalty_program",
            {"earn_rules": [{"kind": "visit", "points": VISIT_POINTS}, {"kind": "spend", "points": 1,
                                                                        "currency": "EUR"}]},
        )  # fmt: skip
        assert program["saved"] and len(program["earn_rules"]) == 2
        silver = await tool(
            "create_membership_tier", {"name": "Silver", "threshold": SILVER_AT, "earn_multiplier": "2"}
        )
        await tool("create_membership_tier", {"name": "Gold", "threshold": 10_000, "earn_multiplier": "3"})
        ann = await tool("create_member", {"name": "Ann Loyal", "email": unique_email("ann")})

        # Three visits within the next hour, each checked in and completed: 100 points each, Silver on the third.
        start = (now + timedelta(minutes=10)).replace(second=0, microsecond=0)
        start -= timedelta(minutes=start.minute % 5)
        for visit in range(3):
            booking = await tool(
                "create_booking",
                {
                    "member_id": ann["id"],
                    "service_id": cut["id"],
                    "starts_at": iso(start + timedelta(minutes=15 * visit)),
                },
            )
            await tool("check_in_booking", {"booking_id": booking["id"]})
            done = await tool("complete_booking", {"booking_id": booking["id"]})
            assert done["status"] == "completed"
            again = await tool("complete_booking", {"booking_id": booking["id"]})  # a retry earns nothing more
            assert again["status"] == "completed"
            expected_tier = silver["id"] if visit == 2 else None
            assert (await tool("get_points_balance", {"member_id": ann["id"]}))["tier"]["tier_id"] == expected_tier
        assert await points_agree(ann["id"]) == SILVER_AT

        # An invoice of 45.99 EUR paid in cash: 45 points, doubled at Silver.
        line = {"description": "Products", "quantity": 1, "unit_amount": 4599, "tax_rate": "0"}
        invoice = await tool("create_invoice", {"member_id": ann["id"], "lines": [line]})
        await tool("finalize_invoice", {"invoice_id": invoice["id"]})
        await tool(
            "record_payment",
            {"invoice_id": invoice["id"], "amount": 4599, "method": "cash", "idempotency_key": f"e2e-{invoice['id']}"},
        )
        assert await points_agree(ann["id"]) == SILVER_AT + 90

        # A free cut for 250 points: a voucher code for Ann only, worth the service's price, used once.
        reward = await tool(
            "create_reward", {"name": "Free cut", "kind": "free_service", "service_id": cut["id"], "points_cost": 250}
        )
        voucher = await tool("redeem_reward", {"member_id": ann["id"], "reward_id": reward["id"]})
        assert (voucher["amount_off"], voucher["currency"], voucher["used"]) == (CUT_PRICE, "EUR", False)
        held = (await tool("get_points_balance", {"member_id": ann["id"]}))["vouchers"]
        assert [v["code"] for v in held] == [voucher["code"]]
        assert await points_agree(ann["id"]) == SILVER_AT + 90 - 250

        visit_line = {"description": "Cut", "quantity": 1, "unit_amount": CUT_PRICE, "tax_rate": "0"}
        free = await tool(
            "create_invoice", {"member_id": ann["id"], "lines": [visit_line], "promotion_code": voucher["code"]}
        )
        assert free["total"] == 0 and free["promotion_code"] == voucher["code"]
        await tool("finalize_invoice", {"invoice_id": free["id"]})
        reused = refused(
            await agent.call_tool(
                "create_invoice", {"member_id": ann["id"], "lines": [visit_line], "promotion_code": voucher["code"]}
            ),
            "conflict",
        )
        assert reused["details"]["reason"] == "customer_limit_reached"
        assert (await tool("get_points_balance", {"member_id": ann["id"]}))["vouchers"] == [], "a used one is gone"
        kinds = [e["kind"] for e in (await tool("list_points_transactions", {"member_id": ann["id"]}))["items"]]
        assert sorted(kinds) == ["earn", "earn", "earn", "earn", "redeem"]
        assert await points_agree(ann["id"]) == SILVER_AT + 90 - 250
        profile = await tool("get_member_profile", {"member_id": ann["id"]})
        assert profile["loyalty"]["tier_name"] == "Silver" and profile["loyalty"]["manual"] is False
