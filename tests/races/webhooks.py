"""Races of the webhooks domain: the cap on endpoints holds, one key makes one endpoint (and one secret), an
endpoint deleted once while events fan out to it (no call fails on a vanished endpoint, nothing stays queued for
it), redeliveries each queued once and a disabled endpoint enabled once."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col

from favmcp.domains.webhooks.models import EndpointStatus, WebhookDelivery, WebhookEndpoint
from favmcp.effects.models import OutboxMessage, OutboxStatus
from favmcp.registry.models import AuditEvent
from tests.race_kit import RACER, Call, N, Outcome, Scenario, Stage, as_owner, member, ok, oks, rows
from tests.support import unique_email

URL = "https://127.0.0.1:9/race"
CAP = 20


def _create(s: Stage, i: int) -> Call:
    return as_owner(s, "create_webhook_endpoint", {"url": f"{URL}/{i}", "events": ["member.created"]})


async def setup_allowed(s: Stage) -> None:
    s.app.settings.allow_private_targets = True


async def setup_fifteen(s: Stage) -> None:
    await setup_allowed(s)
    for i in range(CAP - 5):
        await ok(s, "create_webhook_endpoint", {"url": f"{URL}/old{i}", "events": ["*"]})


async def check_cap(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 5, "the cap holds under concurrent creates"
    assert all(o.code == "conflict" for o in outs if not o.ok)
    assert len((await ok(s, "list_webhook_endpoints", {"limit": 100}))["items"]) == CAP


async def check_one_endpoint(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    assert len({str(o.result.data) for o in outs}) == 1, "twenty identical answers, one secret"
    assert len((await ok(s, "list_webhook_endpoints", {"limit": 100}))["items"]) == 1


async def setup_endpoint(s: Stage) -> None:
    await setup_allowed(s)
    s.endpoint = (await ok(s, "create_webhook_endpoint", {"url": URL, "events": ["member.created"]}))["id"]
    await member(s)  # one delivery pending before the race


def _delete_amid_events(s: Stage, i: int) -> Call:
    if i == RACER:
        return as_owner(s, "delete_webhook_endpoint", {"endpoint_id": s.endpoint})
    return as_owner(s, "create_member", {"name": f"M{i}", "email": unique_email("m")})


async def check_deleted_amid_events(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.ok for o in outs), "no call fails on an endpoint deleted under it"
    gone = outs[RACER].result.data
    assert gone["endpoint_id"] == s.endpoint and gone["deliveries_stopped"] >= 1
    assert (await ok(s, "list_webhook_endpoints"))["items"] == []
    assert await rows(s, WebhookDelivery, col(WebhookDelivery.endpoint_id) == s.endpoint) == []
    queued = await rows(
        s,
        OutboxMessage,
        col(OutboxMessage.workspace_id) == s.owner.workspace_id,
        col(OutboxMessage.channel) == "webhook",
    )
    assert len(queued) == gone["deliveries_stopped"], "each delivery the events made before the delete was stopped"
    assert all(row.status == OutboxStatus.failed for row in queued), "nothing stays queued for a deleted endpoint"


async def check_deleted_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 1, "deleted once; the others find nothing"
    assert all(o.code == "not_found" for o in outs if not o.ok)
    mine = col(AuditEvent.workspace_id) == s.owner.workspace_id
    audited = await rows(s, AuditEvent, mine, col(AuditEvent.tool) == "delete_webhook_endpoint")
    assert len([a for a in audited if a.outcome == "ok"]) == 1


async def setup_disabled_delivery(s: Stage) -> None:
    await setup_endpoint(s)
    [pending] = (await ok(s, "list_webhook_deliveries"))["items"]
    s.delivery = pending["id"]
    async with s.app.db.transaction() as session:  # as persistent failure leaves it (see tests/test_webhooks.py)
        await session.execute(
            update(WebhookEndpoint)
            .where(col(WebhookEndpoint.id) == s.endpoint)
            .values(status=EndpointStatus.disabled, disabled_at=s.app.runner.clock.now())
        )


async def check_redelivered(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    assert [o.result.data["endpoint_reenabled"] for o in outs].count(True) == 1, "enabled again once"
    made = {o.result.data["delivery"]["id"] for o in outs}
    assert len(made) == N
    listed = (await ok(s, "list_webhook_deliveries", {"limit": 100}))["items"]
    assert {d["id"] for d in listed if d["redelivery_of"] == s.delivery} == made
    [endpoint] = (await ok(s, "list_webhook_endpoints"))["items"]
    assert endpoint["status"] == "enabled" and endpoint["health"]["pending"] == N + 1


SCENARIOS: dict[str, Scenario] = {
    "create_webhook_endpoint: twenty creates, five places left": Scenario(
        "create_webhook_endpoint", setup_fifteen, _create, check_cap, frozenset({"conflict"})
    ),
    "create_webhook_endpoint: twenty calls with one key": Scenario(
        "create_webhook_endpoint",
        setup_allowed,
        lambda s, i: as_owner(s, "create_webhook_endpoint", {"url": URL, "events": ["*"]}),
        check_one_endpoint,
        one_key=True,
    ),
    "delete_webhook_endpoint: deleted while nineteen events fan out to it": Scenario(
        "delete_webhook_endpoint", setup_endpoint, _delete_amid_events, check_deleted_amid_events
    ),
    "delete_webhook_endpoint: twenty deletes": Scenario(
        "delete_webhook_endpoint",
        setup_endpoint,
        lambda s, i: as_owner(s, "delete_webhook_endpoint", {"endpoint_id": s.endpoint}),
        check_deleted_once,
        frozenset({"not_found"}),
    ),
    "redeliver_webhook: twenty redeliveries to a disabled endpoint": Scenario(
        "redeliver_webhook",
        setup_disabled_delivery,
        lambda s, i: as_owner(s, "redeliver_webhook", {"delivery_id": s.delivery}),
        check_redelivered,
    ),
}
