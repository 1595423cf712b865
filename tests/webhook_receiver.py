"""A local webhook receiver for tests: an HTTP server on loopback that checks each POST with the reference
`standardwebhooks` library (Webhook(secret).verify), answers the status codes a test chooses, can be slow, and
records every request it receives.

    with WebhookReceiver() as receiver:
        receiver.secrets["/a"] = secret          # what verifies requests to receiver.url("/a")
        receiver.answers += [500, 500]           # the next two answers; then `status` (200)
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook, WebhookVerificationError

from tests.loopback_http import LoopbackHttp


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str | None  # why verification failed
    answered: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


@dataclass
class WebhookReceiver(LoopbackHttp):
    status: int = 200  # the answer once `answers` is used up
    delay: float = 0.0  # seconds to wait before answering
    answers: list[int] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    holding: threading.Event = field(default_factory=threading.Event)  # set once a request is held by `delay`
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"{self.base}{path}"

    def to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = urlsplit(handler.path).path
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        verified, error = False, None
        secret = self.secrets.get(path)
        if secret is None:
            error = "no secret for this path"
        else:
            try:
                Webhook(secret).verify(body, headers)
                verified = True
            except WebhookVerificationError as exc:
                error = str(exc)
        if self.delay:
            self.holding.set()
            time.sleep(self.delay)
        with self._lock:
            answer = self.answers.pop(0) if self.answers else self.status
            self.received.append(Received(path, headers, body, verified, error, answer))
        handler.send_response(answer)
        if 300 <= answer < 400:
            handler.send_header("location", self.url("/redirected"))
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", "2")
        handler.end_headers()
        handler.wfile.write(b"{}")
