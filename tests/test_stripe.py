"""Stripe for real, against a local server that speaks its API (tests/stripe_server.py): keys per workspace, payment
links (Checkout Sessions), the signed webhook, refunds through the outbox, and reconciliation from the events list.
On SQLite and Postgres; nothing reaches the internet."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from favmcp.app import App
from favmcp.db.tenancy import Workspace
from favmcp.domains.payments import stripe_sync
from favmcp.domains.payments.models import Payment, ProviderEvent
from favmcp.effects.models import OutboxMessage, OutboxStatus
from favmcp.effects.outbox import open_body, open_html
from favmcp.registry.jobs import Scheduler
from favmcp.transports.http import build_http_app
from tests.stripe_server import StripeServer, sign
from tests.support import FakeClock, Owner, call, confirmed, error_code, make_settings, signup
from tests.test_payments import key, ok, open_invoice, record

SECRET_KEY = "sk_test_" + "a1b2c3d4e5f6g7h8" + "WXYZ"
WEBHOOK_SECRET = "whsec_" + "localtestsigningsecret"


@pytest.fixture
def stripe() -> Iterator[StripeServer]:
    with StripeServer() as server:
        yield server


@pytest.fixture
async def app(own_url: str, tmp_path: Path, clock: FakeClock, stripe: StripeServer) -> AsyncIterator[App]:
    """A database of its own: the tests run the outbox's dispatcher, which delivers every workspace's rows."""
    settings = make_settings(tmp_path, own_url, stripe_api_base=stripe.base, public_url="https://studio.test")
    application = await App.open(settings, clock=clock, upgrade=True)
    yield application
    await application.close()


@pytest.fixture
async def owner(app: App) -> Owner:
    made = await signup(app)
    await ok(
        app, made, "update_workspace",
        {"payment_provider": {"provider": "stripe", "secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET}},
    )  # fmt: skip
    return made


@pytest.fixture
async def web(app: App) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_http_app(app, run_dispatcher=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        yield client


def hook(owner: Owner) -> str:
    return f"/hooks/stripe/{owner.workspace_id}"


async def link_for(app: App, owner: Owner, invoice_id: str) -> dict[str, Any]:
    return await ok(app, owner, "create_payment_link", {"invoice_id": invoice_id, "idempotency_key": key()})


async def paid_online(
    app: App, owner: Owner, stripe: StripeServer, web: httpx.AsyncClient, amount: int = 10000
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An invoice paid in full through a payment link and the signed webhook; returns (invoice, payment)."""
    inv = await open_invoice(app, owner, amount)
    link = await link_for(app, owner, inv["id"])
    session_id = link["url"].rsplit("/", 1)[1]
    answer = await stripe.deliver(web, hook(owner), stripe.complete(session_id), WEBHOOK_SECRET)
    assert answer.status_code == 200, answer.text
    payments = await ok(app, owner, "list_payments", {"invoice_id": inv["id"]})
    assert len(payments["items"]) == 1
    return inv, payments["items"][0]


async def payments_of(app: App, invoice_id: str) -> list[Payment]:
    async with app.db.transaction() as session:
        return list((await session.execute(select(Payment).where(col(Payment.invoice_id) == invoice_id))).scalars())


async def reconcile(app: App, owner: Owner) -> None:
    """One run of the reconciliation job for the workspace, as the worker runs it: fetch, then apply."""
    name = "job:stripe_reconcile"
    events = await app.runner.read_system(owner.workspace_id, name, stripe_sync.fetch_events)
    await app.runner.run_system(owner.workspace_id, name, stripe_sync.reconcile, events)


# -- keys ------------------------------------------------------------------------------------------------------


async def test_keys_are_write_only_and_sealed(app: App, owner: Owner) -> None:
    shown = await ok(app, owner, "get_workspace")
    assert shown["payment_provider"] == {
        "provider": "stripe", "key_last4": "WXYZ", "livemode": False, "webhook_configured": True,
    }  # fmt: skip
    assert SECRET_KEY not in repr(shown) and WEBHOOK_SECRET not in repr(shown)
    async with app.db.transaction() as session:
        stored = (await session.execute(select(Workspace).where(col(Workspace.id) == owner.workspace_id))).scalar_one()
    assert stored.payment_provider and SECRET_KEY not in stored.payment_provider
    assert WEBHOOK_SECRET not in stored.payment_provider
    bad = await call(app, owner.key, "update_workspace", {"payment_provider": {"secret_key": "pk_test_notsecret1"}})
    assert error_code(bad) == "validation_failed"
    cleared = await ok(app, owner, "update_workspace", {"payment_provider": None})
    assert cleared["payment_provider"] is None
    refused = await call(app, owner.key, "create_payment_link", {"invoice_id": "inv_x"})
    assert error_code(refused) == "invalid_state"
    assert refused.data["error"]["details"]["reason"] == "provider_not_configured"


# -- payment links ---------------------------------------------------------------------------------------------


async def test_a_payment_link_is_a_checkout_session_for_what_remains(
    app: App, owner: Owner, stripe: StripeServer
) -> None:
    inv = await open_invoice(app, owner, 10000)
    await record(app, owner, 2500, invoice_id=inv["id"])
    args = {"invoice_id": inv["id"], "idempotency_key": "link-1"}
    link = await ok(app, owner, "create_payment_link", args)
    assert (link["amount"], link["currency"], link["status"]) == (7500, "EUR", "open")
    assert link["url"].startswith(stripe.base)
    [sent] = stripe.requests_to("/v1/checkout/sessions")
    form = sent.form
    assert form["mode"] == "payment"
    assert form["metadata"] == {"workspace_id": owner.workspace_id, "invoice_id": inv["id"]}
    assert form["payment_intent_data"]["metadata"] == form["metadata"]
    price = form["line_items"][0]["price_data"]
    assert (price["currency"], price["unit_amount"], form["line_items"][0]["quantity"]) == ("eur", "7500", "1")
    assert datetime.fromisoformat(link["expires_at"]) == datetime.fromtimestamp(int(form["expires_at"]), UTC)
    assert form["success_url"].startswith("https://studio.test/")
    assert sent.idempotency_key and sent.idempotency_key.startswith("favmcp-link-")
    assert sent.headers["authorization"] == f"Bearer {SECRET_KEY}"
    # The same call again: the open link, without asking Stripe for another.
    again = await ok(app, owner, "create_payment_link", {"invoice_id": inv["id"], "idempotency_key": key()})
    assert again["id"] == link["id"] and len(stripe.requests_to("/v1/checkout/sessions")) == 1
    # Once less remains, a link for the new amount.
    await record(app, owner, 500, invoice_id=inv["id"])
    smaller = await ok(app, owner, "create_payment_link", {"invoice_id": inv["id"], "idempotency_key": key()})
    assert smaller["amount"] == 7000 and smaller["id"] != link["id"]


async def test_the_pages_stripe_sends_the_customer_back_to_are_served(
    app: App, owner: Owner, stripe: StripeServer, web: httpx.AsyncClient
) -> None:
    inv = await open_invoice(app, owner, 2000)
    await link_for(app, owner, inv["id"])
    [sent] = stripe.requests_to("/v1/checkout/sessions")
    for url, words in ((sent.form["success_url"], "payment was received"), (sent.form["cancel_url"], "cancelled")):
        assert url.startswith("https://studio.test/")
        page = await web.get(url.removeprefix("https://studio.test").replace("{CHECKOUT_SESSION_ID}", "cs_test_1"))
        assert page.status_code == 200 and words in page.text, page.text


async def test_an_invoice_email_says_where_to_pay_online(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner, 2000)
    await ok(app, owner, "send_invoice", {"invoice_id": inv["id"]})
    link = await link_for(app, owner, inv["id"])
    await ok(app, owner, "send_invoice", {"invoice_id": inv["id"]})
    async with app.db.transaction() as session:
        rows = (await session.execute(select(OutboxMessage).where(col(OutboxMessage.channel) == "email"))).scalars()
        sent = [m for m in rows if m.workspace_id == owner.workspace_id and inv["number"] in m.subject]
    before, after = sorted(sent, key=lambda m: m.id)
    assert link["url"] not in open_body(app.settings, before), "no link was made yet"
    assert f"Pay online: {link['url']}" in open_body(app.settings, after)
    assert link["url"] in str(open_html(app.settings, after))


async def test_stripe_counts_isk_in_hundredths_and_kwd_in_tens(
    app: App, owner: Owner, stripe: StripeServer, web: httpx.AsyncClient
) -> None:
    """ISK has no minor unit in ISO 4217 but two decimals in Stripe's API: 5,000 kr. is 500000 there, both ways."""
    await ok(app, owner, "update_workspace", {"currency": "ISK"})
    inv = await open_invoice(app, owner, 5000)
    assert inv["currency"] == "ISK"
    link = await link_for(app, owner, inv["id"])
    [sent] = stripe.requests_to("/v1/checkout/sessions")
    assert sent.form["line_items"][0]["price_data"]["unit_amount"] == "500000" and link["amount"] == 5000
    session_id = link["url"].rsplit("/", 1)[1]
    assert (await stripe.deliver(web, hook(owner), stripe.complete(session_id), WEBHOOK_SECRET)).status_code == 200
    paid = await ok(app, owner, "get_invoice", {"invoice_id": inv["id"]})
    assert (paid["status"], paid["amount_paid"]) == ("paid", 5000)
    [payment] = (await ok(app, owner, "list_payments", {"invoice_id": inv["id"]}))["items"]
    assert (payment["amount"], payment["currency"]) == (5000, "ISK")
    made = await confirmed(
        app, owner.key, "refund_payment", {"payment_id": payment["id"], "amount": 1200, "idempotency_key": key()}
    )
    assert made.ok, made.data
    await app.dispatcher.run_once()
    [refund] = stripe.requests_to("/v1/refunds")
    assert refund.form["amount"] == "120000"

    await ok(app, owner, "update_workspace", {"currency": "KWD"})
    odd = await open_invoice(app, owner, 12345)  # 12.345 KWD: Stripe settles KWD in tens of fils only
    refused = await call(app, owner.key, "create_payment_link", {"invoice_id": odd["id"], "idempotency_key": key()})
    assert refused.data["error"]["details"]["reason"] == "provider_amount", refused.data


async def test_concurrent_link_requests_make_one_session(app: App, owner: Owner, stripe: StripeServer) -> None:
    inv = await open_invoice(app, owner, 3000)
    links = await asyncio.gather(*[link_for(app, owner, inv["id"]) for _ in range(10)])
    assert len({link["id"] for link in links}) == 1
    # Asked before any of them held the invoice's lock, Stripe got the same Idempotency-Key from each: one session.
    assert len({r.idempotency_key for r in stripe.requests_to("/v1/checkout/sessions")}) == 1
    assert len(stripe.sessions) == 1


# -- the webhook -----------------------------------------------------------------------------------------------


async def test_an_event_delivered_three_times_records_one_payment(
    app: App, owner: Owner, stripe: StripeServer, web: httpx.AsyncClient
) -> None:
    inv = await open_invoice(app, owner, 10000)
    link = await link_for(app, owner, inv["id"])
    event = stripe.complete(link["url"].rsplit("/", 1)[1], email="payer@example.com")
    answers = [await stripe.deliver(web, hook(owner), event, WEBHOOK_SECRET) for _ in range(3)]
    answers += await asyncio.gather(*[stripe.deliver(web, hook(owner), event, WEBHOOK_SECRET) for _ in range(5)])
    assert [a.status_code for a in answers] == [200] * 8
    assert [a.json()["applied"] for a in answers].count(True) == 1
    [payment] = await payments_of(app, inv["id"])
    assert (payment.amount, payment.method, payment.status, payment.payer_email) == (
        10000, "online", "succeeded", "payer@example.com",
    )  # fmt: skip
    assert payment.provider_payment_id == stripe.sessions[payment.provider_ref or ""]["payment_intent"]
    after = await ok(app, owner, "get_invoice", {"invoice_id": inv["id"]})
    assert (after["status"], after["amount_paid"]) == ("paid", 10000)
    paid = await call(app, owner.key, "create_payment_link", {"invoice_id": inv["id"], "idempotency_key": key()})
    assert error_code(paid) == "invalid_state"


async def test_bad_signatures_are_refused_and_change_nothing(
    app: App, owner: Owner, stripe: StripeServer, web: httpx.AsyncClient
) -> None:
    inv = await open_invoice(app, owner, 10000)
    link = await link_for(app, owner, inv["id"])
    event = stripe.complete(link["url"].rsplit("/", 1)[1])
    forged = await stripe.deliver(web, hook(owner), event, "whsec_" + "notthesecret123")
    stale = await stripe.deliver(web, hook(owner), event, WEBHOOK_SECRET, timestamp=int(time.time()) - 301)
    garbage = await stripe.deliver(web, hook(owner), event, WEBHOOK_SECRET, signature="t=1,v1=00")
    other = await stripe.deliver(web, "/hooks/stripe/ws_nope", event, WEBHOOK_SECRET)
    assert [r.status_code for r in (forged, stale, garbage, other)] == [400] * 4
    assert await payments_of(app, inv["id"]) == []
    async with app.db.transaction() as session:
        seen = (await session.execute(select(ProviderEvent).where(col(ProviderEvent.event_id) == event["id"]))).all()
    assert seen == []
    unsigned = await web.post(hook(owner), content=b"{}", headers={"content-type": "application/json"})
    assert unsigned.status_code == 400
    good = await stripe.deliver(web, hook(owner), event, WEBHOOK_SECRET)
    assert good.status_code == 200 and len(await payments_of(app, inv["id"])) == 1


async def test_money_received_after_the_invoice_was_paid_otherwise_stays_unapplied(
    app: App, owner: Owner, stripe: StripeServer, web: httpx.AsyncClient
) -> None:
    inv = await open_invoice(app, owner, 10000)
    link = await link_for(app, owner, inv["id"])
    await record(app, owner, 10000, invoice_id=inv["id"])  # paid at the desk meanwhile
    event = stripe.complete(link["url"].rsplit("/", 1)[1])
    assert (await stripe.deliver(web, hook(owner), event, WEBHOOK_SECRET)).status_code == 200
    online = [
        p
        for p in (await ok(app, owner, "list_payments", {"invoice_id": inv["id"]}))["items"]
        if p["method"] == "online"
    ]
    assert [(p["amount"], p["amount_unapplied"]) for p in online] == [(10000, 10000)]
    assert (await ok(app, owner, "get_invoice", {"invoice_id": inv["id"]}))["amount_paid"] == 10000


# -- refunds through the outbox --------------------------------------------------------------------------------


async def test_an_online_refund_goes_through_the_outbox_and_settles_on_its_event(
    app: App, owner: Owner, stripe: StripeServer, web: httpx.AsyncClient
) -> None:
    inv, payment = await paid_online(app, owner, stripe, web)
    made = await confirmed(
        app, owner.key, "refund_payment", {"payment_id": payment["id"], "amount": 3000, "idempotency_key": key()}
    )
    assert made.ok and made.data["status"] == "pending"
    assert stripe.requests_to("/v1/refunds") == []  # nothing leaves before the commit, and then by the dispatcher
    held = await ok(app, owner, "get_payment", {"payment_id": payment["id"]})
    assert (held["status"], held["amount_refundable"]) == ("succeeded", 7000)
    assert await app.dispatcher.run_once() >= 1
    [sent] = stripe.requests_to("/v1/refunds")
    async with app.db.transaction() as session:
        row = (await session.execute(select(OutboxMessage).where(col(OutboxMessage.channel) == "stripe"))).scalars()
        message = next(m for m in row if m.workspace_id == owner.workspace_id)
    assert sent.idempotency_key == message.id and message.status == OutboxStatus.sent
    assert SECRET_KEY not in open_body(app.settings, message), "the outbox keeps no copy of a key"
    assert sent.headers["authorization"] == f"Bearer {SECRET_KEY}", "the workspace's key, read at delivery"
    assert sent.form["amount"] == "3000"
    assert sent.form["payment_intent"] == (await payments_of(app, inv["id"]))[0].provider_payment_id
    assert sent.form["metadata"]["refund_id"] == made.data["id"]
    stripe_refund = next(iter(stripe.refunds))
    # Out of order: the success comes first, the creation (pending) after it; neither is applied twice.
    done = stripe.refund_event(stripe_refund, "succeeded")
    created = stripe.event(
        "refund.created", {**done["data"]["object"], "status": "pending"}, created=done["created"] - 5
    )
    for event in (done, created, done):
        assert (await stripe.deliver(web, hook(owner), event, WEBHOOK_SECRET)).status_code == 200
    refunded = await ok(app, owner, "get_payment", {"payment_id": payment["id"]})
    assert (refunded["status"], refunded["amount_refunded"], refunded["amount_refundable"]) == (
        "partially_refunded", 3000, 7000,
    )  # fmt: skip
    assert [r["status"] for r in refunded["refunds"]] == ["succeeded"]
    assert (await ok(app, owner, "get_invoice", {"invoice_id": inv["id"]}))["amount_refunded"] == 3000


async def test_a_failed_refund_does_not_use_up_the_refundable_amount(
    app: App, owner: Owner, stripe: StripeServer, web: httpx.AsyncClient
) -> None:
    _, payment = await paid_online(app, owner, stripe, web)
    made = await confirmed(app, owner.key, "refund_payment", {"payment_id": payment["id"], "idempotency_key": key()})
    assert made.ok and made.data["amount"] == 10000
    again = await call(app, owner.key, "refund_payment", {"payment_id": payment["id"], "idempotency_key": key()})
    assert error_code(again) == "conflict"  # all of it is held by the pending refund
    await app.dispatcher.run_once()
    failed = stripe.refund_event(next(iter(stripe.refunds)), "failed", kind="refund.failed")
    assert (await stripe.deliver(web, hook(owner), failed, WEBHOOK_SECRET)).status_code == 200
    after = await ok(app, owner, "get_payment", {"payment_id": payment["id"]})
    assert (after["status"], after["amount_refundable"], after["refunds"][0]["status"]) == (
        "succeeded", 10000, "failed",
    )  # fmt: skip
    assert after["refunds"][0]["failure_reason"] == "expired_or_canceled_card"
    late = stripe.refund_event(next(iter(stripe.refunds)), "succeeded")  # a final state never moves
    await stripe.deliver(web, hook(owner), late, WEBHOOK_SECRET)
    assert (await ok(app, owner, "get_payment", {"payment_id": payment["id"]}))["amount_refunded"] == 0
    retry = await confirmed(
        app, owner.key, "refund_payment", {"payment_id": payment["id"], "amount": 10000, "idempotency_key": key()}
    )
    assert retry.ok and retry.data["status"] == "pending"


async def test_a_refund_stripe_refuses_fails_and_frees_its_amount(
    app: App, owner: Owner, stripe: StripeServer, web: httpx.AsyncClient
) -> None:
    _, payment = await paid_online(app, owner, stripe, web)
    stripe.refund_status = "error"
    await confirmed(
        app, owner.key, "refund_payment", {"payment_id": payment["id"], "amount": 4000, "idempotency_key": key()}
    )
    await app.dispatcher.run_once()
    async with app.db.transaction() as session:
        rows = (await session.execute(select(OutboxMessage).where(col(OutboxMessage.channel) == "stripe"))).scalars()
        [message] = [m for m in rows if m.workspace_id == owner.workspace_id]
    assert message.status == OutboxStatus.failed and message.attempts == 1  # refused for good: no retries
    await reconcile(app, owner)
    after = await ok(app, owner, "get_payment", {"payment_id": payment["id"]})
    assert (after["amount_refundable"], after["refunds"][0]["status"]) == (10000, "failed")


# -- reconciliation without a webhook --------------------------------------------------------------------------


async def test_reconciliation_from_the_events_list_settles_without_a_webhook(
    app: App, owner: Owner, stripe: StripeServer
) -> None:
    inv = await open_invoice(app, owner, 6000)
    link = await link_for(app, owner, inv["id"])
    stripe.complete(link["url"].rsplit("/", 1)[1])  # listed by Stripe, never delivered
    await reconcile(app, owner)
    await reconcile(app, owner)
    [payment] = await payments_of(app, inv["id"])
    assert payment.amount == 6000
    assert (await ok(app, owner, "get_invoice", {"invoice_id": inv["id"]}))["status"] == "paid"
    [listed] = stripe.requests_to("/v1/events")[:1]
    assert "checkout.session.completed" in listed.form["types"]
    assert int(listed.form["created"]["gte"]) <= int(time.time())
    # A refund Stripe answered as succeeded settles from that answer, without any event.
    stripe.refund_status = "succeeded"
    made = await confirmed(
        app, owner.key, "refund_payment", {"payment_id": payment.id, "amount": 1000, "idempotency_key": key()}
    )
    await app.dispatcher.run_once()
    await reconcile(app, owner)
    refunds = await ok(app, owner, "list_refunds", {"payment_id": payment.id})
    assert [(r["id"], r["status"]) for r in refunds["items"]] == [(made.data["id"], "succeeded")]
    # Nothing waits any more: the next run does not call Stripe.
    calls = len(stripe.requests_to("/v1/events"))
    await reconcile(app, owner)
    assert len(stripe.requests_to("/v1/events")) == calls


async def test_a_refund_made_in_the_stripe_dashboard_is_recorded_once(
    app: App, owner: Owner, stripe: StripeServer, web: httpx.AsyncClient
) -> None:
    inv, payment = await paid_online(app, owner, stripe, web)
    intent = (await payments_of(app, inv["id"]))[0].provider_payment_id
    obj = {"id": f"re_{uuid.uuid4().hex[:20]}", "object": "refund", "amount": 2500, "currency": "eur",
           "payment_intent": intent, "metadata": {}, "status": "succeeded"}  # fmt: skip
    for event in (stripe.event("refund.created", obj), stripe.event("charge.refunded", {"refunds": {"data": [obj]}})):
        assert (await stripe.deliver(web, hook(owner), event, WEBHOOK_SECRET)).status_code == 200
    after = await ok(app, owner, "get_payment", {"payment_id": payment["id"]})
    assert (after["amount_refunded"], len(after["refunds"])) == (2500, 1)


def test_the_local_server_signs_like_stripe() -> None:
    import stripe as stripe_lib

    payload = '{"id": "evt_1", "object": "event", "type": "ping", "data": {"object": {}}}'
    header = sign(payload, WEBHOOK_SECRET)
    assert stripe_lib.Webhook.construct_event(payload, header, WEBHOOK_SECRET).id == "evt_1"


async def test_a_single_business_install_configures_stripe_in_its_settings(
    app: App, owner: Owner, stripe: StripeServer, web: httpx.AsyncClient
) -> None:
    await ok(app, owner, "update_workspace", {"payment_provider": None})
    app.settings.stripe_secret_key, app.settings.stripe_webhook_secret = SECRET_KEY, WEBHOOK_SECRET
    inv = await open_invoice(app, owner, 1500)
    link = await link_for(app, owner, inv["id"])
    event = stripe.complete(link["url"].rsplit("/", 1)[1])
    assert (await stripe.deliver(web, hook(owner), event, WEBHOOK_SECRET)).status_code == 200
    assert [p.amount for p in await payments_of(app, inv["id"])] == [1500]


async def test_the_worker_runs_reconciliation_and_survives_stripe_being_down(
    app: App, owner: Owner, stripe: StripeServer, clock: FakeClock
) -> None:
    [job] = [j for j in app.runner.platform.jobs if j.name == "stripe_reconcile"]
    inv = await open_invoice(app, owner, 2500)
    link = await link_for(app, owner, inv["id"])
    stripe.complete(link["url"].rsplit("/", 1)[1])
    app.settings.stripe_api_base = "http://127.0.0.1:9"  # nothing listens: the run logs it and ends cleanly
    await reconcile(app, owner)
    assert await payments_of(app, inv["id"]) == []
    app.settings.stripe_api_base = stripe.base
    if not app.db.is_sqlite:  # the worker runs jobs for every workspace: on the shared Postgres, other tests' too
        await reconcile(app, owner)
        assert [p.amount for p in await payments_of(app, inv["id"])] == [2500]
        return
    scheduler = Scheduler(app.runner, jobs=[job])
    assert await scheduler.run_due() == 1
    assert [p.amount for p in await payments_of(app, inv["id"])] == [2500]
    assert await scheduler.run_due() == 0  # not due again before its period
    clock.advance(minutes=6)
    assert await scheduler.run_due() == 1
    assert len(await payments_of(app, inv["id"])) == 1
