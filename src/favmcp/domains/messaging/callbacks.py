"""The providers' callbacks: /hooks/whatsapp/{channel_id}, /hooks/twilio/{channel_id}, /hooks/email/{channel_id},
and the one-click unsubscribe link /unsubscribe/{token}.

Each request is checked before anything is written: WhatsApp's X-Hub-Signature-256 with the channel's app
secret, Twilio's X-Twilio-Signature with its auth token (over the public URL Twilio requested), the email
provider's Standard Webhooks signature with the channel's webhook secret (5-minute tolerance). A bad signature
and an unknown channel get the same answer and change nothing. Every event is applied once: its provider event id
goes into messaging_provider_events first, so a retried or replayed callback changes nothing. Statuses only move
forward (status.advance)."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import structlog
from sqlmodel import col
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from favmcp.core.contact import Channel, normalise_email
from favmcp.domains.members import service as members
from favmcp.domains.messaging import channels, inbound
from favmcp.domains.messaging.delivery import TEMPLATE_STATUS, suppress
from favmcp.domains.messaging.models import (
    ChannelConfig,
    Direction,
    Message,
    MessageStatus,
    MessageTemplate,
    Provider,
    ProviderEvent,
    SuppressionReason,
)
from favmcp.domains.messaging.rules import consent_granted
from favmcp.domains.messaging.status import advance
from favmcp.effects.channels import sms, whatsapp
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import HttpEndpoint

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from favmcp.registry.runner import Runner

log = structlog.get_logger("favmcp.messaging")

MAX_PAYLOAD = 256 * 1024
WHATSAPP_STATUS = {
    "sent": MessageStatus.sent,
    "delivered": MessageStatus.delivered,
    "read": MessageStatus.read,
    "failed": MessageStatus.failed,
}
TWILIO_STATUS = {
    "sent": MessageStatus.sent,
    "delivered": MessageStatus.delivered,
    "read": MessageStatus.read,
    "undelivered": MessageStatus.failed,
    "failed": MessageStatus.failed,
}


@dataclass(frozen=True)
class Hook:
    workspace_id: str
    channel: Channel


async def _hook(runner: Runner, channel_id: str, channel: Channel) -> Hook | None:
    """The workspace of the channel the URL names (one indexed read before any workspace-bound access)."""
    if not channel_id or len(channel_id) > 40:
        return None
    row = await runner.db.fetch_row("SELECT workspace_id, channel FROM messaging_channels WHERE id = $1", channel_id)
    if row is None or str(row[1]) != channel.name:
        return None
    return Hook(str(row[0]), channel)


async def _config(ctx: ToolContext, channel_id: str) -> ChannelConfig | None:
    return await ctx.db.get(ChannelConfig, channel_id)


async def _first_time(ctx: ToolContext, provider: Provider, event_id: str) -> bool:
    """Record the provider's event id; False when it was applied before (a retry or a replay)."""
    row = {"provider": provider.value, "event_id": event_id[:200], "received_at": ctx.now}
    return await ctx.db.insert_or_ignore(ProviderEvent, [row]) > 0


async def _move(
    ctx: ToolContext,
    channel: Channel,
    status: MessageStatus,
    *,
    our_id: str | None,
    provider_id: str,
    error: str | None = None,
) -> list[str]:
    """Advance the outbound message the callback names: by our id when the provider echoes it, else by its id."""
    where: list[Any] = [col(Message.channel) == channel, col(Message.direction) == Direction.outbound]
    where.append(col(Message.id) == our_id if our_id else col(Message.provider_message_id) == provider_id)
    extra = {"error": error[:500]} if error and status is MessageStatus.failed else {}
    moved = await advance(ctx, status, *where, at=ctx.now, **extra)
    if our_id and provider_id:  # a worker that died after the send never stored the provider's id: learn it here
        await ctx.db.update(
            Message, *where, col(Message.provider_message_id).is_(None), values={"provider_message_id": provider_id}
        )
    if moved:
        ctx.record_change(status=status.value, messages=len(moved))
    return moved


# -- WhatsApp ----------------------------------------------------------------------------------------------------


async def whatsapp_verify(request: Request, runner: Runner) -> Response:
    """Meta's subscription handshake: answer hub.challenge when hub.verify_token is the channel's."""
    from starlette.responses import PlainTextResponse

    channel_id = str(request.path_params.get("channel_id", ""))
    query = request.query_params
    hook = await _hook(runner, channel_id, Channel.whatsapp)
    if hook is None or query.get("hub.mode") != "subscribe":
        return _refused("whatsapp", "unknown channel or not a subscription", 403)
    token = query.get("hub.verify_token", "")

    async def check(ctx: ToolContext) -> bool:
        config = await _config(ctx, channel_id)
        expected = channels.open_secrets(ctx.settings, config).get("verify_token", "") if config else ""
        return bool(expected) and hmac.compare_digest(expected.encode(), token.encode())

    if not await runner.read_system(hook.workspace_id, "hook:whatsapp", check):
        return _refused("whatsapp", "verify token", 403)

    async def verified(ctx: ToolContext) -> None:
        await channels.mark_verified(ctx, channel_id)

    await runner.run_system(hook.workspace_id, "hook:whatsapp", verified)
    return PlainTextResponse(query.get("hub.challenge", ""))


async def whatsapp_webhook(request: Request, runner: Runner) -> Response:
    from starlette.responses import JSONResponse

    channel_id = str(request.path_params.get("channel_id", ""))
    payload = await request.body()
    signature = request.headers.get("x-hub-signature-256")
    hook = await _hook(runner, channel_id, Channel.whatsapp)
    if hook is None or not signature or len(payload) > MAX_PAYLOAD:
        return _refused("whatsapp", "unknown channel, no signature or too large")

    async def secret(ctx: ToolContext) -> str:
        config = await _config(ctx, channel_id)
        return channels.open_secrets(ctx.settings, config).get("app_secret", "") if config else ""

    if not whatsapp.valid_signature(
        await runner.read_system(hook.workspace_id, "hook:whatsapp", secret), payload, signature
    ):
        return _refused("whatsapp", "signature")
    try:
        body = json.loads(payload)
    except ValueError:
        return _refused("whatsapp", "not JSON")

    async def apply(ctx: ToolContext) -> int:
        await channels.mark_verified(ctx, channel_id)
        return await _apply_whatsapp(ctx, body)

    applied = await runner.run_system(hook.workspace_id, "hook:whatsapp", apply)
    return JSONResponse({"received": True, "applied": applied})


async def _apply_whatsapp(ctx: ToolContext, body: Any) -> int:
    applied = 0
    for entry in _dicts(body.get("entry") if isinstance(body, dict) else None):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            if change.get("field") == "message_template_status_update":
                applied += await _template_status(ctx, value)
                continue
            for status in _dicts(value.get("statuses")):
                applied += await _whatsapp_status(ctx, status)
            for message in _dicts(value.get("messages")):
                applied += await _whatsapp_inbound(ctx, message)
    return applied


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list (a malformed payload yields nothing rather than an error)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


async def _whatsapp_status(ctx: ToolContext, status: dict[str, Any]) -> int:
    wamid, name = str(status.get("id") or ""), str(status.get("status") or "")
    ours = WHATSAPP_STATUS.get(name)
    if not wamid or ours is None or not await _first_time(ctx, Provider.whatsapp_cloud, f"{wamid}:{name}"):
        return 0
    first = (_dicts(status.get("errors")) or [{}])[0]
    error = (
        f"WhatsApp {first.get('code', '')}: {first.get('title', 'failed')}" if ours is MessageStatus.failed else None
    )
    reference = status.get("biz_opaque_callback_data")
    our_id = str(reference) if isinstance(reference, str) and reference.startswith("msg_") else None
    await _move(ctx, Channel.whatsapp, ours, our_id=our_id, provider_id=wamid, error=error)
    return 1


async def _whatsapp_inbound(ctx: ToolContext, message: dict[str, Any]) -> int:
    wamid, sender = str(message.get("id") or ""), str(message.get("from") or "")
    if not wamid or not sender or not await _first_time(ctx, Provider.whatsapp_cloud, wamid):
        return 0
    kind = message.get("type")
    content = message.get(str(kind))
    if kind in ("text", "button") and isinstance(content, dict):
        text = str(content.get("body" if kind == "text" else "text") or "")
    else:
        text = f"[{kind} message]" if isinstance(kind, str) and kind else "[message]"
    await inbound.record(ctx, Channel.whatsapp, "+" + sender.lstrip("+"), text, wamid)
    return 1


async def _template_status(ctx: ToolContext, value: dict[str, Any]) -> int:
    provider_id, event = str(value.get("message_template_id") or ""), str(value.get("event") or "")
    ours = TEMPLATE_STATUS.get(event)
    if not provider_id or ours is None:
        return 0
    if not await _first_time(ctx, Provider.whatsapp_cloud, f"template:{provider_id}:{event}:{value.get('reason')}"):
        return 0
    reason = value.get("reason")
    changed = await ctx.db.update(
        MessageTemplate,
        col(MessageTemplate.channel) == Channel.whatsapp,
        col(MessageTemplate.provider_template_id) == provider_id,
        values={
            "status": ours,
            "status_reason": None if reason in (None, "NONE") else str(reason)[:500],
            "updated_at": ctx.now,
        },
    )
    if changed:
        ctx.record_change(provider_template_id=provider_id, template_status=ours.value)
    return 1


# -- Twilio ------------------------------------------------------------------------------------------------------


async def twilio_webhook(request: Request, runner: Runner) -> Response:
    from starlette.responses import Response

    channel_id = str(request.path_params.get("channel_id", ""))
    payload = await request.body()
    signature = request.headers.get("x-twilio-signature")
    hook = await _hook(runner, channel_id, Channel.sms)
    if hook is None or not signature or len(payload) > MAX_PAYLOAD:
        return _refused("twilio", "unknown channel, no signature or too large")
    params = dict(parse_qsl(payload.decode(errors="replace"), keep_blank_values=True))
    # Twilio signs the URL it requested: ours as the world sees it (behind a proxy, not the one we were asked).
    url = str(request.url)
    if runner.settings.public_url:
        url = runner.settings.public_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")

    async def token(ctx: ToolContext) -> str:
        config = await _config(ctx, channel_id)
        return channels.open_secrets(ctx.settings, config).get("auth_token", "") if config else ""

    if not sms.valid_signature(
        await runner.read_system(hook.workspace_id, "hook:twilio", token), url, params, signature
    ):
        return _refused("twilio", "signature")
    our_id = request.query_params.get("m")

    async def apply(ctx: ToolContext) -> int:
        await channels.mark_verified(ctx, channel_id)
        return await _apply_twilio(ctx, params, our_id)

    await runner.run_system(hook.workspace_id, "hook:twilio", apply)
    # Twilio reads the answer to an incoming message as TwiML: an empty Response sends no reply.
    return Response('<?xml version="1.0" encoding="UTF-8"?><Response></Response>', media_type="text/xml")


async def _apply_twilio(ctx: ToolContext, params: dict[str, str], our_id: str | None) -> int:
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    if not sid:
        return 0
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    if status == "received" and "Body" in params:
        if not await _first_time(ctx, Provider.twilio, sid):
            return 0
        if not params.get("From"):
            return 0
        await inbound.record(ctx, Channel.sms, params["From"], params["Body"], sid)
        return 1
    ours = TWILIO_STATUS.get(status)
    if ours is None or not await _first_time(ctx, Provider.twilio, f"{sid}:{status}"):
        return 0
    error = f"Twilio {params.get('ErrorCode', '')}: {status}" if ours is MessageStatus.failed else None
    reference = our_id if our_id and our_id.startswith("msg_") else None
    await _move(ctx, Channel.sms, ours, our_id=reference, provider_id=sid, error=error)
    return 1


# -- email events (an ESP's bounces and complaints, Standard Webhooks) -------------------------------------------


async def email_webhook(request: Request, runner: Runner) -> Response:
    from starlette.responses import JSONResponse

    channel_id = str(request.path_params.get("channel_id", ""))
    payload = await request.body()
    hook = await _hook(runner, channel_id, Channel.email)
    if hook is None or len(payload) > MAX_PAYLOAD:
        return _refused("email", "unknown channel or too large")

    async def secret(ctx: ToolContext) -> str:
        config = await _config(ctx, channel_id)
        return channels.open_secrets(ctx.settings, config).get("webhook_secret", "") if config else ""

    key = await runner.read_system(hook.workspace_id, "hook:email", secret)
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        if not key:
            raise WebhookVerificationError("no webhook secret")
        event = Webhook(key).verify(payload, headers)  # signature and the 5-minute tolerance
    except (WebhookVerificationError, ValueError, TypeError) as exc:
        return _refused("email", f"signature: {exc}")
    event_id = headers.get("webhook-id", "")

    async def apply(ctx: ToolContext) -> int:
        await channels.mark_verified(ctx, channel_id)
        if not isinstance(event, dict) or not await _first_time(ctx, Provider.smtp, event_id):
            return 0
        return await _apply_email(ctx, event)

    applied = await runner.run_system(hook.workspace_id, "hook:email", apply)
    return JSONResponse({"received": True, "applied": applied})


async def _apply_email(ctx: ToolContext, event: dict[str, Any]) -> int:
    kind = str(event.get("type") or "")
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    assert isinstance(data, dict)
    our_id = _our_message_id(data)
    addresses = []
    for raw in data.get("to") or []:
        try:
            addresses.append(normalise_email(str(raw)))
        except ValueError:
            continue
    if kind == "email.delivered" and our_id:
        await _move(ctx, Channel.email, MessageStatus.delivered, our_id=our_id, provider_id="")
        return 1
    if kind == "email.bounced":
        bounce = data.get("bounce") if isinstance(data.get("bounce"), dict) else {}
        assert isinstance(bounce, dict)
        permanent = str(bounce.get("type") or "Permanent").lower() != "transient"
        error = f"bounced: {bounce.get('message') or bounce.get('type') or 'permanent'}"
        if our_id and permanent:
            await _move(ctx, Channel.email, MessageStatus.failed, our_id=our_id, provider_id="", error=error)
        for address in addresses if permanent else []:
            await suppress(ctx, Channel.email, address, SuppressionReason.bounce)
        return 1
    if kind == "email.complained":
        for address in addresses:
            await suppress(ctx, Channel.email, address, SuppressionReason.complaint)
            member = await inbound.member_at(ctx, Channel.email, address)
            if member is not None and await consent_granted(ctx, member.id, Channel.email) is not False:
                await members.add_consent(ctx, member.id, Channel.email.value, False, "email_complaint")
        ctx.record_change(email_complaint=len(addresses))
        return 1
    return 0


def _our_message_id(data: dict[str, Any]) -> str | None:
    """Our message id from the Message-ID header the event carries (<msg_…@favmcp>)."""
    headers = data.get("headers")
    values = []
    if isinstance(headers, list):
        values = [h.get("value") for h in headers if isinstance(h, dict) and str(h.get("name")).lower() == "message-id"]
    elif isinstance(headers, dict):
        values = [v for k, v in headers.items() if k.lower() == "message-id"]
    values.append(data.get("message_id"))
    for value in values:
        text = str(value or "").strip("<> ")
        if text.startswith("msg_") and text.endswith("@favmcp"):
            return text.removesuffix("@favmcp")
    return None


# -- one-click unsubscribe (RFC 8058) ----------------------------------------------------------------------------

UNSUBSCRIBE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><meta name="viewport"
content="width=device-width,initial-scale=1"><title>Unsubscribe</title></head><body style="font-family:sans-serif">
<p>Stop receiving these emails?</p><form method="post"><input type="hidden" name="List-Unsubscribe"
value="One-Click"><button type="submit">Unsubscribe</button></form></body></html>"""
DONE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Unsubscribed</title></head>
<body style="font-family:sans-serif"><p>You are unsubscribed; no more of these emails will be sent.</p></body></html>"""


async def unsubscribe_page(request: Request, runner: Runner) -> Response:
    from starlette.responses import HTMLResponse

    token = str(request.path_params.get("token", ""))
    if channels.open_unsubscribe_token(runner.settings, token) is None:
        return HTMLResponse("<!doctype html><p>This link is not valid.</p>", status_code=404)
    return HTMLResponse(UNSUBSCRIBE_PAGE, headers={"Cache-Control": "no-store"})


async def unsubscribe(request: Request, runner: Runner) -> Response:
    """The one-click POST (from the mail client, or the page's button): the address is suppressed for email and
    the member's email consent withdrawn."""
    from starlette.responses import HTMLResponse

    opened = channels.open_unsubscribe_token(runner.settings, str(request.path_params.get("token", "")))
    if opened is None:
        return HTMLResponse("<!doctype html><p>This link is not valid.</p>", status_code=404)
    workspace_id, message_id = opened

    async def apply(ctx: ToolContext) -> None:
        message = await ctx.db.get(Message, message_id)
        if message is None or message.channel is not Channel.email:
            return
        await suppress(ctx, Channel.email, message.address, SuppressionReason.unsubscribe)
        if message.member_id and await consent_granted(ctx, message.member_id, Channel.email) is not False:
            await members.add_consent(ctx, message.member_id, Channel.email.value, False, "email_unsubscribe")
            ctx.record_change(member_id=message.member_id, unsubscribed=True)

    try:
        await runner.run_system(workspace_id, "hook:unsubscribe", apply)
    except Exception:  # a workspace gone since: the link is no longer valid
        log.warning("unsubscribe_failed", exc_info=True)
        return HTMLResponse("<!doctype html><p>This link is not valid.</p>", status_code=404)
    return HTMLResponse(DONE_PAGE)


def _refused(provider: str, why: str, status: int = 403) -> Response:
    from starlette.responses import JSONResponse

    log.warning("messaging_callback_refused", provider=provider, reason=why)
    return JSONResponse({"error": "invalid signature"}, status_code=status)


ROUTES: dict[str, HttpEndpoint] = {
    "GET /hooks/whatsapp/{channel_id}": whatsapp_verify,
    "POST /hooks/whatsapp/{channel_id}": whatsapp_webhook,
    "POST /hooks/twilio/{channel_id}": twilio_webhook,
    "POST /hooks/email/{channel_id}": email_webhook,
    "GET /unsubscribe/{token}": unsubscribe_page,
    "POST /unsubscribe/{token}": unsubscribe,
}
