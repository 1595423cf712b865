"""Local stand-ins for the messaging providers, for tests that never reach the internet.

- `WhatsAppServer`: Meta's WhatsApp Cloud API (`POST /{version}/{phone_number_id}/messages`, `POST
  /{version}/{waba_id}/message_templates`, bearer token checked) and the webhooks Meta sends (status updates,
  inbound messages, template status updates), signed `X-Hub-Signature-256: sha256=<HMAC-SHA256(app secret, body)>`.
- `TwilioServer`: Twilio's Messages API (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded, basic
  auth checked) and Twilio's status callbacks and inbound messages signed `X-Twilio-Signature` with Twilio's own
  `RequestValidator`.
- `running_mail_server()`: the real SMTP server of tests/smtp_server.py that can also refuse recipients (5xx: a
  permanent bounce; 4xx: try later), and `email_event`/`post_email_event` for an ESP's bounce and complaint events
  signed with Standard Webhooks.

Every server records every request it receives (`received`) and can be switched to answer errors (`fail(500)`,
`fail(400, times=1)`, `recover()`) so retry and failure paths can be tested. `by_message_id()` groups what reached
a provider by our message id (WhatsApp's `biz_opaque_callback_data`, Twilio's StatusCallback `m=`, the mail's
Message-ID), for counting duplicates.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx
from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator

from tests.loopback_http import LoopbackHttp
from tests.smtp_server import SmtpServer, _LoopbackController, _Recorder

GRAPH_VERSION = "v21.0"
WHATSAPP_TOKEN = "EAAGtest0token"
WHATSAPP_APP_SECRET = "meta-app-secret-0123"
WHATSAPP_PHONE_NUMBER_ID = "106540352242922"
WHATSAPP_WABA_ID = "102290129340398"
TWILIO_ACCOUNT_SID = "AC" + "0" * 31 + "1"
TWILIO_AUTH_TOKEN = "twilio-auth-token-0123456789abcd"
TWILIO_FROM = "+15005550006"
EMAIL_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"esp-webhook-secret-0123456789ab").decode()


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: str
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None


@dataclass
class _HttpServer(LoopbackHttp):
    """A threaded HTTP server on loopback that records every request; subclasses answer them."""

    received: list[Received] = field(default_factory=list)
    delay: float = 0.0  # seconds between recording a request and answering it (a provider's own latency)
    # Report every accepted message as `sent` this many seconds later, as the providers do (None: never).
    report_after: float | None = None
    _failures: list[tuple[int, int | None]] = field(default_factory=list)  # (status, times left or None: always)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the error switch --------------------------------------------------------------------------------------

    def fail(self, status: int, times: int | None = None) -> None:
        """Answer `status` (with the provider's own error body) to the next `times` API calls, or all of them."""
        with self._lock:
            self._failures = [(status, times)]

    def recover(self) -> None:
        with self._lock:
            self._failures = []

    def _failing(self) -> int | None:
        if not self._failures:
            return None
        status, times = self._failures[0]
        if times is not None:
            if times <= 1:
                self._failures.pop(0)
            else:
                self._failures[0] = (status, times - 1)
        return status

    # -- requests ----------------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length).decode() if length else ""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        request = Received(method, url.path, dict(parse_qsl(url.query, keep_blank_values=True)), headers, raw)
        kind = headers.get("content-type", "")
        if raw and kind.startswith("application/json"):
            try:
                request.json = json.loads(raw)
            except ValueError:
                request.json = None
        elif raw:
            request.form = dict(parse_qsl(raw, keep_blank_values=True))
        with self._lock:
            self.received.append(request)
            status, body = self._answer(request)
        if self.delay:  # accepted already: a client that dies now has sent the message all the same
            time.sleep(self.delay)
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client died waiting (a killed worker)
            return

    def _answer(self, request: Received) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def _report_later(self, request: Received) -> None:
        if self.report_after is not None:
            threading.Timer(self.report_after, self._report, (request,)).start()

    def _report(self, request: Received) -> None:
        """POST the `sent` status callback of an accepted message (a provider's own callback)."""
        raise NotImplementedError


# -- WhatsApp Cloud API ----------------------------------------------------------------------------------------


@dataclass
class WhatsAppServer(_HttpServer):
    """Start with `with WhatsAppServer() as wa:`; `wa.base` is the Graph API base to configure
    (settings.whatsapp_api_base)."""

    token: str = WHATSAPP_TOKEN
    app_secret: str = WHATSAPP_APP_SECRET
    phone_number_id: str = WHATSAPP_PHONE_NUMBER_ID
    waba_id: str = WHATSAPP_WABA_ID
    display_number: str = "+15550001111"
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)  # provider id -> what was submitted
    sent: dict[str, Received] = field(default_factory=dict)  # wamid -> the accepted send
    webhook_url: str | None = None  # where report_after posts status callbacks (the app's /hooks/whatsapp/{id})

    @property
    def messages(self) -> list[Received]:
        """Every message send the API accepted or refused, in order."""
        path = f"/{GRAPH_VERSION}/{self.phone_number_id}/messages"
        return [r for r in self.received if r.method == "POST" and r.path == path]

    @property
    def template_submissions(self) -> list[Received]:
        path = f"/{GRAPH_VERSION}/{self.waba_id}/message_templates"
        return [r for r in self.received if r.method == "POST" and r.path == path]

    def wamid_of(self, request: Received) -> str:
        for message_id, accepted in self.sent.items():
            if accepted is request:
                return message_id
        raise AssertionError("that send was refused")

    def by_message_id(self) -> dict[str, list[Received]]:
        """Accepted sends grouped by our message id (their biz_opaque_callback_data)."""
        found: dict[str, list[Received]] = {}
        with self._lock:
            accepted = list(self.sent.values())
        for request in accepted:
            key = (request.json or {}).get("biz_opaque_callback_data")
            if key:
                found.setdefault(key, []).append(request)
        return found

    def _answer(self, request: Received) -> tuple[int, dict[str, Any]]:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, _graph_error("Error validating access token: Session has expired.", 190, "OAuthException")
        failing = self._failing()
        if failing is not None:
            if failing >= 500:
                return failing, _graph_error("An unknown error has occurred.", 1, "OAuthException")
            return failing, _graph_error(
                "(#131026) Message undeliverable", 131026, "OAuthException", "Receiver is incapable of receiving"
            )
        parts = request.path.strip("/").split("/")
        if request.method != "POST" or len(parts) != 3 or parts[0] != GRAPH_VERSION:
            return 404, _graph_error("Unknown path components", 2500, "OAuthException")
        body = request.json or {}
        if parts[2] == "messages" and parts[1] == self.phone_number_id:
            return self._send(request, body)
        if parts[2] == "message_templates" and parts[1] == self.waba_id:
            return self._submit_template(body)
        return 400, _graph_error(f"Unsupported post request. Object with ID '{parts[1]}' does not exist", 100)

    def _send(self, request: Received, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("messaging_product") != "whatsapp":
            return 400, _graph_error("(#100) The parameter messaging_product is required.", 100)
        kind = body.get("type", "text")
        if kind == "text" and not (body.get("text") or {}).get("body"):
            return 400, _graph_error("(#100) The parameter text['body'] is required.", 100)
        if kind == "template" and not (body.get("template") or {}).get("name"):
            return 400, _graph_error("(#100) The parameter template['name'] is required.", 100)
        to = str(body.get("to", ""))
        message_id = wamid()
        self.sent[message_id] = request
        self._report_later(request)
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
            "messages": [{"id": message_id, "message_status": "accepted"}],
        }

    def _submit_template(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for name in ("name", "language", "category", "components"):
            if not body.get(name):
                return 400, _graph_error(f"(#100) The parameter {name} is required.", 100)
        template_id = str(uuid.uuid4().int)[:15]
        self.templates[template_id] = body
        return 200, {"id": template_id, "status": "PENDING", "category": body["category"]}

    # -- webhooks (what Meta POSTs to the app) -----------------------------------------------------------------

    def _envelope(self, field_name: str, value: dict[str, Any]) -> dict[str, Any]:
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": self.waba_id, "changes": [{"value": value, "field": field_name}]}],
        }

    def _metadata(self) -> dict[str, str]:
        return {"display_phone_number": self.display_number.lstrip("+"), "phone_number_id": self.phone_number_id}

    def status_update(
        self,
        message_wamid: str,
        status: str,
        *,
        recipient: str,
        callback_data: str | None = None,
        timestamp: int | None = None,
        error_code: int | None = None,
    ) -> dict[str, Any]:
        """A `statuses` webhook: sent, delivered, read or failed (with an error code)."""
        entry: dict[str, Any] = {
            "id": message_wamid,
            "status": status,
            "timestamp": str(int(time.time()) if timestamp is None else timestamp),
            "recipient_id": recipient.lstrip("+"),
        }
        if callback_data is not None:
            entry["biz_opaque_callback_data"] = callback_data
        if status == "failed":
            code = error_code or 131026
            entry["errors"] = [
                {
                    "code": code,
                    "title": "Message undeliverable",
                    "message": "Message undeliverable",
                    "error_data": {"details": "Message Undeliverable."},
                }
            ]
        if status in {"sent", "delivered"}:
            entry["conversation"] = {"id": uuid.uuid4().hex, "origin": {"type": "marketing"}}
            entry["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "marketing"}
        return self._envelope(
            "messages", {"messaging_product": "whatsapp", "metadata": self._metadata(), "statuses": [entry]}
        )

    def status_for(self, request: Received, status: str, **kwargs: Any) -> dict[str, Any]:
        """A status update for a message this server accepted (its wamid, recipient and our callback data)."""
        body = request.json or {}
        return self.status_update(
            self.wamid_of(request),
            status,
            recipient=str(body["to"]),
            callback_data=body.get("biz_opaque_callback_data"),
            **kwargs,
        )

    def inbound_text(
        self, sender: str, text: str, *, name: str = "Customer", message_wamid: str | None = None
    ) -> dict[str, Any]:
        """A customer's text message to the business number (`from` is digits only, as Meta sends it)."""
        digits = sender.lstrip("+")
        value = {
            "messaging_product": "whatsapp",
            "metadata": self._metadata(),
            "contacts": [{"profile": {"name": name}, "wa_id": digits}],
            "messages": [
                {
                    "from": digits,
                    "id": message_wamid or wamid(),
                    "timestamp": str(int(time.time())),
                    "text": {"body": text},
                    "type": "text",
                }
            ],
        }
        return self._envelope("messages", value)

    def template_status(
        self, template_id: str, event: str, *, name: str = "template", language: str = "en", reason: str = "NONE"
    ) -> dict[str, Any]:
        """A `message_template_status_update`: APPROVED, REJECTED, PAUSED, DISABLED..."""
        value: dict[str, Any] = {
            "event": event,
            "message_template_id": int(template_id),
            "message_template_name": name,
            "message_template_language": language,
            "reason": reason,
        }
        return self._envelope("message_template_status_update", value)

    def _report(self, request: Received) -> None:
        if not self.webhook_url:
            return
        with self._lock:
            body = json.dumps(self.status_for(request, "sent"), separators=(",", ":"))
        headers = {"content-type": "application/json", "x-hub-signature-256": self.sign(body)}
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(self.webhook_url, content=body, headers=headers, timeout=10)

    def sign(self, body: str | bytes, secret: str | None = None) -> str:
        raw = body.encode() if isinstance(body, str) else body
        mac = hmac.new((secret or self.app_secret).encode(), raw, hashlib.sha256).hexdigest()
        return f"sha256={mac}"

    async def deliver(
        self,
        client: httpx.AsyncClient,
        url: str,
        payload: dict[str, Any],
        *,
        signature: str | None = None,
        secret: str | None = None,
    ) -> httpx.Response:
        """POST a webhook as Meta does, signed with the app secret (or the signature given)."""
        body = json.dumps(payload, separators=(",", ":"))
        header = signature if signature is not None else self.sign(body, secret)
        headers = {"content-type": "application/json", "x-hub-signature-256": header}
        return await client.post(url, content=body, headers=headers)


def wamid() -> str:
    return "wamid." + base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode().rstrip("=")


def _graph_error(message: str, code: int, kind: str = "OAuthException", details: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code, "fbtrace_id": uuid.uuid4().hex[:11]}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


# -- Twilio ----------------------------------------------------------------------------------------------------


@dataclass
class TwilioServer(_HttpServer):
    """Start with `with TwilioServer() as twilio:`; `twilio.base` is the API base to configure
    (settings.twilio_api_base)."""

    account_sid: str = TWILIO_ACCOUNT_SID
    auth_token: str = TWILIO_AUTH_TOKEN
    from_number: str = TWILIO_FROM
    sent: dict[str, Received] = field(default_factory=dict)  # SM sid -> the accepted request

    @property
    def messages(self) -> list[Received]:
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        return [r for r in self.received if r.method == "POST" and r.path == path]

    def by_message_id(self) -> dict[str, list[Received]]:
        """Accepted messages grouped by our message id (the `m` of their StatusCallback)."""
        found: dict[str, list[Received]] = {}
        with self._lock:
            accepted = list(self.sent.values())
        for request in accepted:
            callback = (request.form or {}).get("StatusCallback", "")
            key = parse_qs(urlsplit(callback).query).get("m", [""])[0]
            if key:
                found.setdefault(key, []).append(request)
        return found

    def sid_of(self, request: Received) -> str:
        for sid, accepted in self.sent.items():
            if accepted is request:
                return sid
        raise AssertionError("that request created no message")

    def _answer(self, request: Received) -> tuple[int, dict[str, Any]]:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return 401, _twilio_error(20003, "Authenticate", 401)
        failing = self._failing()
        if failing is not None:
            if failing >= 500:
                return failing, _twilio_error(20500, "Internal Server Error", failing)
            return failing, _twilio_error(21610, "Attempt to send to unsubscribed recipient", failing)
        if request.method != "POST" or request.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return 404, _twilio_error(20404, "The requested resource was not found", 404)
        form = request.form or {}
        if not form.get("To"):
            return 400, _twilio_error(21604, "A 'To' phone number is required.", 400)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return 400, _twilio_error(21603, "A 'From' phone number is required.", 400)
        if not form.get("Body") and not form.get("MediaUrl"):
            return 400, _twilio_error(21602, "Message body is required.", 400)
        sid = "SM" + uuid.uuid4().hex
        self.sent[sid] = request
        if form.get("StatusCallback"):
            self._report_later(request)
        now = format_datetime(datetime.now(UTC), usegmt=False)
        return 201, {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
            "to": form.get("To"),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }

    # -- callbacks (what Twilio POSTs to the app) --------------------------------------------------------------

    def status_callback(self, request: Received, status: str, *, error_code: str | None = None) -> tuple[str, dict]:
        """(url, params) of Twilio's status callback for a message it accepted: to its StatusCallback URL."""
        form = request.form or {}
        sid = self.sid_of(request)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": form.get("From", self.from_number),
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": form["To"],
        }
        if error_code is not None or status in {"failed", "undelivered"}:
            params["ErrorCode"] = error_code or "30003"
        return form["StatusCallback"], params

    def inbound(self, sender: str, text: str, *, to: str | None = None) -> dict[str, str]:
        """The params of an incoming SMS, as Twilio POSTs them to the number's messaging webhook."""
        sid = "SM" + uuid.uuid4().hex
        return {
            "ToCountry": "US",
            "ToState": "CA",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": text,
            "FromCountry": "US",
            "To": to or self.from_number,
            "MessagingServiceSid": "",
            "ToZip": "",
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": sender,
            "ApiVersion": "2010-04-01",
        }

    def _report(self, request: Received) -> None:
        with self._lock:
            url, params = self.status_callback(request, "sent")
        headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": self.sign(url, params)}
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(url, content=urlencode(params), headers=headers, timeout=10)

    def sign(self, url: str, params: dict[str, str], token: str | None = None) -> str:
        return RequestValidator(token or self.auth_token).compute_signature(url, params)

    async def deliver(
        self,
        client: httpx.AsyncClient,
        url: str,
        params: dict[str, str],
        *,
        signature: str | None = None,
        token: str | None = None,
        signed_url: str | None = None,
    ) -> httpx.Response:
        """POST a callback as Twilio does: form-encoded, signed over the full URL and the sorted params. `url` is
        where the request goes; `signed_url` (default `url`) what Twilio believes it requested (the public URL)."""
        header = signature if signature is not None else self.sign(signed_url or url, params, token)
        headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": header}
        return await client.post(url, content=urlencode(params), headers=headers)


def _twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    more = f"https://www.twilio.com/docs/errors/{code}"
    return {"code": code, "message": message, "more_info": more, "status": status}


# -- SMTP and the ESP's events ---------------------------------------------------------------------------------


class _RefusingRecorder(_Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.refuse: dict[str, str] = {}  # address -> the SMTP reply to RCPT TO
        self.refuse_all: str | None = None
        self.attempts: list[str] = []  # every RCPT TO, accepted or not
        self.delay = 0.0  # seconds between accepting a message and answering 250

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        if self.delay:
            await asyncio.sleep(self.delay)
        return answer

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        with self.lock:
            self.attempts.append(address)
            reply = self.refuse_all or self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"


class MailServer(SmtpServer):
    """tests/smtp_server.py's SmtpServer that can refuse: `bounce(address)` answers RCPT TO with 550 (a permanent
    refusal), `defer(address)` with 451 (try later), `fail_all(reply)` every recipient."""

    def __init__(self, controller: _LoopbackController, recorder: _RefusingRecorder) -> None:
        super().__init__(controller, recorder)
        self._refusing = recorder

    def bounce(self, address: str) -> None:
        self._refusing.refuse[address.lower()] = f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"

    def defer(self, address: str) -> None:
        self._refusing.refuse[address.lower()] = "451 4.3.0 Mailbox temporarily unavailable"

    def slow(self, delay: float) -> None:
        self._refusing.delay = delay

    def fail_all(self, reply: str | None) -> None:
        self._refusing.refuse_all = reply

    def recover(self) -> None:
        self._refusing.refuse.clear()
        self._refusing.refuse_all = None

    @property
    def attempts(self) -> list[str]:
        with self._refusing.lock:
            return list(self._refusing.attempts)

    def by_our_id(self) -> dict[str, list[Any]]:
        """Accepted mail grouped by our message id (Message-ID <msg_…@favmcp>, or whatever stands before the @)."""
        found: dict[str, list[Any]] = {}
        for key, mails in self.by_message_id().items():
            found.setdefault(key.strip("<>").split("@")[0], []).extend(mails)
        return found


@contextmanager
def running_mail_server() -> Iterator[MailServer]:
    recorder = _RefusingRecorder()
    controller = _LoopbackController(recorder, hostname="127.0.0.1", port=0, server_hostname="smtp.favmcp.test")
    controller.start()
    try:
        yield MailServer(controller, recorder)
    finally:
        controller.stop()


def email_event(kind: str, to: str, *, message_id: str | None = None, bounce_type: str = "Permanent") -> dict[str, Any]:
    """An ESP's event as Resend sends it: `email.bounced` or `email.complained` (or `email.delivered`...).
    `message_id` is the Message-ID header of the mail (our message id)."""
    data: dict[str, Any] = {
        "email_id": str(uuid.uuid4()),
        "from": "studio@example.com",
        "to": [to],
        "subject": "Hello",
        "created_at": datetime.now(UTC).isoformat(),
    }
    if message_id is not None:
        data["headers"] = [{"name": "Message-ID", "value": f"<{message_id}@favmcp>"}]
    if kind == "email.bounced":
        data["bounce"] = {"message": "550 5.1.1 user unknown", "type": bounce_type, "subType": "General"}
    return {"type": kind, "created_at": datetime.now(UTC).isoformat(), "data": data}


async def post_email_event(
    client: httpx.AsyncClient,
    url: str,
    event: dict[str, Any],
    *,
    secret: str = EMAIL_WEBHOOK_SECRET,
    event_id: str | None = None,
    timestamp: datetime | None = None,
    signature: str | None = None,
) -> httpx.Response:
    """POST an event signed with Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)."""
    body = json.dumps(event)
    msg_id = event_id or f"msg_{uuid.uuid4().hex}"
    at = timestamp or datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature or Webhook(secret).sign(msg_id, at, body),
    }
    return await client.post(url, content=body, headers=headers)


# -- all three -------------------------------------------------------------------------------------------------


@dataclass
class Providers:
    whatsapp: WhatsAppServer
    twilio: TwilioServer
    mail: MailServer


@contextmanager
def running_providers(settings: Any = None) -> Iterator[Providers]:
    """The three local providers; with `settings` (app.settings), points the API bases at them, allows loopback
    targets (the SMTP host) and gives the server a public address if it has none (marketing email needs one for
    its unsubscribe link; tests that receive callbacks set the served address themselves)."""
    with WhatsAppServer() as wa, TwilioServer() as tw, running_mail_server() as mail:
        if settings is not None:
            settings.whatsapp_api_base = wa.base
            settings.twilio_api_base = tw.base
            settings.allow_private_targets = True
            settings.public_url = settings.public_url or "https://studio.favmcp.test"
        yield Providers(wa, tw, mail)


# -- channels configured against them ---------------------------------------------------------------------------


def whatsapp_settings(wa: WhatsAppServer) -> dict[str, Any]:
    return {
        "channel": "whatsapp",
        "phone_number_id": wa.phone_number_id,
        "waba_id": wa.waba_id,
        "access_token": wa.token,
        "app_secret": wa.app_secret,
        "verify_token": "verify-me-0123",
        "from_number": wa.display_number,
    }


def sms_settings(tw: TwilioServer) -> dict[str, Any]:
    return {
        "channel": "sms",
        "account_sid": tw.account_sid,
        "auth_token": tw.auth_token,
        "from_number": tw.from_number,
    }


def email_settings(mail: MailServer) -> dict[str, Any]:
    return {
        "channel": "email",
        "host": mail.host,
        "port": mail.port,
        "starttls": False,
        "from_address": "studio@example.com",
        "webhook_secret": EMAIL_WEBHOOK_SECRET,
    }


async def configure_channels(app: Any, key: str, providers: Providers, **extra: Any) -> dict[str, dict[str, Any]]:
    """configure_channel for all three against the local providers (quiet hours off unless `extra` says);
    returns each channel's public view by channel name."""
    from tests.support import call

    found = {}
    for settings in (
        whatsapp_settings(providers.whatsapp),
        sms_settings(providers.twilio),
        email_settings(providers.mail),
    ):
        done = await call(app, key, "configure_channel", {"quiet_hours": None, **settings, **extra})
        assert done.ok, done.data
        found[settings["channel"]] = done.data
    return found
