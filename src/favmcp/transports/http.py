"""Streamable HTTP at /mcp (stateless: replicas share one database; a credential required) and /mcp/public (the
tools that need none), the OAuth authorization server, /healthz and the public server card."""

from __future__ import annotations

import contextlib
import functools
import gc
import hmac
import ipaddress
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types.version import SUPPORTED_PROTOCOL_VERSIONS
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from favmcp import __version__
from favmcp import logging as favlog
from favmcp.app import App
from favmcp.auth import scopes
from favmcp.auth.oauth import routes as oauth
from favmcp.auth.oauth.provider import Provider
from favmcp.auth.oauth.urls import MCP_PATH, PUBLIC_MCP_PATH, profile_path
from favmcp.config import LOCAL_HOSTS, Settings
from favmcp.registry.domain import HttpEndpoint
from favmcp.registry.registry import Registry
from favmcp.registry.runner import Runner
from favmcp.skills import load_all, skill_uri
from favmcp.transports import rest
from favmcp.transports.listing import Listing, cached_or_built, tool_definition
from favmcp.transports.mcp import INSTRUCTIONS, build_server, skill_prompt

MAX_BODY = 1_000_000
LOCAL_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


class PostOnly:
    """Answers anything but POST at the MCP endpoint with 405 Method Not Allowed.

    The server is stateless: every exchange is one POST, and there is no session to resume or to DELETE. Left to
    the SDK, a GET opens a standalone SSE stream that nothing ever writes to and that stays open, without a key,
    until the client leaves: a cheap way to exhaust the server's file descriptors. Clients treat 405 on GET as
    "this server offers no such stream" (the specification's answer for it).
    """

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] != "POST":
            error = {"code": -32600, "message": "Method Not Allowed: this stateless server takes POST only"}
            response = JSONResponse(
                {"jsonrpc": "2.0", "id": None, "error": error}, status_code=405, headers={"Allow": "POST"}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def server_card(app: App) -> dict[str, Any]:
    return {
        "name": "favmcp",
        "title": "favmcp",
        "version": __version__,
        "description": "An agentic backend for service businesses.",
        "instructions": INSTRUCTIONS,
        "protocolVersions": list(SUPPORTED_PROTOCOL_VERSIONS),
        "transport": {"type": "streamable-http", "endpoint": MCP_PATH},
        "authentication": {
            "required": True,
            "schemes": ["bearer", "oauth2"],
            "note": f"OAuth 2.1 (metadata at /.well-known/oauth-protected-resource{MCP_PATH}) or an API key as a "
            f"bearer token; the tools that need neither (signup, whoami, discovery) are at {PUBLIC_MCP_PATH}",
        },
        "tools": [tool_definition(s).model_dump(by_alias=True, exclude_none=True) for s in app.registry.listed()],
        "prompts": [skill_prompt(skill).model_dump(by_alias=True, exclude_none=True) for skill in load_all().values()],
        "resources": [
            {"uri": skill_uri(name), "name": name, "description": skill.description, "mimeType": "text/markdown"}
            for name, skill in load_all().items()
        ],
    }


def _metrics_refusal(setting: str, request: Request) -> Response | None:
    """FAVMCP_METRICS=1: loopback requests only, and none a proxy forwarded (a proxy on this host looks local);
    any other value: the scraper's bearer token."""
    if setting == "1":
        host = request.client.host if request.client else ""
        try:
            local = ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = False
        if local and "x-forwarded-for" not in request.headers and "forwarded" not in request.headers:
            return None
        return PlainTextResponse("Metrics are served to loopback requests only.", status_code=403)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), setting.encode()):
        return None
    return PlainTextResponse(
        "Send the metrics token as a bearer token.", status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )


def _bound(endpoint: HttpEndpoint, app: App) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        return await endpoint(request, app.runner)

    return handle


def build_http_app(app: App, *, run_dispatcher: bool | None = None) -> Starlette:
    async def runner() -> Runner:
        return app.runner

    domains = [d.name for d in app.runner.platform.domains]
    listed = cached_or_built(app.settings, app.registry, app.runner.profiled, domains)
    server = build_server(listed.listing, runner, profiled=listed.profiled)
    # /mcp/p/<profile>: the profile's tools only, whatever the credential (the guard refuses one bound elsewhere).
    profile_servers = {name: build_server(narrow, runner) for name, narrow in listed.profiled.items()}
    # /mcp/public lists the tools that need no credential; the same runner answers, so discovery still finds every
    # tool, and anything else called there is unauthenticated (the guard drops any credential sent to it).
    public_tools = Registry([s for s in app.registry.listed() if s.scope == scopes.PUBLIC])
    public = build_server(Listing.of(public_tools), runner)
    provider = Provider(app.db, app.settings, app.runner.clock, app.runner.random)
    # Made at the first request, from the tools themselves: building every tool's definition here would undo the
    # kept listing at every start.
    card = functools.cache(lambda: server_card(app))

    async def healthz(request: Request) -> JSONResponse:
        try:
            async with app.db.reader.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__})

    async def card_endpoint(request: Request) -> JSONResponse:
        return JSONResponse(card())

    async def metrics(request: Request) -> Response:
        setting = app.settings.metrics
        if setting is None:
            return PlainTextResponse("Not Found", status_code=404)
        refusal = _metrics_refusal(setting, request)
        if refusal is not None:
            return refusal
        body = await app.runner.metrics.scrape(app.db, app.runner.clock.now())
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=LOCAL_HOSTS + app.settings.allowed_hosts,
        allowed_origins=LOCAL_ORIGINS + app.settings.allowed_origins,
    )
    options: dict[str, Any] = {
        "stateless_http": True,
        "json_response": False,
        "transport_security": security,
        "max_request_body_size": MAX_BODY,
    }
    public_app = public.streamable_http_app(streamable_http_path=PUBLIC_MCP_PATH, **options)
    public_route = next(r for r in public_app.routes if isinstance(r, Route))
    profile_routes = [
        next(
            r
            for r in profile_server.streamable_http_app(streamable_http_path=profile_path(name), **options).routes
            if isinstance(r, Route)
        )
        for name, profile_server in profile_servers.items()
    ]
    starlette = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        **options,
        custom_starlette_routes=[
            public_route,
            *profile_routes,
            *oauth.routes(provider, app.runner),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/.well-known/mcp/server-card.json", card_endpoint, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *[
                Route(route.split(" ", 1)[1], _bound(endpoint, app), methods=[route.split(" ", 1)[0]])
                for route, endpoint in app.runner.platform.http_routes.items()
            ],
            *rest.routes(app),
        ],
    )
    starlette.add_middleware(PostOnly, path=MCP_PATH)
    starlette.add_middleware(PostOnly, path=PUBLIC_MCP_PATH)
    for name in profile_servers:
        starlette.add_middleware(PostOnly, path=profile_path(name))
    starlette.add_middleware(oauth.McpGuard, provider=provider)  # outermost: no credential, no further
    if app.settings.otel:  # outside the guard too, so that every request's trace context is in place
        from favmcp.telemetry import TraceContext

        starlette.add_middleware(TraceContext)
    dispatch = app.settings.run_dispatcher if run_dispatcher is None else run_dispatcher

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as managers, anyio.create_task_group() as tg:
            for each in (server, public, *profile_servers.values()):
                await managers.enter_async_context(each.session_manager.run())
            if dispatch:
                tg.start_soon(app.run_background)
            yield
            tg.cancel_scope.cancel()

    starlette.router.lifespan_context = lifespan
    return starlette


def create_app() -> WorkerApp:
    """The app factory of `favmcp serve --http --workers N`: uvicorn calls it in each worker process."""
    # Every line says which worker wrote it: the workers share one stderr.
    favlog.configure(os.environ.get("FAVMCP_LOG_LEVEL", "INFO"), process_id=True)
    return WorkerApp(Settings.from_env())


class WorkerApp:
    """One worker's server. A factory cannot await, so favmcp opens (database pool, dispatcher) when the worker's
    lifespan starts and closes when it ends; requests come only in between."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        assert self.http is not None, "a request before the lifespan started"
        await self.http(scope, receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        async with contextlib.AsyncExitStack() as stack:
            try:
                app = await App.open(self.settings)
                stack.push_async_callback(app.close)
                self.http = build_http_app(app)
                await stack.enter_async_context(self.http.router.lifespan_context(self.http))
                gc.freeze()  # what start-up made lives as long as the worker: full collections need not scan it
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})
