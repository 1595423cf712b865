"""MCP over stdio: one process, one person; the key comes from FAVMCP_API_KEY or the saved config.

A client starts this server for each session and waits for its tool list. When this code has served before, the
list comes from the listing cache and the client has it at once, while the domains load on a thread and the
database opens beside; a call that arrives before then waits for them. The first start after an install or an
upgrade opens everything first and keeps the listing for the next.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NoReturn

import anyio
import structlog
from mcp.server.stdio import stdio_server

from favmcp.transports import listing as listings
from favmcp.transports.mcp import StdioCredential, build_server

log = structlog.get_logger("favmcp.stdio")

if TYPE_CHECKING:
    from favmcp.app import App
    from favmcp.config import Settings
    from favmcp.registry.domain import Platform
    from favmcp.registry.runner import Runner


class Loading:
    """The app being opened behind a server that already answers: calls wait for `runner()`."""

    def __init__(self, settings: Settings, app: App | None) -> None:
        self.settings = settings
        self.app = app
        self.ready = anyio.Event()
        if app is not None:
            self.ready.set()

    async def run(self) -> None:
        """Open the app (unless open), then deliver the outbox beside the server. A failure (the database cannot
        be reached, its schema is old) ends the process with the command's error line."""
        if self.app is None:
            try:
                app_type, platform = await anyio.to_thread.run_sync(_load_platform)
                self.app = await app_type.open(self.settings, platform=platform)
            except Exception as exc:
                _exit_for(exc)
            self.ready.set()
            from favmcp.transports.cli import settle

            settle()
        if self.settings.run_dispatcher:
            await self.app.run_background()

    async def runner(self) -> Runner:
        await self.ready.wait()
        assert self.app is not None
        return self.app.runner


def _exit_for(exc: Exception) -> NoReturn:
    """Stop the process with the command's one error line. Cancelling is not enough: the server reads stdin on a
    thread that only returns when the client writes or hangs up."""
    from favmcp.transports.cli import failure_message

    message = failure_message(exc)
    if message is None:
        log.exception("favmcp could not start")
    else:
        sys.stderr.write(f"favmcp: {message}\n")
    sys.stderr.flush()
    os._exit(1)


def _load_platform() -> tuple[type[App], Platform]:
    """The app and every domain's modules, imported off the event loop (the tool list is answered meanwhile)."""
    from favmcp import composition
    from favmcp.app import App

    return App, composition.platform()


async def serve_stdio(settings: Settings, api_key: str | None) -> None:
    cached, key = listings.load_cached(settings)
    app = None
    if cached is None:
        from favmcp.transports.cli import open_app

        app = await open_app(settings)
        listing = listings.Listing.of(app.registry)
        profiles = app.runner.profiled
        listings.save(settings, key, listing, profiles)
        cached = listings.Cached(listing, {name: listing.narrowed(r) for name, r in profiles.items()})
    loading = Loading(settings, app)

    known_profiles: dict[str, str | None] = {}  # this session's keys' (its key can change at signup)

    async def profile_of(secret: str) -> str | None:
        """The key's profile, remembered from an earlier session: the tool list of a key bound to a profile is
        that profile's from the first answer, before the database opens."""
        if secret in known_profiles:
            return known_profiles[secret]
        known, profile = listings.remembered_profile(settings, secret)
        if not known:
            from favmcp.auth import credentials

            runner = await loading.runner()
            profile = (await credentials.resolve(runner.db, secret, runner.clock.now())).profile
            listings.remember_profile(settings, secret, profile)
        known_profiles[secret] = profile
        return profile

    server = build_server(
        cached.listing,
        loading.runner,
        stdio_credential=StdioCredential(api_key),
        profiled=cached.profiled,
        profile_of=profile_of,
    )
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(loading.run)
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())
            tg.cancel_scope.cancel()
    finally:
        if loading.app is not None:
            with anyio.CancelScope(shield=True):
                await loading.app.close()
