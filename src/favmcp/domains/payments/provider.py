"""The payment provider's settings: a workspace's own Stripe keys (sealed in `workspaces.payment_provider`, set
through update_workspace), else the install's (FAVMCP_STRIPE_SECRET_KEY, for a single business)."""

from __future__ import annotations

from typing import Any

from favmcp.config import Settings
from favmcp.core.errors import invalid_state
from favmcp.core.sealing import seal
from favmcp.db.tenancy import PAYMENT_PROVIDER_SEAL, Workspace
from favmcp.effects.channels.stripe import StripeConfig, open_provider, stripe_config

SEAL_PURPOSE = PAYMENT_PROVIDER_SEAL
STRIPE = "stripe"
CONFIGURE = (
    "Set the workspace's Stripe keys with update_workspace payment_provider={secret_key, webhook_secret}, "
    "or record a payment taken in person with record_payment."
)


def seal_provider(settings: Settings, values: dict[str, Any]) -> str:
    return seal(settings.secret_key, SEAL_PURPOSE, values)


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
