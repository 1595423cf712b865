"""Email channels: SMTP when FAVMCP_SMTP_URL is set, otherwise the local channel that only records."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlparse

import anyio

from favmcp.effects.models import OutboxMessage


class EmailChannel(Protocol):
    name: str

    async def send(self, message: OutboxMessage, body: str, html: str | None = None) -> None:
        """Deliver the message with its opened body and HTML alternative (the row holds them sealed)."""


class LocalChannel:
    """Keeps the message in the database (readable with `favmcp outbox list` until purged); sends nothing."""

    name = "local"

    async def send(self, message: OutboxMessage, body: str, html: str | None = None) -> None:
        return None


@dataclass
class SmtpChannel:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 20.0
    name: str = "smtp"

    @classmethod
    def from_url(cls, url: str, sender: str) -> SmtpChannel:
        """smtp://[user:password@]host[:port][?starttls=true]"""
        parts = urlparse(url)
        if parts.scheme != "smtp" or not parts.hostname:
            raise ValueError("FAVMCP_SMTP_URL must look like smtp://user:password@host:587?starttls=true")
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname,
            port=parts.port or 25,
            sender=sender,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            starttls=query.get("starttls", ["false"])[0].lower() in {"1", "true", "yes"},
        )

    async def send(self, message: OutboxMessage, body: str, html: str | None = None) -> None:
        await anyio.to_thread.run_sync(self._send, message, body, html)

    def _send(self, message: OutboxMessage, body: str, html: str | None) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        # Receivers can drop a duplicate delivered after a crash by this id.
        mail["Message-ID"] = f"<{message.id}@favmcp>"
        mail.set_content(body)
        if html:  # multipart/alternative: clients that show HTML show it, the others the text
            mail.add_alternative(html, subtype="html")
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(mail)
