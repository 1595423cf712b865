"""/metrics: off unless FAVMCP_METRICS is set; "1" serves loopback requests only, anything else is a bearer token; per
tool calls, errors and latency move with real MCP calls to a live server; the outbox gauges read the rows; on SQLite
and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from sqlmodel import col

from favmcp.app import App
from favmcp.core.ids import new_id
from favmcp.effects.models import OutboxMessage, OutboxStatus
from favmcp.transports.http import build_http_app
from tests.servers import http_server, server_env
from tests.support import Owner, unique_address

TOKEN = "scrape-me-0123456789"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_are_off_by_default_and_loopback_only_with_1(app: App) -> None:
    async def get(address: str, **headers: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=build_http_app(app, run_dispatcher=False), client=(address, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as http:
            return await http.get("/metrics", headers=headers)

    assert app.settings.metrics is None
    assert (await get("127.0.0.1")).status_code == 404
    app.settings.metrics = "1"
    served = await get("127.0.0.1")
    assert served.status_code == 200 and "favmcp_outbox_pending" in served.text
    assert (await get("::1")).status_code == 200
    assert (await get(unique_address())).status_code == 403
    # A proxy on this host forwards other people's requests: they are not local.
    assert (await get("127.0.0.1", **{"X-Forwarded-For": "203.0.113.9"})).status_code == 403


async def test_metrics_with_a_token_count_calls_and_read_the_outbox(
    app: App, owner: Owner, database_url: str, tmp_path: Path
) -> None:
    env = {**server_env(database_url, tmp_path), "FAVMCP_METRICS": TOKEN, "FAVMCP_NO_DISPATCHER": "1"}
    async with http_server(env, tmp_path / "server.log") as server, httpx.AsyncClient(timeout=30) as http:

        async def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            response = await http.get(f"{server.base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/plain")
            return samples(response.text)

        assert (await http.get(f"{server.base}/metrics")).status_code == 401
        wrong = await http.get(f"{server.base}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        before = await scrape()

        headers = {"Authorization": f"Bearer {owner.key}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as transport,
            Client(streamable_http_client(server.url, http_client=transport), read_timeout_seconds=30) as client,
        ):
            for _ in range(2):
                assert not (await client.call_tool("list_services", {})).is_error
            assert (await client.call_tool("create_service", {})).is_error
            assert (await client.call_tool("no_such_tool", {})).is_error
        after = await scrape()

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert moved("favmcp_tool_calls_total", tool="list_services") == 2
        assert moved("favmcp_tool_call_seconds_count", tool="list_services") == 2
        assert moved("favmcp_tool_call_seconds_sum", tool="list_services") > 0
        assert moved("favmcp_tool_errors_total", tool="list_services", code="validation_failed") == 0
        assert moved("favmcp_tool_calls_total", tool="create_service") == 1
        assert moved("favmcp_tool_errors_total", tool="create_service", code="validation_failed") == 1
        # A made-up name is one series whatever it is, not one per name.
        assert moved("favmcp_tool_errors_total", tool="(unknown)", code="not_found") == 1
        assert not any(labels and dict(labels).get("tool") == "no_such_tool" for _, labels in after)

        # Rows written as another process would: a pending message two hours old and a webhook that failed.
        now = datetime.now(UTC)
        old, failed = new_id("out"), new_id("out")
        async with app.db.transaction() as session:
            for row_id, channel, status in [(old, "email", OutboxStatus.pending), (failed, "webhook", "failed")]:
                session.add(
                    OutboxMessage(
                        id=row_id, channel=channel, recipient="x@example.com", subject="s", body="", payload={},
                        status=OutboxStatus(status), next_attempt_at=now + timedelta(days=1),
                        created_at=now - timedelta(hours=2),
                    )
                )  # fmt: skip
        with_rows = await scrape()
        assert value(with_rows, "favmcp_outbox_pending") == value(after, "favmcp_outbox_pending") + 1
        assert value(with_rows, "favmcp_outbox_oldest_pending_seconds") >= 7200
        failures = value(with_rows, "favmcp_webhook_deliveries_failed")
        assert failures == value(after, "favmcp_webhook_deliveries_failed") + 1
        async with app.db.transaction() as session:
            await session.execute(
                update(OutboxMessage).where(col(OutboxMessage.id) == old).values(status=OutboxStatus.sent)
            )
        drained = await scrape()
        assert value(drained, "favmcp_outbox_pending") == value(after, "favmcp_outbox_pending")
        assert value(drained, "favmcp_outbox_oldest_pending_seconds") < 7200
