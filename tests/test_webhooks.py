"""Outgoing webhooks: endpoints fed by domain events, Standard Webhooks signatures checked by the reference library
at a local receiver, retries on the webhook schedule, the delivery log, disabling after persistent failure,
redelivery, target checks, and workspaces kept apart.

Tests that run the outbox use a database of their own (see tests/test_outbox.py): a dispatcher takes every due
row, and rows other tests left would blur what is counted.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col
from standardwebhooks import Webhook

from favmcp.app import App
from favmcp.core.clock import utc
from favmcp.db.maintenance import reseal_secrets
from favmcp.domains.webhooks import service
from favmcp.domains.webhooks.delivery import RETRIES
from favmcp.domains.webhooks.models import WebhookEndpoint
from favmcp.effects.channels.webhook import WebhookSender
from favmcp.effects.models import OutboxMessage, OutboxStatus
from tests.support import (
    FakeClock,
    Owner,
    call,
    confirmed,
    error_code,
    make_settings,
    signup,
    unique_email,
)
from tests.test_bookings import at as local_time
from tests.test_bookings import book, studio
from tests.webhook_receiver import WebhookReceiver

# -- fixtures and helpers ----------------------------------------------------------------------------------------


@pytest.fixture
async def worker(own_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    """An app on a database of its own, whose outbox the test runs by hand; loopback targets allowed."""
    application = await App.open(make_settings(tmp_path, own_url), clock=clock, upgrade=True)
    application.settings.allow_private_targets = True
    yield application
    await application.close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


async def owner_of(app: App) -> Owner:
    """A new workspace's owner, with the signup email already out of the outbox (so counts are the webhooks')."""
    owner = await signup(app)
    await run_outbox(app)
    return owner


async def ok(app: App, owner: Owner, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await call(app, owner.key, tool, args or {})
    assert result.ok, result.data
    return result.data


async def endpoint(app: App, owner: Owner, receiver: WebhookReceiver, path: str, events: list[str]) -> dict[str, Any]:
    """An endpoint at receiver.url(path); the receiver verifies that path's requests with its secret."""
    made = await ok(app, owner, "create_webhook_endpoint", {"url": receiver.url(path), "events": events})
    receiver.secrets[path] = made["secret"]
    return made


async def new_member(app: App, owner: Owner) -> str:
    made = await ok(app, owner, "create_member", {"name": "Ana", "email": unique_email("member")})
    return str(made["id"])


async def deliveries(app: App, owner: Owner, **filters: Any) -> list[dict[str, Any]]:
    return list((await ok(app, owner, "list_webhook_deliveries", {"limit": 100, **filters}))["items"])


async def endpoints(app: App, owner: Owner) -> list[dict[str, Any]]:
    return list((await ok(app, owner, "list_webhook_endpoints", {"limit": 100}))["items"])


async def outbox(app: App, channel: str = "webhook") -> list[OutboxMessage]:
    async with app.db.transaction() as session:
        stmt = select(OutboxMessage).where(col(OutboxMessage.channel) == channel).order_by(col(OutboxMessage.id))
        return list((await session.execute(stmt)).scalars())


async def run_outbox(app: App) -> int:
    """Run the dispatcher until nothing is due; returns how many rows it attempted."""
    done = 0
    while attempted := await app.dispatcher.run_once():
        done += attempted
    return done


def at(value: str | None) -> datetime | None:
    return None if value is None else utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


# -- endpoints -----------------------------------------------------------------------------------------------------


async def test_the_secret_is_shown_once_sealed_at_rest_and_never_listed(app: App, owner: Owner) -> None:
    app.settings.allow_private_targets = True
    args = {"url": "https://127.0.0.1:9/hook", "events": ["member.created"], "idempotency_key": "ep-1"}
    made = await ok(app, owner, "create_webhook_endpoint", args)
    secret = made["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    Webhook(secret).sign("msg_1", datetime.now(), "{}")  # the Standard Webhooks format: the library takes it
    assert made["status"] == "enabled" and made["events"] == ["member.created"]

    replay = await ok(app, owner, "create_webhook_endpoint", args)
    assert replay == made, "a retry with the same key answers the same, secret included"

    listed = await endpoints(app, owner)
    assert [e["id"] for e in listed] == [made["id"]]
    assert "secret" not in listed[0] and secret not in json.dumps(listed)
    assert listed[0]["health"] == {
        "failing_since": None,
        "last_delivery_status": None,
        "last_delivery_at": None,
        "last_status_code": None,
        "succeeded_24h": 0,
        "failed_24h": 0,
        "pending": 0,
    }
    async with app.db.transaction() as session:
        stored = await session.get(WebhookEndpoint, made["id"])
    assert stored is not None and secret not in stored.secret and secret[6:] not in stored.secret


async def test_events_are_known_names_or_star(app: App, owner: Owner) -> None:
    app.settings.allow_private_targets = True
    url = "https://127.0.0.1:9/hook"
    refused = await call(app, owner.key, "create_webhook_endpoint", {"url": url, "events": ["member.created", "nope"]})
    assert error_code(refused) == "validation_failed"
    message = refused.data["error"]["message"]
    assert "nope" in message and "booking.created" in message and "member.created" in message
    star = await ok(app, owner, "create_webhook_endpoint", {"url": url, "events": ["member.created", "*"]})
    assert star["events"] == ["*"]
    twice = await ok(
        app, owner, "create_webhook_endpoint", {"url": url, "events": ["tier.changed", "member.created"] * 2}
    )
    assert twice["events"] == ["member.created", "tier.changed"]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",  # not https
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",  # a name that resolves to loopback
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.5.4/hook",
        "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
        "https://224.0.0.1/hook",  # multicast
        "https://240.0.0.1/hook",  # reserved
        "https://0.0.0.0/hook",
        "https://100.64.0.1/hook",  # shared address space
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",  # loopback behind an IPv4-mapped address
        "https://user:pass@example.com/hook",
        "ftp://example.com/hook",
    ],
)
async def test_private_and_loopback_targets_are_refused_unless_allowed(app: App, owner: Owner, url: str) -> None:
    app.settings.allow_private_targets = False
    refused = await call(app, owner.key, "create_webhook_endpoint", {"url": url, "events": ["*"]})
    assert error_code(refused) == "validation_failed", refused.data
    assert refused.data["error"]["field_errors"][0]["field"] == "url"
    assert await endpoints(app, owner) == []


async def test_loopback_is_a_target_when_the_operator_allows_it(app: App, owner: Owner) -> None:
    app.settings.allow_private_targets = True
    made = await ok(app, owner, "create_webhook_endpoint", {"url": "http://localhost:9/hook", "events": ["*"]})
    assert made["url"] == "http://localhost:9/hook"


async def test_a_workspace_has_at_most_twenty_endpoints(app: App, owner: Owner) -> None:
    app.settings.allow_private_targets = True
    for i in range(20):
        await ok(app, owner, "create_webhook_endpoint", {"url": f"https://127.0.0.1:9/{i}", "events": ["*"]})
    more = await call(app, owner.key, "create_webhook_endpoint", {"url": "https://127.0.0.1:9/x", "events": ["*"]})
    assert error_code(more) == "conflict" and "delete_webhook_endpoint" in more.data["error"]["hint"]


async def test_webhooks_need_the_admin_scope(app: App, owner: Owner) -> None:
    made = await ok(app, owner, "create_api_key", {"name": "reader", "scopes": ["members:read"]})
    key = made["api_key"]
    for tool, args in [
        ("list_webhook_endpoints", {}),
        ("create_webhook_endpoint", {"url": "https://example.com/h", "events": ["*"]}),
    ]:
        assert error_code(await call(app, key, tool, args)) == "forbidden"


# -- the fan-out and delivery ----------------------------------------------------------------------------------


async def test_an_event_reaches_its_subscribers_signed_and_no_one_else(
    worker: App, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    owner = await owner_of(worker)
    members = await endpoint(worker, owner, receiver, "/members", ["member.created"])
    bookings = await endpoint(worker, owner, receiver, "/bookings", ["booking.created"])
    everything = await endpoint(worker, owner, receiver, "/all", ["*"])
    member_id = await new_member(worker, owner)

    queued = await deliveries(worker, owner)
    assert {d["endpoint_id"] for d in queued} == {members["id"], everything["id"]}
    assert all(d["status"] == "pending" and d["event"] == "member.created" and d["attempts"] == 0 for d in queued)
    assert len({d["event_id"] for d in queued}) == 1, "one event, one id, whichever endpoint carries it"

    assert await run_outbox(worker) == 2
    assert receiver.to("/bookings") == []
    [got] = receiver.to("/members")
    assert got.verified, got.error
    assert got.headers["content-type"] == "application/json"
    assert got.webhook_id == next(d["id"] for d in queued if d["endpoint_id"] == members["id"])
    body = got.json
    assert body["type"] == "member.created" and body["data"] == {"member_id": member_id, "source": None}
    assert at(body["timestamp"]) == clock.now()
    [star] = receiver.to("/all")
    assert star.verified and star.json == body

    done = await deliveries(worker, owner, endpoint_id=members["id"])
    [d] = done
    assert (d["status"], d["attempts"], d["last_status_code"], d["last_error"]) == ("succeeded", 1, 200, None)
    assert d["last_latency_ms"] >= 0 and d["next_attempt_at"] is None and at(d["delivered_at"]) == clock.now()
    assert [a["status_code"] for a in d["recent_attempts"]] == [200]
    assert all(row.status == OutboxStatus.sent for row in await outbox(worker))
    health = {e["id"]: e["health"] for e in await endpoints(worker, owner)}
    assert health[members["id"]]["last_delivery_status"] == "succeeded"
    assert health[members["id"]]["succeeded_24h"] == 1 and health[members["id"]]["last_status_code"] == 200
    assert health[bookings["id"]]["last_delivery_status"] is None

    # A receiver with another secret does not verify it: the signature is the endpoint's own.
    receiver.secrets["/members"] = everything["secret"]
    await new_member(worker, owner)
    await run_outbox(worker)
    assert not receiver.to("/members")[-1].verified


async def test_booking_events_reach_the_endpoint_of_bookings_without_customer_text(
    worker: App, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    owner = await owner_of(worker)
    await endpoint(worker, owner, receiver, "/bookings", ["booking.created", "booking.cancelled"])
    await endpoint(worker, owner, receiver, "/members", ["member.created"])
    service_id = await studio(worker, owner)
    member_id = await new_member(worker, owner)
    made = await book(worker, owner, member_id, service_id, local_time(clock, days=3), customer_note="Sore shoulder")
    cancelled = await confirmed(worker, owner.key, "cancel_booking", {"booking_id": made["id"], "reason": "Ill"})
    assert cancelled.ok, cancelled.data
    await run_outbox(worker)

    got = receiver.to("/bookings")
    assert [r.json["type"] for r in got] == ["booking.created", "booking.cancelled"] and all(r.verified for r in got)
    assert all(r.json["data"]["booking_id"] == made["id"] for r in got)
    assert all("Sore shoulder" not in r.body.decode() for r in got), "events carry ids and facts, not customer text"
    assert [r.json["type"] for r in receiver.to("/members")] == ["member.created"]


async def test_a_500_is_retried_on_the_schedule_with_the_same_webhook_id_until_it_succeeds(
    worker: App, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    owner = await owner_of(worker)
    made = await endpoint(worker, owner, receiver, "/flaky", ["member.created"])
    receiver.answers += [500, 503]
    await new_member(worker, owner)

    first_at = clock.now()
    assert await run_outbox(worker) == 1
    [d] = await deliveries(worker, owner)
    assert (d["status"], d["attempts"], d["last_status_code"], d["last_error"]) == ("pending", 1, 500, "HTTP 500")
    assert at(d["next_attempt_at"]) == first_at + RETRIES[0]
    [health] = [e["health"] for e in await endpoints(worker, owner)]
    assert at(health["failing_since"]) == first_at and health["failed_24h"] == 1 and health["pending"] == 1

    clock.advance(seconds=4)
    assert await run_outbox(worker) == 0, "not before its time"
    clock.advance(seconds=1)
    assert await run_outbox(worker) == 1
    [d] = await deliveries(worker, owner)
    assert (d["attempts"], d["last_status_code"]) == (2, 503)
    assert at(d["next_attempt_at"]) == clock.now() + RETRIES[1] == clock.now() + timedelta(minutes=5)

    clock.advance(minutes=5)
    assert await run_outbox(worker) == 1
    [d] = await deliveries(worker, owner)
    assert (d["status"], d["attempts"], d["last_status_code"], d["last_error"]) == ("succeeded", 3, 200, None)
    assert [a["status_code"] for a in d["recent_attempts"]] == [200, 503, 500]
    assert [a["error"] for a in d["recent_attempts"]] == [None, "HTTP 503", "HTTP 500"]
    requests = receiver.to("/flaky")
    assert [r.answered for r in requests] == [500, 503, 200]
    assert {r.webhook_id for r in requests} == {d["id"]}, "a retry keeps the webhook-id (receivers dedupe by it)"
    assert all(r.verified for r in requests)
    [health] = [e["health"] for e in await endpoints(worker, owner)]
    assert health["failing_since"] is None, "a success ends the failing streak"
    assert (health["succeeded_24h"], health["failed_24h"], health["pending"]) == (1, 2, 0)
    [row] = await outbox(worker)
    assert (row.status, row.attempts) == (OutboxStatus.sent, 3)
    assert made["id"] == d["endpoint_id"]


async def test_the_log_shows_latency_and_no_answer(worker: App, receiver: WebhookReceiver, clock: FakeClock) -> None:
    owner = await owner_of(worker)
    await endpoint(worker, owner, receiver, "/slow", ["member.created"])
    receiver.delay = 0.25
    await new_member(worker, owner)
    await run_outbox(worker)
    [d] = await deliveries(worker, owner)
    assert d["status"] == "succeeded" and d["last_latency_ms"] >= 250
    assert d["recent_attempts"][0]["latency_ms"] == d["last_latency_ms"]

    receiver.delay = 0
    gone = "http://127.0.0.1:9/closed"  # nothing listens on the discard port
    await ok(worker, owner, "create_webhook_endpoint", {"url": gone, "events": ["member.updated"]})
    member_id = await new_member(worker, owner)
    await ok(worker, owner, "update_member", {"member_id": member_id, "name": "Ana B"})
    await run_outbox(worker)
    [failed] = await deliveries(worker, owner, event="member.updated")
    assert failed["status"] == "pending" and failed["last_status_code"] is None
    assert failed["last_error"] and "Connect" in failed["last_error"]


async def test_redirects_are_not_followed(worker: App, receiver: WebhookReceiver) -> None:
    owner = await owner_of(worker)
    await endpoint(worker, owner, receiver, "/moved", ["member.created"])
    receiver.answers.append(302)
    await new_member(worker, owner)
    await run_outbox(worker)
    assert [r.path for r in receiver.received] == ["/moved"]
    [d] = await deliveries(worker, owner)
    assert (d["status"], d["last_status_code"], d["last_error"]) == ("pending", 302, "HTTP 302")


async def test_persistent_failure_fails_the_delivery_after_three_days_and_disables_the_endpoint(
    worker: App, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    owner = await owner_of(worker)
    made = await endpoint(worker, owner, receiver, "/down", ["member.created"])
    receiver.status = 500
    await new_member(worker, owner)
    started = clock.now()
    for i, wait in enumerate(RETRIES):
        assert await run_outbox(worker) >= 1
        if i == 4:  # a later event's delivery, still pending when the endpoint is disabled
            await new_member(worker, owner)
            await run_outbox(worker)
        clock.advance(seconds=wait.total_seconds())
    assert clock.now() - started > timedelta(days=3)
    assert await run_outbox(worker) >= 1  # the 10th attempt of the first delivery: its last

    first, later = sorted(await deliveries(worker, owner), key=lambda d: d["created_at"])
    assert (first["status"], first["attempts"], first["next_attempt_at"]) == ("failed", len(RETRIES) + 1, None)
    assert later["status"] == "failed" and "disabled" in later["last_error"], "its pending deliveries stop"
    [listed] = await endpoints(worker, owner)
    assert listed["status"] == "disabled" and at(listed["disabled_at"]) == clock.now()
    assert listed["health"]["pending"] == 0
    assert all(row.status == OutboxStatus.failed for row in await outbox(worker))
    sent = len(receiver.received)

    await new_member(worker, owner)
    assert len(await deliveries(worker, owner)) == 2, "nothing is queued for a disabled endpoint"
    clock.advance(days=2)
    assert await run_outbox(worker) == 0 and len(receiver.received) == sent

    # Redelivery enables it again: the same event, a new delivery with a new webhook-id.
    receiver.status = 200
    again = await ok(worker, owner, "redeliver_webhook", {"delivery_id": first["id"]})
    assert again["endpoint_reenabled"] is True
    new = again["delivery"]
    assert new["redelivery_of"] == first["id"] and new["id"] != first["id"] and new["status"] == "pending"
    assert new["event_id"] == first["event_id"] and new["endpoint_id"] == made["id"]
    assert await run_outbox(worker) == 1
    last = receiver.received[-1]
    assert last.verified and last.webhook_id == new["id"]
    assert last.json == receiver.received[0].json, "the same event payload"
    [listed] = await endpoints(worker, owner)
    assert listed["status"] == "enabled" and listed["health"]["failing_since"] is None
    [redone] = await deliveries(worker, owner, status="succeeded")
    assert redone["id"] == new["id"]


async def test_redelivering_a_succeeded_delivery_sends_it_again(worker: App, receiver: WebhookReceiver) -> None:
    owner = await owner_of(worker)
    await endpoint(worker, owner, receiver, "/twice", ["member.created"])
    await new_member(worker, owner)
    await run_outbox(worker)
    [d] = await deliveries(worker, owner)
    again = await ok(worker, owner, "redeliver_webhook", {"delivery_id": d["id"], "idempotency_key": "again"})
    assert again["endpoint_reenabled"] is False
    replay = await ok(worker, owner, "redeliver_webhook", {"delivery_id": d["id"], "idempotency_key": "again"})
    assert replay == again, "a retried call queues it once"
    await run_outbox(worker)
    first, second = receiver.to("/twice")
    assert first.json == second.json and first.webhook_id != second.webhook_id and second.verified
    assert len(await deliveries(worker, owner)) == 2


async def test_deleting_an_endpoint_stops_its_pending_deliveries(worker: App, receiver: WebhookReceiver) -> None:
    owner = await owner_of(worker)
    doomed = await endpoint(worker, owner, receiver, "/doomed", ["member.created"])
    kept = await endpoint(worker, owner, receiver, "/kept", ["member.created"])
    await new_member(worker, owner)
    await new_member(worker, owner)

    gone = await ok(worker, owner, "delete_webhook_endpoint", {"endpoint_id": doomed["id"]})
    assert gone == {"endpoint_id": doomed["id"], "deliveries_stopped": 2}
    assert await run_outbox(worker) == 2
    assert receiver.to("/doomed") == [] and len(receiver.to("/kept")) == 2
    rows = await outbox(worker)
    assert sorted(r.status for r in rows) == [OutboxStatus.failed] * 2 + [OutboxStatus.sent] * 2
    assert {d["endpoint_id"] for d in await deliveries(worker, owner)} == {kept["id"]}
    assert [e["id"] for e in await endpoints(worker, owner)] == [kept["id"]]

    again = await call(worker, owner.key, "delete_webhook_endpoint", {"endpoint_id": doomed["id"]})
    assert error_code(again) == "not_found"
    await new_member(worker, owner)
    assert len(await deliveries(worker, owner)) == 3, "a deleted endpoint hears nothing"


async def test_a_delete_while_a_post_is_out_records_nothing_for_the_gone_endpoint(
    worker: App, receiver: WebhookReceiver
) -> None:
    owner = await owner_of(worker)
    made = await endpoint(worker, owner, receiver, "/slow", ["member.created"])
    await new_member(worker, owner)
    receiver.delay = 1.0
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(worker.dispatcher.run_once)
        assert await anyio.to_thread.run_sync(receiver.holding.wait, 10), "the POST reached the receiver"
        gone = await ok(worker, owner, "delete_webhook_endpoint", {"endpoint_id": made["id"]})
    assert gone["deliveries_stopped"] == 1, "it was still pending while its POST was out"
    [row] = await outbox(worker)
    assert row.status == OutboxStatus.sent and row.attempts == 1, "the POST happened: the row says so"
    assert await deliveries(worker, owner) == [] and await endpoints(worker, owner) == []
    assert await run_outbox(worker) == 0


async def test_the_target_is_checked_again_at_delivery_time(worker: App, receiver: WebhookReceiver) -> None:
    owner = await owner_of(worker)
    await endpoint(worker, owner, receiver, "/private", ["member.created"])
    worker.settings.allow_private_targets = False  # the operator closes private targets after it was made
    await new_member(worker, owner)
    assert await run_outbox(worker) == 1
    assert receiver.received == [], "nothing reached the private address"
    [d] = await deliveries(worker, owner)
    assert d["status"] == "pending" and d["last_status_code"] is None
    assert d["last_error"].startswith("target refused")


async def test_workspaces_never_see_each_others_endpoints_or_deliveries(worker: App, receiver: WebhookReceiver) -> None:
    ann, bob = await owner_of(worker), await owner_of(worker)
    anns = await endpoint(worker, ann, receiver, "/ann", ["*"])
    await new_member(worker, ann)
    await new_member(worker, bob)
    await run_outbox(worker)
    [delivered] = await deliveries(worker, ann)
    assert len(receiver.to("/ann")) == 1, "bob's event did not reach ann's endpoint"

    assert await endpoints(worker, bob) == [] and await deliveries(worker, bob) == []
    assert await deliveries(worker, bob, endpoint_id=anns["id"]) == []
    for tool, args in [
        ("delete_webhook_endpoint", {"endpoint_id": anns["id"]}),
        ("redeliver_webhook", {"delivery_id": delivered["id"]}),
        ("delete_webhook_endpoint", {"endpoint_id": "whe_missing"}),
        ("redeliver_webhook", {"delivery_id": "whd_missing"}),
    ]:
        refused = await call(worker, bob.key, tool, args)
        assert error_code(refused) == "not_found", "another workspace's record answers like none at all"
    assert [e["id"] for e in await endpoints(worker, ann)] == [anns["id"]]


async def test_finished_deliveries_leave_the_log_after_thirty_days(
    worker: App, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    owner = await owner_of(worker)
    await endpoint(worker, owner, receiver, "/log", ["member.created"])
    await new_member(worker, owner)
    await run_outbox(worker)  # succeeded
    receiver.status = 500
    await new_member(worker, owner)
    await run_outbox(worker)  # pending, retrying
    clock.advance(days=31)
    await worker.runner.run_system(owner.workspace_id, "job:purge_webhook_log", service.purge_log)
    [kept] = await deliveries(worker, owner)
    assert kept["status"] == "pending", "only finished deliveries are purged"
    [health] = [e["health"] for e in await endpoints(worker, owner)]
    assert health["pending"] == 1 and health["last_delivery_status"] == "pending"


async def test_a_rotated_server_secret_still_signs_with_the_endpoints_secret(
    worker: App, receiver: WebhookReceiver, clock: FakeClock, own_url: str, tmp_path: Path
) -> None:
    owner = await owner_of(worker)
    made = await endpoint(worker, owner, receiver, "/rotated", ["member.created"])
    sealed = worker.runner.platform.sealed_columns
    counts = await reseal_secrets(worker.db, (b"rotated", b"test-secret"), sealed_columns=sealed)
    assert counts["webhook_secrets"] == {"resealed": 1, "current": 0, "unreadable": 0}
    settings = make_settings(tmp_path, own_url, secret_key=b"rotated", secret_keys=(b"rotated",))
    settings.allow_private_targets = True
    after = await App.open(settings, clock=clock)  # the old secret retired
    try:
        await new_member(after, owner)
        assert await run_outbox(after) == 1
    finally:
        await after.close()
    [got] = receiver.to("/rotated")
    assert got.verified, "signed with the endpoint's own secret, as shown when it was made"
    assert receiver.secrets["/rotated"] == made["secret"]


async def test_lists_page_newest_first(app: App, owner: Owner) -> None:
    app.settings.allow_private_targets = True
    made = [
        (await ok(app, owner, "create_webhook_endpoint", {"url": f"https://127.0.0.1:9/{i}", "events": ["*"]}))["id"]
        for i in range(3)
    ]
    first = await ok(app, owner, "list_webhook_endpoints", {"limit": 2})
    assert [e["id"] for e in first["items"]] == made[::-1][:2] and first["has_more"]
    rest = await ok(app, owner, "list_webhook_endpoints", {"limit": 2, "cursor": first["next_cursor"]})
    assert [e["id"] for e in rest["items"]] == [made[0]] and not rest["has_more"]
    for _ in range(3):
        await new_member(app, owner)
    page = await ok(app, owner, "list_webhook_deliveries", {"limit": 5, "endpoint_id": made[0]})
    assert len(page["items"]) == 3 and not page["has_more"]
    assert [d["created_at"] for d in page["items"]] == sorted((d["created_at"] for d in page["items"]), reverse=True)
    assert (await ok(app, owner, "list_webhook_deliveries", {"event": "booking.created"}))["items"] == []


# -- the sender: the address checked is the address connected to ------------------------------------------------

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def recording() -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    return seen, httpx.MockTransport(answer)


def dns(*addresses: str) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if not addresses:
            raise OSError("Name or service not known")
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    ("address", "host"), [("93.184.216.34", "93.184.216.34"), ("2606:2800:220:1::1946", "[2606:2800:220:1::1946]")]
)
async def test_a_public_name_is_sent_to_the_address_checked_with_its_own_host_and_tls_name(
    address: str, host: str
) -> None:
    seen, transport = recording()
    sender = WebhookSender(allow_private=False, resolve=dns(address), transport=transport)
    outcome = await sender.post("https://hooks.example.com:8443/in?x=1", SECRET, "whd_1", '{"a":1}')
    assert (outcome.ok, outcome.status_code, outcome.error) == (True, 204, None)
    [request] = seen
    assert str(request.url) == f"https://{host}:8443/in?x=1", "pinned to the address that was checked"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com", "TLS names and verifies the URL's host"
    assert Webhook(SECRET).verify(request.content, dict(request.headers)) == {"a": 1}
    assert request.headers["webhook-id"] == "whd_1"


@pytest.mark.parametrize(
    ("addresses", "why"),
    [
        (("93.184.216.34", "10.0.0.7"), "private"),  # one private address among public ones is enough to refuse
        (("127.0.0.1",), "loopback"),
        (("::ffff:169.254.169.254",), "link-local"),
        ((), "does not resolve"),
    ],
)
async def test_a_name_resolving_anywhere_private_is_never_called(addresses: tuple[str, ...], why: str) -> None:
    seen, transport = recording()
    sender = WebhookSender(allow_private=False, resolve=dns(*addresses), transport=transport)
    outcome = await sender.post("https://hooks.example.com/in", SECRET, "whd_1", "{}")
    assert not outcome.ok and outcome.status_code is None and seen == []
    assert outcome.error and outcome.error.startswith("target refused") and why in outcome.error
