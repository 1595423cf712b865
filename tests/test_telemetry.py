"""OpenTelemetry traces: with FAVMCP_OTEL=1 a live server exports one span per tool call over OTLP/HTTP to a real
receiver (names, outcomes and opaque ids, no arguments), joins the trace an HTTP request's traceparent names, and
nests under the MCP SDK's own tools/call span; off, the OpenTelemetry SDK is never loaded; on without the extra,
the server refuses to start and says what to install. On SQLite and Postgres."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from favmcp.app import App
from tests.loopback_http import LoopbackHttp
from tests.servers import free_port, http_server, server_env
from tests.support import Owner

MARKER = "Telemetry-Marker-7f3a"  # an argument value that must never reach a span


class Collector(LoopbackHttp):
    """An OTLP/HTTP trace receiver: POST /v1/traces with a protobuf ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bodies: list[bytes] = []
        self.spans: list[tuple[dict[str, Any], Span]] = []  # (resource attributes, span)

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        if method != "POST" or handler.path != "/v1/traces":
            handler.send_response(404)
            handler.end_headers()
            return
        assert handler.headers.get("Content-Type") == "application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(body)
        with self.lock:
            self.bodies.append(body)
            for resource_spans in request.resource_spans:
                resource = attributes_of(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend((resource, span) for span in scope_spans.spans)
        answer = ExportTraceServiceResponse().SerializeToString()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/x-protobuf")
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)

    async def span(self, found: Callable[[Span], bool]) -> tuple[dict[str, Any], Span]:
        """The first exported span that matches, waiting for the batch to arrive."""
        with anyio.fail_after(15):
            while True:
                with self.lock:
                    for resource, span in self.spans:
                        if found(span):
                            return resource, span
                await anyio.sleep(0.05)


def attributes_of(values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in values:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


def named(name: str, **attributes: Any) -> Callable[[Span], bool]:
    def found(span: Span) -> bool:
        return span.name == name and attributes.items() <= attributes_of(span.attributes).items()

    return found


async def test_tool_calls_are_spans_that_join_the_callers_trace(
    owner: Owner, database_url: str, tmp_path: Path
) -> None:
    with Collector() as collector:
        env = {
            **server_env(database_url, tmp_path),
            "FAVMCP_OTEL": "1",
            "FAVMCP_NO_DISPATCHER": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.base,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }
        headers = {"Authorization": f"Bearer {owner.key}"}
        async with http_server(env, tmp_path / "server.log") as server:
            mcp_trace, mcp_parent = secrets.token_hex(16), secrets.token_hex(8)
            traced = {**headers, "traceparent": f"00-{mcp_trace}-{mcp_parent}-01"}
            async with (
                httpx2.AsyncClient(headers=traced, timeout=30) as transport,
                Client(streamable_http_client(server.url, http_client=transport), read_timeout_seconds=30) as client,
            ):
                assert not (await client.call_tool("list_services", {})).is_error
                assert (await client.call_tool("create_service", {"name": MARKER})).is_error
            # A profile's URL, and a trace context in the request's _meta (which the MCP SDK reads for its span).
            meta_trace = secrets.token_hex(16)
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30) as transport,
                Client(
                    streamable_http_client(f"{server.base}/mcp/p/readonly", http_client=transport),
                    read_timeout_seconds=30,
                ) as client,
            ):
                meta = {"traceparent": f"00-{meta_trace}-{secrets.token_hex(8)}-01"}
                assert not (await client.call_tool("list_services", {}, meta=meta)).is_error

            trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
            created = {"name": MARKER, "duration_minutes": 30, "unit_amount": 1000}
            async with httpx.AsyncClient(base_url=server.base, headers=headers, timeout=30) as http:
                joined = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
                assert (await http.get("/v1/services", headers=joined)).status_code == 200
                again = {"Idempotency-Key": secrets.token_hex(8)}
                first = await http.post("/v1/services", json=created, headers=again)
                assert first.status_code in (200, 201), first.text
                assert (await http.post("/v1/services", json=created, headers=again)).json() == first.json()

            mcp_list = named("execute_tool list_services", **{"favmcp.transport": "mcp"})
            resource, ok = await collector.span(
                lambda s: mcp_list(s) and "favmcp.profile" not in attributes_of(s.attributes)
            )
            assert resource["service.name"] == "favmcp" and resource["service.version"]
            assert attributes_of(ok.attributes) == {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "list_services",
                "favmcp.transport": "mcp",
                "favmcp.outcome": "ok",
                "favmcp.request_id": attributes_of(ok.attributes)["favmcp.request_id"],  # checked below
                "favmcp.idempotent_replay": False,
                "favmcp.workspace_id": owner.workspace_id,
            }
            assert attributes_of(ok.attributes)["favmcp.request_id"].startswith("req_")
            assert ok.status.code == Status.STATUS_CODE_UNSET
            # The MCP SDK's own server span for the request is its parent, in the trace the HTTP request named.
            _, sdk = await collector.span(lambda s: s.span_id == ok.parent_span_id)
            assert sdk.name == "tools/call list_services" and sdk.kind == Span.SPAN_KIND_SERVER
            assert ok.kind == Span.SPAN_KIND_INTERNAL and ok.trace_id == sdk.trace_id
            assert sdk.trace_id.hex() == mcp_trace and sdk.parent_span_id.hex() == mcp_parent

            _, error = await collector.span(named("execute_tool create_service", **{"favmcp.transport": "mcp"}))
            error_attributes = attributes_of(error.attributes)
            assert error_attributes["favmcp.outcome"] == error_attributes["error.type"] == "validation_failed"
            assert error.status.code == Status.STATUS_CODE_ERROR and error.status.message == "validation_failed"

            _, profiled = await collector.span(named("execute_tool list_services", **{"favmcp.profile": "readonly"}))
            assert profiled.trace_id.hex() == meta_trace

            _, rest = await collector.span(named("execute_tool list_services", **{"favmcp.transport": "rest"}))
            assert rest.trace_id.hex() == trace_id and rest.parent_span_id.hex() == parent_id
            assert rest.kind == Span.SPAN_KIND_SERVER

            creates = named("execute_tool create_service", **{"favmcp.transport": "rest"})
            await collector.span(lambda s: creates(s) and attributes_of(s.attributes)["favmcp.idempotent_replay"])
            _, made = await collector.span(
                lambda s: creates(s) and not attributes_of(s.attributes)["favmcp.idempotent_replay"]
            )
            assert attributes_of(made.attributes)["favmcp.outcome"] == "ok"
            # Without a traceparent a REST call starts a trace of its own.
            assert made.trace_id.hex() != trace_id and not made.parent_span_id

        with collector.lock:
            assert collector.bodies and not any(MARKER.encode() in body for body in collector.bodies)


# Builds the HTTP app and answers a REST and an MCP-style call in process, then names any OpenTelemetry SDK module
# (or favmcp's own telemetry module) that got loaded. The API alone is the MCP SDK's dependency, loaded regardless.
OFF_PROBE = """
import asyncio, sys
import httpx
from favmcp.app import App
from favmcp.config import Settings
from favmcp.transports.http import build_http_app

async def main():
    app = await App.open(Settings.from_env())
    try:
        transport = httpx.ASGITransport(app=build_http_app(app, run_dispatcher=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as http:
            assert (await http.get("/v1/services")).status_code == 401
        await app.runner.call("whoami", {}, credential=None)
    finally:
        await app.close()

asyncio.run(main())
loaded = ("opentelemetry.sdk", "opentelemetry.exporter", "favmcp.telemetry")
print(sorted(m for m in sys.modules if m.startswith(loaded)))
"""


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FAVMCP_", "OTEL_"))}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=60, check=False
    )


def test_without_favmcp_otel_the_sdk_is_never_imported(app: App, database_url: str, tmp_path: Path) -> None:
    # `app` has made the database ready (the same one the probe opens), so the probe's time is its own.
    probe = _python(OFF_PROBE, server_env(database_url, tmp_path))
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"


def test_favmcp_otel_without_the_extra_stops_the_server_with_what_to_install(tmp_path: Path) -> None:
    # The extra's absence, made real for this process: importing the SDK fails as it does when it is not installed.
    database = tmp_path / "favmcp.db"
    start = (
        "import sys; sys.modules['opentelemetry.sdk'] = None\n"
        "from favmcp.transports.cli import main\n"
        f"sys.argv = ['favmcp', 'serve', '--http', '--port', '{free_port()}']\n"
        "main()\n"
    )
    started = _python(start, {**server_env(f"sqlite+aiosqlite:///{database}", tmp_path), "FAVMCP_OTEL": "1"})
    assert started.returncode == 1
    assert 'pip install "favmcp[otel]"' in started.stderr, started.stderr
    assert "Traceback" not in started.stderr
    assert not database.exists()  # it stopped before opening anything
