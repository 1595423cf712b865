"""The payment provider's settings: a workspace's own Stripe keys (sealed in `workspaces.payment_provider`, set
through update_workspace), else the install's (FAVMCP_STRIPE_SECRET_KEY, for a single business)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from cryptography.exceptions import InvalidTag

from favmcp.config import Settings
from favmcp.core.errors import invalid_state
from favmcp.core.sealing import seal, unseal
from favmcp.db.tenancy import PAYMENT_PROVIDER_SEAL, Workspace

log = structlog.get_logger("favmcp.payments")

SEAL_PURPOSE = PAYMENT_PROVIDER_SEAL
STRIPE = "stripe"
CONFIGURE = (
    "Set the workspace's Stripe keys with update_workspace payment_provider={secret_key, webhook_secret}, "
    "or record a payment taken in person with record_payment."
)


@dataclass(frozen=True)
class StripeConfig:
    secret_key: str
    webhook_secret: str | None
    api_base: str | None


def seal_provider(settings: Settings, values: dict[str, Any]) -> str:
    return seal(settings.secret_key, SEAL_PURPOSE, values)


def open_provider(settings: Settings, sealed: str | None) -> dict[str, Any] | None:
    """The stored settings; None when there are none, or when no server secret in use opens them any more (a
    secret retired before they were resealed: logged, and the keys must be set again)."""
    if not sealed:
        return None
    try:
        opened = unseal(settings.secret_keys, SEAL_PURPOSE, sealed)
    except InvalidTag:
        log.error("payment_provider_unreadable", hint="set the Stripe keys again with update_workspace")
        return None
    return dict(opened) if isinstance(opened, dict) else None


def summary(settings: Settings, sealed: str | None) -> dict[str, Any] | None:
    """What may be shown of a workspace's provider settings: never a secret, only the key's last 4 characters."""
    opened = open_provider(settings, sealed)
    if opened is None:
        return None
    key = str(opened.get("secret_key", ""))
    return {
        "provider": opened.get("provider", STRIPE),
        "key_last4": key[-4:],
        "livemode": "_live_" in key,
        "webhook_configured": bool(opened.get("webhook_secret")),
    }


def stripe_config(settings: Settings, workspace: Workspace) -> StripeConfig | None:
    opened = open_provider(settings, workspace.payment_provider)
    if opened is not None and opened.get("provider", STRIPE) == STRIPE and opened.get("secret_key"):
        return StripeConfig(str(opened["secret_key"]), opened.get("webhook_secret"), settings.stripe_api_base)
    if settings.stripe_secret_key:
        return StripeConfig(settings.stripe_secret_key, settings.stripe_webhook_secret, settings.stripe_api_base)
    return None


def require_stripe(settings: Settings, workspace: Workspace) -> StripeConfig:
    config = stripe_config(settings, workspace)
    if config is None:
        raise invalid_state(
            "No payment provider is configured for this workspace.",
            current="not_configured",
            hint=CONFIGURE,
            reason="provider_not_configured",
        )
    return config
