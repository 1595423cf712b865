"""End to end over MCP: an agent sells a membership and is paid through Stripe, on a real `favmcp serve --http`
process spoken to by the SDK's client, with Stripe played by a local server that speaks its API and signs its
events. On SQLite and Postgres.

The agent creates a plan, subscribes a customer (the first invoice), sends them a payment link (a Checkout
Session); the customer pays and Stripe's signed webhook records the payment; the agent refunds part of it (the
server's outbox asks Stripe, Stripe's event settles it) and reads it all back on the customer's profile; erasing the
customer keeps the invoice and the payment under a pseudonymous reference.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.servers import server_env
from tests.stripe_server import StripeServer
from tests.support import Owner, unique_email
from tests.test_e2e_mcp import http_server, ok, refused

SECRET_KEY = "sk_test_" + "e2eMoneyFlow0000" + "KEYS"
WEBHOOK_SECRET = "whsec_" + "e2emoneysigningsecret"


@pytest.fixture
def stripe() -> Iterator[StripeServer]:
    with StripeServer() as server:
        yield server


async def confirmed(client: Any, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """A confirm-gated call without elicitation: the preview and its token, then the call with the token."""
    gate = refused(await client.call_tool(tool, args), "confirmation_required")
    return ok(await client.call_tool(tool, {**args, "confirmation_token": gate["details"]["confirmation_token"]}))


async def until(check: Any, what: str) -> Any:
    """What check() finds once it finds something, polled for up to 20 s (the server works on its own time)."""
    for _ in range(200):
        if found := check():
            return found
        await anyio.sleep(0.1)
    raise AssertionError(f"waited 20 s for: {what}")


async def test_sell_a_membership_paid_online_refund_part_and_erase(
    database_url: str, tmp_path: Path, owner: Owner, stripe: StripeServer
) -> None:
    env = {
        **server_env(database_url, tmp_path),
        "FAVMCP_STRIPE_API_BASE": stripe.base,
        "FAVMCP_PUBLIC_URL": "https://studio.test",
    }
    async with (
        http_server(env, tmp_path / "server.log") as http,
        http.session("auto", key=owner.key) as agent,
        httpx.AsyncClient(base_url=http.base, timeout=30) as web,
    ):
        provider = {"provider": "stripe", "secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET}
        shown = ok(await agent.call_tool("update_workspace", {"payment_provider": provider}))
        assert SECRET_KEY not in json.dumps(shown), "the keys are write-only"

        customer = ok(await agent.call_tool("create_member", {"name": "Ann Buyer", "email": unique_email("buyer")}))
        plan = ok(
            await agent.call_tool(
                "create_plan", {"kind": "membership", "name": "Unlimited", "unit_amount": 4900, "interval": "month"}
            )
        )
        subscription = ok(
            await agent.call_tool("subscribe_member", {"member_id": customer["id"], "plan_id": plan["id"]})
        )
        invoice_id = subscription["latest_invoice_id"]
        invoice = ok(await agent.call_tool("get_invoice", {"invoice_id": invoice_id}))
        assert (invoice["status"], invoice["total"], invoice["currency"]) == ("open", 4900, "EUR")

        link = ok(await agent.call_tool("create_payment_link", {"invoice_id": invoice_id}))
        assert link["amount"] == 4900 and link["url"]
        session_id = link["url"].rsplit("/", 1)[1]
        checkout = stripe.sessions[session_id]
        assert checkout["metadata"]["invoice_id"] == invoice_id

        # The customer pays on Stripe's page: Stripe signs checkout.session.completed and posts it to the server.
        paid = await StripeServer.deliver(web, hook(owner), stripe.complete(session_id), WEBHOOK_SECRET)
        assert paid.status_code == 200, paid.text
        invoice = ok(await agent.call_tool("get_invoice", {"invoice_id": invoice_id}))
        assert (invoice["status"], invoice["amount_paid"], invoice["amount_remaining"]) == ("paid", 4900, 0)
        active = ok(await agent.call_tool("get_subscription", {"subscription_id": subscription["id"]}))
        assert active["status"] == "active"
        (payment,) = ok(await agent.call_tool("list_payments", {"invoice_id": invoice_id}))["items"]
        assert (payment["amount"], payment["status"]) == (4900, "succeeded")

        refund = await confirmed(
            agent, "refund_payment", {"payment_id": payment["id"], "amount": 1500, "idempotency_key": "e2e-refund-1"}
        )
        assert refund["status"] == "pending", "an online refund waits for Stripe"
        sent = await until(lambda: list(stripe.refunds), "the server's outbox asks Stripe for the refund")
        settled = await StripeServer.deliver(
            web, hook(owner), stripe.refund_event(sent[0], "succeeded"), WEBHOOK_SECRET
        )
        assert settled.status_code == 200, settled.text
        payment = ok(await agent.call_tool("get_payment", {"payment_id": payment["id"]}))
        assert (payment["status"], payment["amount_refunded"]) == ("partially_refunded", 1500)

        profile = ok(await agent.call_tool("get_member_profile", {"member_id": customer["id"]}))
        money = profile["money"]
        assert (money["currency"], money["lifetime_spend"], money["open_invoices"]) == ("EUR", 3400, [])
        assert [(s["id"], s["status"]) for s in money["subscriptions"]] == [(subscription["id"], "active")]

        erased = await confirmed(agent, "delete_member", {"member_id": customer["id"]})
        assert erased["status"] == "erased"
        kept = ok(await agent.call_tool("get_invoice", {"invoice_id": invoice_id}))
        assert kept["member_id"] == customer["id"] and kept["status"] == "paid"
        assert kept["bill_to_name"] is None and kept["bill_to_email"] is None
        payment = ok(await agent.call_tool("get_payment", {"payment_id": payment["id"]}))
        assert payment["member_id"] == customer["id"] and payment["amount_refunded"] == 1500
        assert "Ann Buyer" not in json.dumps(kept) + json.dumps(payment)


def hook(owner: Owner) -> str:
    return f"/hooks/stripe/{owner.workspace_id}"
