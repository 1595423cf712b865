"""Templates, send_message, list_messages and get_conversation."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from favmcp.core.contact import Channel
from favmcp.core.errors import FieldError, conflict, not_found, validation_failed
from favmcp.core.ids import new_id
from favmcp.domains.members import service as members
from favmcp.domains.members.models import Member, MemberStatus, NoteAuthor
from favmcp.domains.members.schemas import UntrustedText
from favmcp.domains.messaging import rules, sending, templates
from favmcp.domains.messaging.message_schemas import (
    Conversation,
    ConversationInput,
    CreateTemplateInput,
    ListMessagesInput,
    ListTemplatesInput,
    MessagePage,
    MessagePublic,
    MessageSent,
    SendMessageInput,
    TemplateDeleted,
    TemplateIdInput,
    TemplatePage,
    TemplatePublic,
    UpdateTemplateInput,
)
from favmcp.domains.messaging.models import Direction, Message, MessageTemplate
from favmcp.effects.approvals import ApprovalAsk, ApprovalRequest, SendKind
from favmcp.registry.context import ToolContext
from favmcp.registry.spec import ToolSpec, tool

DOMAIN_NAME = "messaging"
SUMMARY_TEXT = 3000  # the rendered text an approver reads, at most


# -- templates -------------------------------------------------------------------------------------------------


@tool(
    domain=DOMAIN_NAME,
    title="List message templates",
    hints="R I",
    scope="messaging:read",
    route="GET /v1/message-templates",
)
async def list_message_templates(ctx: ToolContext, args: ListTemplatesInput) -> TemplatePage:
    """Message templates newest first, by channel and approval status, with their variables."""
    where = []
    if args.channel is not None:
        where.append(col(MessageTemplate.channel) == args.channel)
    if args.status is not None:
        where.append(col(MessageTemplate.status) == args.status)
    rows, cursor = await ctx.db.page(ctx.db.select(MessageTemplate, *where), col(MessageTemplate.id), args)
    return TemplatePage(items=[templates.public(t) for t in rows], next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME,
    title="Create message template",
    hints="W",
    scope="messaging:write",
    route="POST /v1/message-templates",
)
async def create_message_template(ctx: ToolContext, args: CreateTemplateInput) -> TemplatePublic:
    """Create a template; each {{placeholder}} must be declared in variables. SMS and email templates are
    approved at once, WhatsApp ones after Meta's review."""
    variables = templates.check(args.channel, args.name, args.subject, args.body, args.variables)
    template = MessageTemplate(
        id=new_id("tpl"),
        workspace_id=ctx.workspace_id,
        channel=args.channel,
        name=args.name,
        language=args.language,
        kind=SendKind(args.kind),
        subject=args.subject,
        body=args.body,
        variables=variables,
        status=templates.first_status(args.channel),
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    try:
        async with ctx.db.savepoint():
            ctx.db.add(template)
            await ctx.db.flush()
    except IntegrityError:
        existing = await templates.holder(ctx, args.channel, args.name, args.language)
        if not existing:
            raise
        raise templates.name_taken(args.channel, args.name, args.language, existing) from None
    if args.channel is Channel.whatsapp:
        templates.request_review(ctx, template)
        await ctx.db.flush()
    ctx.record_change(template_id=template.id, status=template.status.value)
    return templates.public(template)


@tool(
    domain=DOMAIN_NAME,
    title="Update message template",
    hints="W I",
    scope="messaging:write",
    route="PATCH /v1/message-templates/{template_id}",
)
async def update_message_template(ctx: ToolContext, args: UpdateTemplateInput) -> TemplatePublic:
    """Change a template (fields left out stay); a change bumps its version. A WhatsApp template whose text,
    name, language or kind changes goes back to Meta's review. Refused while a scheduled or sending campaign
    uses it."""
    template = await templates.load(ctx, args.template_id, lock=True)
    given = args.model_dump(exclude_unset=True, exclude={"idempotency_key", "template_id"})
    if given.get("kind") is not None:
        given["kind"] = SendKind(given["kind"])
    merged = {**template.model_dump(include={"name", "language", "kind", "subject", "body", "variables"}), **given}
    if "variables" in given or "body" in given or "subject" in given or "name" in given:
        given["variables"] = templates.check(
            template.channel, merged["name"], merged["subject"], merged["body"], merged["variables"]
        )
    changed = templates.changes(template, given)
    if not changed:
        return templates.public(template)
    busy = await templates.campaigns_using(ctx, template.id, templates.CAMPAIGN_SENDS)
    if busy:
        raise templates.in_use(template, busy, "its text cannot change while they send.")
    review = template.channel is Channel.whatsapp and bool(templates.REVIEWED & set(changed))
    values = {**changed, "version": template.version + 1, "updated_at": ctx.now}
    if review:
        values |= {"status": templates.first_status(template.channel), "status_reason": None}
    try:
        async with ctx.db.savepoint():
            await ctx.db.update(MessageTemplate, col(MessageTemplate.id) == template.id, values=values)
    except IntegrityError:
        existing = await templates.holder(ctx, template.channel, merged["name"], merged["language"], template.id)
        if not existing:
            raise
        raise templates.name_taken(template.channel, merged["name"], merged["language"], existing) from None
    template = await ctx.db.get(MessageTemplate, template.id, fresh=True) or template
    if review:
        templates.request_review(ctx, template)
        await ctx.db.flush()
    ctx.record_change(template_id=template.id, fields=sorted(changed), version=template.version)
    return templates.public(template)


@tool(
    domain=DOMAIN_NAME,
    title="Delete message template",
    hints="D I",
    scope="messaging:write",
    route="DELETE /v1/message-templates/{template_id}",
)
async def delete_message_template(ctx: ToolContext, args: TemplateIdInput) -> TemplateDeleted:
    """Delete a template for good; refused while a draft, scheduled or sending campaign uses it. Sent messages
    keep their text. A repeat answers not_found (retry with the same idempotency_key to replay the answer)."""
    template = await templates.load(ctx, args.template_id, lock=True)
    busy = await templates.campaigns_using(ctx, template.id, templates.CAMPAIGN_USES)
    if busy:
        raise templates.in_use(template, busy, "it cannot be deleted.")
    await ctx.db.delete(MessageTemplate, col(MessageTemplate.id) == template.id)
    ctx.record_change(template_id=template.id)
    return TemplateDeleted(template_id=template.id, name=template.name, deleted=True)


# -- sending -----------------------------------------------------------------------------------------------------


async def _outgoing(ctx: ToolContext, args: SendMessageInput) -> sending.Outgoing:
    """The send as asked: the member as they are (a merged or erased member is refused by the rules, never
    redirected), the template of the same channel, its kind (free text is free_text)."""
    member = await ctx.db.get(Member, args.member_id)
    if member is None:
        raise not_found("member", args.member_id, hint=members.FIND)
    template = None
    if args.template_id is not None:
        template = await templates.load(ctx, args.template_id)
        if template.channel != args.channel:
            raise validation_failed(
                f"The template {template.name!r} is for {template.channel.value}, not {args.channel.value}.",
                [FieldError(field="template_id", message=f"a {args.channel.value} template")],
            )
    if member.status is MemberStatus.merged:
        raise rules.refuse(
            rules.Rule.member_unreachable,
            f"The member was merged into {member.merged_into}; nothing is sent to a merged id.",
            hint=f"Send to the surviving member {member.merged_into}.",
            survivor_id=member.merged_into,
        )
    return sending.Outgoing(
        member=member,
        channel=args.channel,
        kind=template.kind if template else SendKind.free_text,
        template=template,
        variables=dict(args.variables),
        text=args.text,
        subject=args.subject,
    )


def _summary(out: sending.Outgoing, ready: sending.Prepared) -> str:
    what = f"template {out.template.name!r} v{out.template.version}" if out.template else "free text"
    text = f"Subject: {ready.subject}\n{ready.body}" if ready.subject else ready.body
    if len(text) > SUMMARY_TEXT:
        text = text[:SUMMARY_TEXT] + " …"
    return f"{out.channel.value} {out.kind.value} message ({what}) to {out.member.name} at {ready.address}:\n{text}"


async def _ask_send(ctx: ToolContext, args: SendMessageInput) -> ApprovalAsk:
    out = await _outgoing(ctx, args)
    ready = await sending.prepare(ctx, out)  # every rule: a refused send is refused before anyone waits
    return ApprovalAsk(channel=out.channel, kind=out.kind, recipient=ready.address, summary=_summary(out, ready))


async def _ensure_as_approved(ctx: ToolContext, out: sending.Outgoing) -> None:
    """An approved send goes exactly as the approver read it: if the rendered message or its recipient changed
    since (the template was edited, the member's address changed), it is refused."""
    if ctx.approved_request_id is None:
        return
    request = await ctx.db.get(ApprovalRequest, ctx.approved_request_id)
    ready = await sending.prepare(ctx, out)
    if request is not None and request.summary != _summary(out, ready):
        raise conflict(
            "The message changed since it was approved (its template or the member's address); it was not sent.",
            hint="Send it again with send_message to ask for a new approval.",
            details={"approval_id": request.id},
        )


@tool(
    domain=DOMAIN_NAME,
    title="Send message",
    hints="W O",
    scope="messaging:send",
    gate="approval",
    ask=_ask_send,
    route="POST /v1/messages",
)
async def send_message(ctx: ToolContext, args: SendMessageInput) -> MessageSent:
    """Send one customer a template or free text. Consent, suppression, WhatsApp's 24-hour window and quiet
    hours are checked first (refusals name details.rule). May wait for approval by policy."""
    out = await _outgoing(ctx, args)
    await _ensure_as_approved(ctx, out)
    message = await sending.queue(ctx, out)
    ctx.record_change(message_id=message.id, member_id=out.member.id)
    return MessageSent(status="done", message=message_public(message))


# -- reading -----------------------------------------------------------------------------------------------------


def message_public(message: Message) -> MessagePublic:
    """Outbound text is ours; inbound text is the customer's, wrapped as untrusted."""
    body: str | UntrustedText = message.body
    if message.direction is Direction.inbound:
        body = UntrustedText(source=NoteAuthor.customer, text=message.body)
    return MessagePublic.model_validate({**message.model_dump(), "body": body})


@tool(domain=DOMAIN_NAME, title="List messages", hints="R I", scope="messaging:read", route="GET /v1/messages")
async def list_messages(ctx: ToolContext, args: ListMessagesInput) -> MessagePage:
    """Messages in and out, newest first, by member, channel, direction, status or campaign."""
    where = []
    if args.member_id is not None:
        member, _ = await members.load(ctx, args.member_id)
        where.append(col(Message.member_id) == member.id)
    for column, value in (
        (Message.channel, args.channel),
        (Message.direction, args.direction),
        (Message.status, args.status),
        (Message.campaign_id, args.campaign_id),
    ):
        if value is not None:
            where.append(col(column) == value)
    rows, cursor = await ctx.db.page(ctx.db.select(Message, *where), col(Message.id), args)
    return MessagePage(items=[message_public(m) for m in rows], next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME,
    title="Get conversation",
    hints="R I",
    scope="messaging:read",
    route="GET /v1/members/{member_id}/conversation",
)
async def get_conversation(ctx: ToolContext, args: ConversationInput) -> Conversation:
    """One customer's thread across channels: the latest page, oldest to newest; next_cursor goes further
    back. Customer text is marked untrusted."""
    member, _ = await members.load(ctx, args.member_id)
    where = [col(Message.member_id) == member.id]
    if args.channel is not None:
        where.append(col(Message.channel) == args.channel)
    rows, cursor = await ctx.db.page(ctx.db.select(Message, *where), col(Message.id), args)
    window = None
    if member.phone:
        last = await rules.last_inbound_at(ctx, Channel.whatsapp, member.phone)
        if last is not None and ctx.now - last < rules.WHATSAPP_WINDOW:
            window = last + rules.WHATSAPP_WINDOW
    return Conversation(
        member_id=member.id,
        items=[message_public(m) for m in reversed(rows)],
        next_cursor=cursor,
        has_more=cursor is not None,
        whatsapp_window_until=window,
    )


TOOLS: list[ToolSpec] = [
    list_message_templates,
    create_message_template,
    update_message_template,
    delete_message_template,
    send_message,
    list_messages,
    get_conversation,
]
