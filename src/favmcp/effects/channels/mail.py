"""SMTP for messaging: one message to one customer through the workspace's own mail server, HTML and plain text,
`Message-ID` from our message id, and on marketing mail RFC 8058 one-click unsubscribe headers. A recipient the
server refuses with 5xx is a permanent bounce; 4xx and connection errors are tried again later."""

from __future__ import annotations

import html
import ipaddress
import smtplib
import socket
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import anyio

from favmcp.effects.channels.refused import ProviderUnavailable, Refused

TIMEOUT = 20.0
IMPLICIT_TLS_PORT = 465


@dataclass(frozen=True)
class SmtpAccount:
    host: str
    port: int
    from_address: str
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    allow_private: bool = False  # loopback and private hosts (an operator's choice, and tests')


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    message_id: str  # ours: the Message-ID is <message_id@favmcp>
    unsubscribe_url: str | None = None  # marketing mail: List-Unsubscribe with one-click


def is_private_address(value: str) -> bool:
    """A loopback, private, link-local or otherwise internal IP address."""
    try:
        address = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return not address.is_global or address.is_multicast


def is_private_host(host: str) -> bool:
    """What can be told without resolving: an internal IP literal, or a local name."""
    name = host.strip().rstrip(".").lower()
    return is_private_address(name) or name == "localhost" or name.endswith((".localhost", ".local", ".internal"))


def html_of(text: str, unsubscribe_url: str | None) -> str:
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    if unsubscribe_url:
        link = html.escape(unsubscribe_url, quote=True)
        body += f'<p style="font-size:12px;color:#666"><a href="{link}">Unsubscribe</a></p>'
    return f'<!doctype html><html><body style="font-family:sans-serif">{body}</body></html>'


def build(account: SmtpAccount, mail: Mail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = account.from_address
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = f"<{mail.message_id}@favmcp>"  # a copy sent again after a crash carries the same id
    text = mail.text
    if mail.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        text += f"\n\n--\nUnsubscribe: {mail.unsubscribe_url}"
    message.set_content(text)
    message.add_alternative(html_of(mail.text, mail.unsubscribe_url), subtype="html")
    return message


async def send_mail(account: SmtpAccount, mail: Mail) -> str:
    """Send; returns the Message-ID. Raises Refused for a permanent refusal, ProviderUnavailable otherwise."""
    message = build(account, mail)
    await anyio.to_thread.run_sync(_send, account, message)
    return str(message["Message-ID"])


def _check_target(account: SmtpAccount) -> None:
    if account.allow_private:
        return
    if is_private_host(account.host):
        raise Refused(f"The SMTP host {account.host} is a private address.", credentials=True)
    try:
        infos = socket.getaddrinfo(account.host, account.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ProviderUnavailable(f"SMTP host does not resolve: {exc}") from exc
    if any(is_private_address(str(info[4][0])) for info in infos):
        raise Refused(f"The SMTP host {account.host} resolves to a private address.", credentials=True)


def _send(account: SmtpAccount, message: EmailMessage) -> None:
    _check_target(account)
    try:
        # Port 465 speaks TLS from the first byte (RFC 8314); other ports upgrade with STARTTLS when asked.
        connect = smtplib.SMTP_SSL if account.port == IMPLICIT_TLS_PORT else smtplib.SMTP
        with connect(account.host, account.port, timeout=TIMEOUT) as smtp:
            if account.starttls and connect is smtplib.SMTP:
                smtp.starttls()
            if account.username:
                smtp.login(account.username, account.password or "")
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        detail = f"{code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
        if 500 <= code < 600:
            refused = f"The mail server refused the recipient: {detail}"[:500]
            raise Refused(refused, code=str(code), bounce=True) from exc
        raise ProviderUnavailable(f"The mail server deferred the recipient: {detail}"[:500]) from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise Refused(f"The mail server refused the login: {exc.smtp_code}", credentials=True) from exc
    except smtplib.SMTPResponseException as exc:  # sender refused, data refused
        if 500 <= exc.smtp_code < 600:
            raise Refused(f"The mail server refused the message: {exc.smtp_code}", code=str(exc.smtp_code)) from exc
        raise ProviderUnavailable(f"The mail server answered {exc.smtp_code}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise ProviderUnavailable(f"SMTP: {type(exc).__name__}: {exc}"[:500]) from exc
