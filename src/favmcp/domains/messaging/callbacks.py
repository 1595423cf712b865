"""The providers' callbacks: /hooks/whatsapp/{channel_id}, /hooks/twilio/{channel_id}, /hooks/email/{channel_id},
and the one-click unsubscribe link."""

from __future__ import annotations

from favmcp.registry.domain import HttpEndpoint

ROUTES: dict[str, HttpEndpoint] = {}
