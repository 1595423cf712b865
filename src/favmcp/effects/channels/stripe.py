"""Stripe as an outbox channel, and the one way favmcp builds a Stripe client.

A change that needs Stripe to act (a refund) writes an outbox row in its own transaction: channel "stripe", the
request sealed as the body. The dispatcher sends it after commit with the workspace's Stripe key as it is then (no
copy of a key is ever stored in the outbox) and the row id as Stripe's Idempotency-Key, so a retry after a crash
never refunds twice, and keeps Stripe's answer (object id and status) on the row.

The Stripe settings themselves are read here too: a workspace's own keys (sealed in `workspaces.payment_provider`,
set through update_workspace), else the install's (FAVMCP_STRIPE_SECRET_KEY, for a single business).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from cryptography.exceptions import InvalidTag

from favmcp.config import Settings
from favmcp.core.ids import new_id
from favmcp.core.money import Money
from favmcp.core.sealing import seal, unseal
from favmcp.db.engine import Database
from favmcp.db.tenancy import PAYMENT_PROVIDER_SEAL, Workspace
from favmcp.effects.models import OutboxKind, OutboxMessage, Undeliverable
from favmcp.effects.outbox import SEAL_PURPOSE

# The library is imported where it is first used: it costs a tenth of a second at startup, which most processes
# (a stdio session, a one-shot CLI call) never need.
if TYPE_CHECKING:
    import stripe

log = structlog.get_logger("favmcp.payments")

CHANNEL = "stripe"
TIMEOUT = 20.0  # seconds for one Stripe request; the outbox retries later, a tool answers retryable


@dataclass(frozen=True)
class StripeConfig:
    secret_key: str
    webhook_secret: str | None
    api_base: str | None


def open_provider(settings: Settings, sealed: str | None) -> dict[str, Any] | None:
    """The stored settings; None when there are none, or when no server secret in use opens them any more (a
    secret retired before they were resealed: logged, and the keys must be set again)."""
    if not sealed:
        return None
    try:
        opened = unseal(settings.secret_keys, PAYMENT_PROVIDER_SEAL, sealed)
    except InvalidTag:
        log.error("payment_provider_unreadable", hint="set the Stripe keys again with update_workspace")
        return None
    return dict(opened) if isinstance(opened, dict) else None


def stripe_config(settings: Settings, workspace: Workspace) -> StripeConfig | None:
    opened = open_provider(settings, workspace.payment_provider)
    if opened is not None and opened.get("provider", CHANNEL) == CHANNEL and opened.get("secret_key"):
        return StripeConfig(str(opened["secret_key"]), opened.get("webhook_secret"), settings.stripe_api_base)
    if settings.stripe_secret_key:
        return StripeConfig(settings.stripe_secret_key, settings.stripe_webhook_secret, settings.stripe_api_base)
    return None


# Where Stripe's API counts a currency in smaller units than ISO 4217: ISK has no minor unit in ISO 4217, but Stripe
# keeps it two-decimal (100 is one króna, and amounts must be whole krónur).
STRIPE_EXTRA_DIGITS = {"ISK": 2}
# Three-decimal currencies whose last digit Stripe requires to be 0 (its payment partners settle in tens).
STRIPE_TENS = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def to_stripe(money: Money) -> int:
    """An amount in Stripe's units for its currency."""
    return money.minor * 10 ** STRIPE_EXTRA_DIGITS.get(money.currency, 0)


def from_stripe(amount: int, currency: str) -> Money:
    """An amount Stripe states (its units, its lowercase currency code) in ISO 4217 minor units."""
    code = currency.upper()
    return Money(amount // 10 ** STRIPE_EXTRA_DIGITS.get(code, 0), code)


def stripe_takes(money: Money) -> bool:
    """Whether Stripe accepts the amount as it is (three-decimal currencies only in whole tens)."""
    return money.currency not in STRIPE_TENS or money.minor % 10 == 0


def refusals() -> tuple[type[stripe.StripeError], ...]:
    """Stripe's refusals that no retry changes (a bad request, a revoked key, a declined card); anything else
    (network, rate limits, Stripe's own 5xx, a concurrent request with the same key) is worth another attempt."""
    import stripe

    return (stripe.InvalidRequestError, stripe.AuthenticationError, stripe.PermissionError, stripe.CardError)


def signature_error() -> type[stripe.SignatureVerificationError]:
    """A webhook whose Stripe-Signature does not check out."""
    import stripe

    return stripe.SignatureVerificationError


def failure() -> type[stripe.StripeError]:
    """Any error of the Stripe library (refusals included)."""
    import stripe

    return stripe.StripeError


@asynccontextmanager
async def stripe_client(api_key: str, api_base: str | None) -> AsyncIterator[stripe.StripeClient]:
    """A StripeClient on HTTPX for async calls, at `api_base` (a local server in tests), closed afterwards."""
    import stripe

    http = stripe.HTTPXClient(timeout=TIMEOUT)
    try:
        yield stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=http,
            max_network_retries=0,
        )
    finally:
        await http.close_async()


async def create_checkout_session(
    api_key: str, api_base: str | None, params: Any, idempotency_key: str
) -> stripe.checkout.Session:
    """POST /v1/checkout/sessions with an Idempotency-Key: a retry of one call gets the same session back."""
    async with stripe_client(api_key, api_base) as client:
        return await client.v1.checkout.sessions.create_async(params, options={"idempotency_key": idempotency_key})


async def list_events(
    api_key: str, api_base: str | None, *, since: int, types: list[str], max_pages: int
) -> list[dict[str, Any]]:
    """GET /v1/events of `types` created at or after `since` (unix time), up to max_pages of 100, oldest first."""
    found: list[dict[str, Any]] = []
    params: Any = {"created": {"gte": since}, "types": types, "limit": 100}
    async with stripe_client(api_key, api_base) as client:
        for _ in range(max_pages):
            page = await client.v1.events.list_async(params)
            found += [event.to_dict() for event in page.data]
            if not page.has_more or not page.data:
                break
            params["starting_after"] = page.data[-1].id
    return sorted(found, key=lambda e: (int(e.get("created", 0)), str(e.get("id"))))


def queue_refund(settings: Settings, *, workspace_id: str, params: dict[str, Any], now: datetime) -> OutboxMessage:
    """An outbox row that creates a Stripe refund with `params` once delivered; the caller adds it to its unit of
    work (so it exists exactly when the change that asked for it does)."""
    body = {"operation": "refunds.create", "params": params}
    return OutboxMessage(
        id=new_id("out"),
        workspace_id=workspace_id,
        channel=CHANNEL,
        kind=OutboxKind.system,
        recipient="stripe:refunds",
        subject=f"Refund {params.get('metadata', {}).get('refund_id', '')}".strip(),
        body=seal(settings.secret_key, SEAL_PURPOSE, json.dumps(body)),
        next_attempt_at=now,
        created_at=now,
    )


class StripeChannel:
    """Sends the Stripe requests of outbox rows with the workspace's key as it is at delivery; answers what Stripe
    made (id and status) for the row to keep."""

    name = CHANNEL

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def send(self, message: OutboxMessage, body: str) -> dict[str, Any]:
        request = json.loads(body)
        if request.get("operation") != "refunds.create":
            raise Undeliverable(f"unknown Stripe operation {request.get('operation')!r}")
        async with self.db.read_sessions() as session:
            workspace = await session.get(Workspace, message.workspace_id)
        config = stripe_config(self.settings, workspace) if workspace is not None else None
        if config is None:
            raise Undeliverable("the workspace has no Stripe keys any more")
        async with stripe_client(config.secret_key, config.api_base) as client:
            try:
                refund = await client.v1.refunds.create_async(
                    request["params"], options={"idempotency_key": message.id}
                )
            except refusals() as exc:
                raise Undeliverable(f"Stripe refused: {exc.user_message or exc}") from exc
        return {"object": "refund", "id": refund.id, "status": refund.status}
