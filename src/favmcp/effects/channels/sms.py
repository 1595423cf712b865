"""Twilio SMS: send a message through the Messages API (form-encoded, basic auth) over httpx, since Twilio's own
library cannot be pointed at a local server; check `X-Twilio-Signature` with Twilio's own RequestValidator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twilio.request_validator import RequestValidator

from favmcp.effects.channels.refused import ProviderUnavailable, Refused

TIMEOUT = 20.0
CREDENTIAL_CODES = {20003, 20005, 20008}  # authenticate, account suspended, test credentials
# The recipient can never get this message (not a mobile number, unsubscribed, blocked): a bounce.
RECIPIENT_CODES = {21211, 21214, 21610, 21612, 21614}


@dataclass(frozen=True)
class TwilioAccount:
    api_base: str
    account_sid: str
    auth_token: str
    from_number: str


async def send_sms(account: TwilioAccount, to: str, body: str, *, status_callback: str | None) -> str:
    """Returns the message's SID (SM…); Twilio posts its status changes to `status_callback`."""
    import httpx  # here, not at import: a process that sends nothing never loads it

    url = f"{account.api_base.rstrip('/')}/2010-04-01/Accounts/{account.account_sid}/Messages.json"
    form = {"To": to, "From": account.from_number, "Body": body}
    if status_callback:
        form["StatusCallback"] = status_callback
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await client.post(url, data=form, auth=(account.account_sid, account.auth_token))
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"Twilio unreachable: {type(exc).__name__}") from exc
    try:
        answer: dict[str, Any] = response.json()
    except ValueError:
        answer = {}
    if response.status_code >= 500 or response.status_code == 429:
        raise ProviderUnavailable(f"Twilio answered {response.status_code}")
    if response.status_code >= 400:
        code = answer.get("code")
        message = str(answer.get("message") or f"HTTP {response.status_code}")
        raise Refused(
            f"Twilio refused ({code}): {message}"[:500],
            code=str(code),
            credentials=response.status_code == 401 or code in CREDENTIAL_CODES,
            bounce=code in RECIPIENT_CODES,
        )
    sid = answer.get("sid")
    if not sid:
        raise ProviderUnavailable("Twilio answered without a message SID")
    return str(sid)


def valid_signature(auth_token: str, url: str, params: dict[str, str], signature: str | None) -> bool:
    """Twilio signs the full URL it requested and the POSTed parameters (HMAC-SHA1 with the auth token)."""
    if not signature or not auth_token:
        return False
    return bool(RequestValidator(auth_token).validate(url, params, signature))
