"""A loopback SMTP server (aiosmtpd) that keeps every message it receives, for end-to-end tests."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage

import anyio
from aiosmtpd.smtp import SMTP, Envelope, Session

WAIT = 30.0  # seconds; the server's dispatcher polls its outbox every 0.5 s


class Mailbox:
    """Collects messages; tests wait for the one addressed to their (unique) recipient."""

    def __init__(self) -> None:
        self.port = 0
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self._arrived = anyio.Event()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mail = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        assert isinstance(mail, EmailMessage)
        self.messages.append(([r.lower() for r in envelope.rcpt_tos], mail))
        self._arrived.set()
        self._arrived = anyio.Event()
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [mail for rcpts, mail in self.messages if address.lower() in rcpts]

    async def wait_for(self, address: str) -> EmailMessage:
        """The first message to `address`, waiting up to WAIT seconds for it to arrive."""
        with anyio.fail_after(WAIT):
            while not self.to(address):
                await self._arrived.wait()
        return self.to(address)[0]

    async def code_for(self, address: str) -> str:
        """The 6-digit code in the first message to `address`."""
        body = (await self.wait_for(address)).get_body(preferencelist=("plain",))
        assert body is not None
        found = re.search(r"\b(\d{6})\b", body.get_content())
        assert found, f"no 6-digit code in the email to {address}"
        return found.group(1)


@asynccontextmanager
async def smtp_server() -> AsyncIterator[Mailbox]:
    """Serve SMTP on 127.0.0.1 (a free port) in the running event loop."""
    mailbox = Mailbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(mailbox, hostname="smtp.test"), host="127.0.0.1", port=0)
    mailbox.port = server.sockets[0].getsockname()[1]
    try:
        yield mailbox
    finally:
        server.close()
        await server.wait_closed()
