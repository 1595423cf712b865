"""OpenTelemetry traces (FAVMCP_OTEL=1): one span per tool call, made where the runner logs the call, exported over
OTLP/HTTP as the standard OTEL_* variables say; an HTTP request's W3C traceparent makes the call part of that trace.

Imported only when FAVMCP_OTEL is on (its setting checks that the extra is installed), so a server without it never
loads the OpenTelemetry SDK. (The OpenTelemetry API is another matter: the MCP SDK imports it for spans of its own,
which stay no-ops until a tracer provider is set.)"""

from __future__ import annotations

import functools
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Receive, Scope, Send

from favmcp import __version__
from favmcp.auth import credentials

if TYPE_CHECKING:
    from favmcp.registry.results import CallResult
    from favmcp.registry.runner import Trace

# Whether the current call came in over HTTP (set by TraceContext, which wraps every HTTP request); REST calls are
# told apart by the REST API's own flag.
_OVER_HTTP: ContextVar[bool] = ContextVar("favmcp_over_http", default=False)


@functools.cache
def _tracer() -> trace.Tracer:
    """The process's tracer provider, made once and set as the global one, so the MCP SDK's own `tools/call` spans
    are exported too and a tool call's span nests under them. The SDK reads the OTEL_* variables (endpoint,
    headers, sampler, batch delays, resource attributes); the service is called favmcp unless they name it."""
    resource = Resource.create({SERVICE_VERSION: __version__})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "favmcp"}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return trace.get_tracer("favmcp", __version__)


def transport() -> str:
    if credentials.REST_REQUEST.get():
        return "rest"
    return "mcp" if _OVER_HTTP.get() else "local"  # local: the stdio server or a CLI command


class Telemetry:
    """Made when the runner is (so a missing extra stops the server at start-up, not at its first call)."""

    def __init__(self) -> None:
        self.tracer = _tracer()

    def record(self, trace_: Trace, result: CallResult, seconds: float) -> None:
        """The span of one finished call. Made after the fact with its measured start, so the runner's call path
        is not wrapped; it carries no arguments and nothing personal: names, codes and opaque ids."""
        end = time.time_ns()
        tool = trace_.spec.name if trace_.spec else "(unknown)"  # a made-up name must not name a span
        if not result.ok:
            outcome = result.data["error"]["code"]
        elif result.data.get("status") == "pending_approval":
            outcome = "pending_approval"
        else:
            outcome = "ok"
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "favmcp.transport": transport(),
            "favmcp.outcome": outcome,
            "favmcp.request_id": result.request_id,
            "favmcp.idempotent_replay": trace_.replayed,
        }
        if trace_.profile is not None:
            attributes["favmcp.profile"] = trace_.profile
        if trace_.subject is not None and trace_.subject.workspace_id:
            attributes["favmcp.workspace_id"] = trace_.subject.workspace_id
        if not result.ok:
            attributes["error.type"] = outcome
        # Under the MCP SDK's tools/call span (a local parent) this one is internal; otherwise it is the server's
        # answer to the request (REST, stdio, or a caller's trace joined through traceparent).
        parent = trace.get_current_span().get_span_context()
        kind = SpanKind.INTERNAL if parent.is_valid and not parent.is_remote else SpanKind.SERVER
        span = self.tracer.start_span(
            f"execute_tool {tool}", kind=kind, attributes=attributes, start_time=end - int(seconds * 1e9)
        )
        if not result.ok:
            span.set_status(StatusCode.ERROR, outcome)
        span.end(end_time=end)


class TraceContext:
    """ASGI middleware: a request's W3C trace context (traceparent, tracestate, or whatever OTEL_PROPAGATORS
    names) becomes the current context while it is served, so its tool call's span joins the caller's trace, on
    /mcp and the REST API alike."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        joined = context.attach(propagate.extract(carrier))
        over_http = _OVER_HTTP.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            _OVER_HTTP.reset(over_http)
            context.detach(joined)
