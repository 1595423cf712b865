"""Message templates: the placeholders a text may use, their review (WhatsApp templates wait for Meta's), and the
campaigns that keep a template in use."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlmodel import col

from favmcp.core.contact import Channel
from favmcp.core.errors import FieldError, conflict, not_found, validation_failed
from favmcp.core.ids import new_id
from favmcp.core.sealing import seal
from favmcp.domains.campaigns.models import Campaign, CampaignStatus
from favmcp.domains.messaging.message_schemas import SMS_LIMIT, TemplatePublic
from favmcp.domains.messaging.models import MessageTemplate, TemplateStatus
from favmcp.domains.messaging.rules import VARIABLE
from favmcp.effects.models import OutboxKind, OutboxMessage
from favmcp.effects.outbox import SEAL_PURPOSE
from favmcp.registry.context import ToolContext

FIND = "See the templates with list_message_templates."
REVIEW_CHANNEL = "whatsapp_template"  # outbox rows that submit a WhatsApp template to Meta's review
PLACEHOLDER = re.compile(r"{{(.*?)}}")
WHATSAPP_NAME = re.compile(r"^[a-z0-9_]{1,120}$")

# A campaign in one of these states sends (or will send) its template: its text stays as approved.
CAMPAIGN_SENDS = (CampaignStatus.scheduled, CampaignStatus.sending)
# ... and a draft still refers to it: the template stays.
CAMPAIGN_USES = (CampaignStatus.draft, *CAMPAIGN_SENDS)
# What Meta reviews: a change to any of these sends a WhatsApp template back to review.
REVIEWED = frozenset({"name", "language", "kind", "body"})


def public(template: MessageTemplate) -> TemplatePublic:
    return TemplatePublic.model_validate(template, from_attributes=True)


async def load(ctx: ToolContext, template_id: str, *, lock: bool = False) -> MessageTemplate:
    template = await ctx.db.get(MessageTemplate, template_id, lock=lock)
    if template is None:
        raise not_found("message template", template_id, hint=FIND)
    return template


def check(channel: Channel, name: str, subject: str | None, body: str, variables: Iterable[str]) -> list[str]:
    """The declared variables (deduplicated, in order) once the text is sound: a subject for email and only
    there, a WhatsApp-style name on WhatsApp, and every {{placeholder}} well formed and declared."""
    errors: list[FieldError] = []
    if channel is Channel.email and not subject:
        errors.append(FieldError(field="subject", message="an email template needs a subject"))
    if channel is not Channel.email and subject:
        errors.append(FieldError(field="subject", message=f"{channel.value} messages have no subject"))
    if channel is Channel.sms and len(body) > SMS_LIMIT:
        errors.append(FieldError(field="body", message=f"an SMS is at most {SMS_LIMIT} characters"))
    if channel is Channel.whatsapp and not WHATSAPP_NAME.fullmatch(name):
        errors.append(FieldError(field="name", message="WhatsApp template names are a-z, 0-9 and _ only"))
    declared = list(dict.fromkeys(variables))
    for field, text in (("subject", subject or ""), ("body", body)):
        for found in PLACEHOLDER.finditer(text):
            match = VARIABLE.fullmatch(found.group(0))
            if match is None:
                errors.append(FieldError(field=field, message=f"{found.group(0)} is not a {{{{variable}}}} (a-z0-9_)"))
            elif match.group(1) not in declared:
                errors.append(FieldError(field=field, message=f"{{{{{match.group(1)}}}}} is not declared in variables"))
    if errors:
        raise validation_failed("The template does not hold together: " + "; ".join(e.message for e in errors), errors)
    return declared


async def holder(ctx: ToolContext, channel: Channel, name: str, language: str, exclude_id: str | None = None) -> str:
    """The id of the template that has this (channel, name, language), if any."""
    stmt = ctx.db.select(
        MessageTemplate,
        col(MessageTemplate.channel) == channel,
        col(MessageTemplate.name) == name,
        col(MessageTemplate.language) == language,
    )
    if exclude_id:
        stmt = stmt.where(col(MessageTemplate.id) != exclude_id)
    found = await ctx.db.first(stmt)
    return found.id if found else ""


def name_taken(channel: Channel, name: str, language: str, existing: str) -> Exception:
    return conflict(
        f"A {channel.value} template named {name!r} in {language!r} exists already ({existing}).",
        hint="Change it with update_message_template, or pick another name or language.",
        details={"existing_id": existing},
    )


def first_status(channel: Channel) -> TemplateStatus:
    """SMS and email templates are ours to approve (saving does); WhatsApp's wait for Meta's review."""
    return TemplateStatus.pending if channel is Channel.whatsapp else TemplateStatus.approved


def request_review(ctx: ToolContext, template: MessageTemplate) -> None:
    """Submit a WhatsApp template to Meta's review, through the outbox in this transaction."""
    ctx.db.add(
        OutboxMessage(
            id=new_id("out"),
            workspace_id=ctx.workspace_id,
            channel=REVIEW_CHANNEL,
            kind=OutboxKind.system,
            recipient="whatsapp:templates",
            subject=template.name,
            body=seal(ctx.settings.secret_key, SEAL_PURPOSE, ""),
            payload={"template_id": template.id, "version": template.version},
            next_attempt_at=ctx.now,
            created_at=ctx.now,
        )
    )


async def campaigns_using(ctx: ToolContext, template_id: str, states: Iterable[CampaignStatus]) -> list[str]:
    stmt = ctx.db.select(
        Campaign, col(Campaign.template_id) == template_id, col(Campaign.status).in_(sorted(states))
    ).order_by(col(Campaign.id))
    return [c.id for c in await ctx.db.all(stmt.limit(20))]


def in_use(template: MessageTemplate, campaign_ids: list[str], what: str) -> Exception:
    return conflict(
        f"The template {template.name!r} is used by campaign(s) {', '.join(campaign_ids)}; {what}",
        hint="cancel_campaign first, or make a new template with create_message_template.",
        details={"campaign_ids": campaign_ids},
    )


def changes(template: MessageTemplate, given: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in given.items() if getattr(template, k) != v}
