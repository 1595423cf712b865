"""A local stand-in for the parts of Stripe's API favmcp uses, for tests that never reach the internet.

It speaks POST /v1/checkout/sessions, POST /v1/refunds and GET /v1/events (form-encoded requests, JSON answers,
Idempotency-Key replays like Stripe's), records every request it receives, and makes and signs events the way
Stripe does (`Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256(secret, "<t>.<payload>")>`), to be sent to a
webhook URL: once, several times, out of order, or with a bad signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.loopback_http import LoopbackHttp


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, Any]

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


def nested(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding read back: a[b][0][c]=x is {"a": {"b": [{"c": "x"}]}}."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt: Any = value if last else ([] if parts[i + 1].isdigit() else {})
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None or last:
                    node[index] = nxt
                node = node[index]
            else:
                if part not in node or last:
                    node[part] = nxt
                node = node[part]
    return root


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@dataclass
class StripeServer(LoopbackHttp):
    """Start with `with StripeServer() as stripe:`; `stripe.base` is the API base to configure."""

    refund_status: str = "pending"  # what POST /v1/refunds answers; "error" answers 400
    received: list[Received] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    _replies: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    # -- the API -----------------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length).decode() if length else ""
        pairs = parse_qsl(raw if method == "POST" else url.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        request = Received(method, url.path, headers, nested(pairs))
        with self._lock:
            self.received.append(request)
            status, body = self._answer(request)
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(self, request: Received) -> tuple[int, dict[str, Any]]:
        if not request.headers.get("authorization", "").startswith("Bearer sk_"):
            return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}
        key = request.idempotency_key
        if request.method == "POST" and key and key in self._replies:
            return self._replies[key]
        if (request.method, request.path) == ("POST", "/v1/checkout/sessions"):
            reply = 200, self._create_session(request.form)
        elif (request.method, request.path) == ("POST", "/v1/refunds"):
            reply = self._create_refund(request.form)
        elif (request.method, request.path) == ("GET", "/v1/events"):
            reply = 200, self._list_events(request.form)
        else:
            reply = 404, {"error": {"type": "invalid_request_error", "message": f"No such route {request.path}"}}
        if request.method == "POST" and key:
            self._replies[key] = reply
        return reply

    def _create_session(self, form: dict[str, Any]) -> dict[str, Any]:
        item = form["line_items"][0]
        session_id = f"cs_test_{uuid.uuid4().hex}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": form["mode"],
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": int(item["price_data"]["unit_amount"]) * int(item["quantity"]),
            "currency": item["price_data"]["currency"],
            "metadata": form.get("metadata", {}),
            "client_reference_id": form.get("client_reference_id"),
            "expires_at": int(form["expires_at"]),
            "payment_intent": None,
            "url": f"{self.base}/c/pay/{session_id}",
            "customer_details": None,
        }
        self.sessions[session_id] = session
        return session

    def _create_refund(self, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.refund_status == "error":
            return 400, {"error": {"type": "invalid_request_error", "message": "Charge has already been refunded."}}
        refund = {
            "id": f"re_{uuid.uuid4().hex[:24]}",
            "object": "refund",
            "amount": int(form["amount"]),
            "currency": "eur",
            "payment_intent": form.get("payment_intent"),
            "metadata": form.get("metadata", {}),
            "status": self.refund_status,
            "failure_reason": None,
        }
        self.refunds[refund["id"]] = refund
        return 200, refund

    def _list_events(self, query: dict[str, Any]) -> dict[str, Any]:
        since = int((query.get("created") or {}).get("gte", 0))
        types = query.get("types")
        found = [e for e in self.events if e["created"] >= since and (not types or e["type"] in types)]
        found.sort(key=lambda e: (e["created"], e["id"]), reverse=True)  # newest first, as Stripe lists
        if query.get("starting_after"):
            ids = [e["id"] for e in found]
            found = found[ids.index(query["starting_after"]) + 1 :]
        limit = int(query.get("limit", 10))
        return {"object": "list", "url": "/v1/events", "data": found[:limit], "has_more": len(found) > limit}

    # -- events ------------------------------------------------------------------------------------------------

    def event(self, kind: str, obj: dict[str, Any], created: int | None = None) -> dict[str, Any]:
        made = {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "api_version": "2025-01-27.acacia",
            "created": int(time.time()) if created is None else created,
            "livemode": False,
            "pending_webhooks": 1,
            "type": kind,
            "data": {"object": obj},
        }
        self.events.append(made)
        return made

    def complete(self, session_id: str, email: str = "payer@example.com") -> dict[str, Any]:
        """The customer paid on the hosted page: the session completes (an event, listed and returned)."""
        session = self.sessions[session_id]
        session.update(
            status="complete",
            payment_status="paid",
            payment_intent=f"pi_{uuid.uuid4().hex[:24]}",
            customer_details={"email": email},
        )
        return self.event("checkout.session.completed", dict(session))

    def refund_event(self, refund_id: str, status: str, kind: str = "refund.updated") -> dict[str, Any]:
        refund = self.refunds[refund_id]
        refund["status"] = status
        if status == "failed":
            refund["failure_reason"] = "expired_or_canceled_card"
        return self.event(kind, dict(refund))

    @staticmethod
    async def deliver(
        client: httpx.AsyncClient,
        url: str,
        event: dict[str, Any],
        secret: str,
        *,
        signature: str | None = None,
        timestamp: int | None = None,
    ) -> httpx.Response:
        """POST the event to a webhook as Stripe does, signed with `secret` (or with the signature given)."""
        payload = json.dumps(event)
        header = signature if signature is not None else sign(payload, secret, timestamp)
        headers = {"Stripe-Signature": header, "content-type": "application/json"}
        return await client.post(url, content=payload, headers=headers)
