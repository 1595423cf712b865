"""A real SMTP server on loopback (aiosmtpd, in its own thread) that records every message it accepts."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

import anyio
from aiosmtpd.controller import Controller

WAIT = 30.0  # seconds; a server's dispatcher polls its outbox every 0.5 s


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return cast(str, part.get_content())  # type: ignore[attr-defined]


class _Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = cast(EmailMessage, message_from_bytes(raw, policy=policy.default))
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class _LoopbackController(Controller):
    """Binds port 0 and learns the port the kernel chose before aiosmtpd's own readiness probe."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    def __init__(self, controller: _LoopbackController, recorder: _Recorder) -> None:
        self._controller = controller
        self._recorder = recorder
        self.host: str = controller.hostname
        self.port: int = controller.port

    @property
    def messages(self) -> list[Received]:
        with self._recorder.lock:
            return list(self._recorder.received)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]

    async def wait_for(self, address: str) -> Received:
        """The first message to `address`, waiting up to WAIT seconds for a server's dispatcher to deliver it."""
        with anyio.fail_after(WAIT):
            while not self.to(address):  # noqa: ASYNC110 - messages arrive on the SMTP server's own thread
                await anyio.sleep(0.05)
        return self.to(address)[0]

    async def code_for(self, address: str) -> str:
        """The 6-digit code in the first message to `address`."""
        found = re.search(r"\b(\d{6})\b", (await self.wait_for(address)).body)
        assert found, f"no 6-digit code in the email to {address}"
        return found.group(1)

    def by_message_id(self) -> dict[str, list[Received]]:
        found: dict[str, list[Received]] = {}
        for received in self.messages:
            found.setdefault(str(received.message["Message-ID"]), []).append(received)
        return found


@contextmanager
def running_smtp_server() -> Iterator[SmtpServer]:
    recorder = _Recorder()
    controller = _LoopbackController(recorder, hostname="127.0.0.1", port=0, server_hostname="smtp.favmcp.test")
    controller.start()
    try:
        yield SmtpServer(controller, recorder)
    finally:
        controller.stop()


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it) but never listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()
