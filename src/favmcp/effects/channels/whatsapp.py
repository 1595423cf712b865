"""WhatsApp Cloud API (Meta's Graph API): send a text or a template message, submit a template for review, check
the signature of Meta's webhooks. Plain HTTP over httpx; the API base is a setting (tests use a local server)."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from favmcp.effects.channels.refused import ProviderUnavailable, Refused

GRAPH_VERSION = "v21.0"
TIMEOUT = 20.0
# Meta's error codes that refuse the recipient or the content, not our credentials.
CREDENTIAL_CODES = {0, 10, 102, 190, 200}  # auth, permission, expired or invalid token


@dataclass(frozen=True)
class WhatsAppAccount:
    api_base: str
    phone_number_id: str
    waba_id: str
    access_token: str


def template_name(name: str) -> str:
    """Meta's template names are lowercase letters, digits and underscores."""
    return re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")[:512] or "template"


def meta_text(body: str) -> str:
    """Our {{ name }} placeholders as Meta writes named parameters: {{name}}."""
    return re.sub(r"{{\s*([a-z][a-z0-9_]*)\s*}}", r"{{\1}}", body)


async def _post(account: WhatsAppAccount, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    import httpx  # here, not at import: a process that sends nothing never loads it

    url = f"{account.api_base.rstrip('/')}/{GRAPH_VERSION}/{path}"
    headers = {"Authorization": f"Bearer {account.access_token}"}
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await client.post(url, json=payload, headers=headers)
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"WhatsApp unreachable: {type(exc).__name__}") from exc
    try:
        answer: dict[str, Any] = response.json()
    except ValueError:
        answer = {}
    if response.status_code >= 500 or response.status_code == 429:
        raise ProviderUnavailable(f"WhatsApp answered {response.status_code}")
    if response.status_code >= 400:
        error = answer.get("error") or {}
        code = error.get("code")
        message = str(error.get("message") or f"HTTP {response.status_code}")
        credentials = response.status_code in {401, 403} or code in CREDENTIAL_CODES
        raise Refused(f"WhatsApp refused: {message}"[:500], code=str(code), credentials=credentials)
    return answer


async def _send(account: WhatsAppAccount, to: str, reference: str, content: dict[str, Any]) -> str:
    payload = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        **content,
        "biz_opaque_callback_data": reference,  # comes back in every status webhook of this message
    }
    answer = await _post(account, f"{account.phone_number_id}/messages", payload)
    try:
        return str(answer["messages"][0]["id"])
    except (KeyError, IndexError, TypeError):
        raise ProviderUnavailable("WhatsApp answered without a message id") from None


async def send_text(account: WhatsAppAccount, to: str, body: str, *, reference: str) -> str:
    """Free text (only within the 24-hour window); returns the wamid."""
    return await _send(account, to, reference, {"type": "text", "text": {"preview_url": False, "body": body}})


async def send_template(
    account: WhatsAppAccount, to: str, *, name: str, language: str, parameters: dict[str, str], reference: str
) -> str:
    """An approved template with named body parameters; returns the wamid."""
    template: dict[str, Any] = {"name": template_name(name), "language": {"code": language}}
    if parameters:
        named = [{"type": "text", "parameter_name": k, "text": v} for k, v in sorted(parameters.items())]
        template["components"] = [{"type": "body", "parameters": named}]
    return await _send(account, to, reference, {"type": "template", "template": template})


@dataclass(frozen=True)
class Submitted:
    id: str
    status: str  # Meta's: PENDING, APPROVED, REJECTED...


async def submit_template(
    account: WhatsAppAccount, *, name: str, language: str, marketing: bool, body: str, examples: dict[str, str]
) -> Submitted:
    """Submit a template for Meta's review (named parameters, each with an example)."""
    component: dict[str, Any] = {"type": "BODY", "text": meta_text(body)}
    if examples:
        named = [{"param_name": k, "example": v} for k, v in sorted(examples.items())]
        component["example"] = {"body_text_named_params": named}
    payload = {
        "name": template_name(name),
        "language": language,
        "category": "MARKETING" if marketing else "UTILITY",
        "parameter_format": "NAMED",
        "components": [component],
    }
    answer = await _post(account, f"{account.waba_id}/message_templates", payload)
    return Submitted(str(answer.get("id", "")), str(answer.get("status", "PENDING")))


def valid_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with the app secret>`."""
    if not header or not header.startswith("sha256=") or not app_secret:
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))
