"""MCP over stdio: one process, one person; the key comes from FAVMCP_API_KEY or the saved config.

A client starts this server for each session and waits for its tool list. When this code has served before, the
list comes from the listing cache and the client has it at once, while the domains load on a thread and the
database opens beside; a call that arrives before then waits for them. The first start after an install or an
upgrade opens everything first and keeps the listing for the next.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn, Self, cast

import anyio
import structlog
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse, RequestId

from favmcp.transports import listing as listings
from favmcp.transports.mcp import StdioCredential, build_server

log = structlog.get_logger("favmcp.stdio")

if TYPE_CHECKING:
    from anyio import AsyncFile
    from mcp.shared._stream_protocols import ReadStream, WriteStream

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
    """Stop the process with the command's one error line. Cancelling is not enough where the SDK's own transport
    serves (stdin a terminal or a file): it reads stdin on a thread that only returns when the client writes or hangs
    up."""
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
        cached = listings.built(settings, key, app.registry, app.runner.profiled)
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
            async with loop_pipes() as wire, stdio_server(*wire) as (read, write):
                await server.run(*answered_before_exit(read, write), server.create_initialization_options())
            tg.cancel_scope.cancel()
    finally:
        if loading.app is not None:
            with anyio.CancelScope(shield=True):
                await loading.app.close()


# How long the requests already read may still run once the client has closed stdin: long enough for the domains to
# load on a busy machine and for a call that sends mail; SDK clients signal the process after 2 s anyway.
DRAIN_SECONDS = 30.0


class Unanswered:
    """The client's requests read and not answered yet.

    The SDK stops serving at the end of stdin and cancels the handlers still running. A client that writes its
    requests and closes stdin (`favmcp serve < calls.jsonl`) thus lost the answers of its last ones. Here the end
    of input waits until they are answered (or cancelled by the client), for at most DRAIN_SECONDS: the spec has a
    client that closes stdin wait a while for the server to exit, then signal it."""

    def __init__(self) -> None:
        self.ids: set[RequestId] = set()
        self._none = anyio.Event()
        self._none.set()

    def read(self, item: SessionMessage | Exception) -> None:
        if not isinstance(item, SessionMessage):
            return
        message = item.message
        if isinstance(message, JSONRPCRequest):
            self.ids.add(message.id)
            if self._none.is_set():
                self._none = anyio.Event()
        elif isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled":
            self._settle((message.params or {}).get("requestId"))

    def written(self, item: SessionMessage) -> None:
        if isinstance(item.message, JSONRPCResponse | JSONRPCError):
            self._settle(item.message.id)

    def _settle(self, request_id: RequestId | None) -> None:
        self.ids.discard(request_id)  # an unknown or missing id settles nothing
        if not self.ids:
            self._none.set()

    async def drain(self) -> None:
        with anyio.move_on_after(DRAIN_SECONDS):
            await self._none.wait()
        if self.ids:
            log.warning("stdin_closed_with_requests_running", cancelled=len(self.ids), waited_seconds=DRAIN_SECONDS)


class Wrapped:
    """Closing, for a stream that wraps another: closes that one."""

    def __init__(self, close: Callable[[], Awaitable[None]]) -> None:
        self._close = close

    async def aclose(self) -> None:
        await self._close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class ReadsUntilAnswered(Wrapped):
    """The server's read stream, whose end waits for the requests read before it (see Unanswered)."""

    def __init__(self, stream: ReadStream[SessionMessage | Exception], unanswered: Unanswered) -> None:
        super().__init__(stream.aclose)
        self.stream = stream
        self.unanswered = unanswered

    @property
    def last_context(self) -> object:
        return getattr(self.stream, "last_context", None)  # the sender's context, where the stream keeps one

    async def receive(self) -> SessionMessage | Exception:
        try:
            item = await self.stream.receive()
        except anyio.EndOfStream:
            await self.unanswered.drain()
            raise
        self.unanswered.read(item)
        return item

    def __aiter__(self) -> ReadsUntilAnswered:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


class CountedAnswers(Wrapped):
    """The server's write stream, telling Unanswered which requests it answered."""

    def __init__(self, stream: WriteStream[SessionMessage], unanswered: Unanswered) -> None:
        super().__init__(stream.aclose)
        self.stream = stream
        self.unanswered = unanswered

    async def send(self, item: SessionMessage, /) -> None:
        await self.stream.send(item)
        self.unanswered.written(item)


def answered_before_exit(
    read: ReadStream[SessionMessage | Exception], write: WriteStream[SessionMessage]
) -> tuple[ReadsUntilAnswered, CountedAnswers]:
    """The server's streams, whose end of input waits for the requests already read (see Unanswered)."""
    unanswered = Unanswered()
    return ReadsUntilAnswered(read, unanswered), CountedAnswers(write, unanswered)


class WireLines:
    """The client's messages, a line each, as the SDK's stdio transport reads them (`async for line in stdin`)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def __aiter__(self) -> WireLines:
        return self

    async def __anext__(self) -> str:
        line = await self.reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class WireWriter:
    """Where the SDK's stdio transport writes its answers (`await stdout.write(...)`, `await stdout.flush()`)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def write(self, text: str) -> None:
        self.writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self.writer.drain()


# No line is too long: a call's arguments can be megabytes (an import), and the client is the process that started us.
LINE_LIMIT = 2**31


def _is_pipe(fd: int) -> bool:
    with suppress(OSError):
        mode = os.fstat(fd).st_mode
        return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
    return False


@asynccontextmanager
async def loop_pipes() -> AsyncIterator[tuple[AsyncFile[str], AsyncFile[str]] | tuple[None, None]]:
    """stdin and stdout read and written on the event loop itself, when both are pipes or sockets (as MCP clients
    start servers). The SDK's own stdio transport reads and writes them on worker threads: three trips to a thread
    and back per call, a good part of a short call's time. Elsewhere (a terminal, a file) that transport serves.

    As the SDK does, the wire gets descriptors of its own, and fds 0 and 1 point at the null device and at stderr
    while serving, so that a stray read or print in a handler or a child process misses the wire."""
    if sys.platform == "win32" or not (_is_pipe(0) and _is_pipe(1)):
        yield None, None
        return
    loop = asyncio.get_running_loop()
    wire_in, wire_out = os.dup(0), os.dup(1)
    nothing = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nothing, 0)
    os.close(nothing)
    os.dup2(2, 1)
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    reading, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
    )
    writing, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(wire_out, "wb", buffering=0)
    )
    # An answer is flushed when all of it is in the pipe, as with a blocking write: nothing waits in a buffer that
    # would be lost when the process ends right after (the client closed stdin after its last request).
    writing.set_write_buffer_limits(high=0)
    try:
        streams = WireLines(reader), WireWriter(asyncio.StreamWriter(writing, protocol, None, loop))
        yield cast("tuple[AsyncFile[str], AsyncFile[str]]", streams)  # the SDK iterates one, writes and flushes one
    finally:
        # The wire back where it was, in blocking mode: the mode belongs to the open pipe, which others may hold too.
        for fd, wire in ((0, wire_in), (1, wire_out)):
            with suppress(OSError):
                os.dup2(wire, fd)
                os.set_blocking(fd, True)
        reading.close()
        writing.close()
