"""Arguments and answers of the template and message tools."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from favmcp.core.contact import Channel
from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.domains.members.schemas import MemberId, UntrustedText
from favmcp.domains.messaging.models import Direction, MessageStatus, TemplateStatus
from favmcp.effects.approvals import SendKind
from favmcp.registry.spec import GatedResult, ToolInput, UpdateInput, WriteInput

TemplateId = Annotated[str, Field(min_length=1, max_length=40)]
TemplateName = Annotated[str, Field(min_length=1, max_length=120)]


def _matches(pattern: str, what: str) -> AfterValidator:
    """A pattern checked by the server without being spelled out in every listing."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"not {what}")
        return value

    return AfterValidator(check)


Language = Annotated[
    str,
    Field(min_length=2, max_length=20),
    _matches(r"[a-z]{2,3}([_-][A-Za-z]{2,4})?", "a language code like en or pt_BR"),
]
Subject = Annotated[str, Field(min_length=1, max_length=300)]
Body = Annotated[str, Field(min_length=1, max_length=4096)]
VariableName = Annotated[str, Field(max_length=40), _matches(r"[a-z][a-z0-9_]{0,39}", "a-z, 0-9 and _, from a letter")]
Variables = Annotated[list[VariableName], Field(max_length=40)]
Values = Annotated[dict[str, Annotated[str, Field(max_length=1000)]], Field(max_length=40)]
TemplateKind = Literal["transactional", "marketing"]
SMS_LIMIT = 1600  # characters Twilio takes in one message


class ListTemplatesInput(ToolInput, PageParams):
    channel: Channel | None = None
    status: TemplateStatus | None = Field(default=None, description="Only approved templates send.")


class CreateTemplateInput(WriteInput):
    channel: Channel
    name: TemplateName = Field(description="WhatsApp: a-z, 0-9 and _.")
    language: Language = "en"
    kind: TemplateKind
    subject: Subject | None = Field(default=None, description="Email only, required there.")
    body: Body = Field(description="Text with {{variable}} placeholders.")
    variables: Variables = Field(
        default_factory=list, description="The placeholders' names; name, first_name: the member's."
    )


class UpdateTemplateInput(UpdateInput):
    not_clearable = frozenset({"name", "language", "kind", "body", "variables"})

    template_id: TemplateId
    name: TemplateName | None = None
    language: Language | None = None
    kind: TemplateKind | None = None
    subject: Subject | None = None
    body: Body | None = None
    variables: Variables | None = None


class TemplateIdInput(WriteInput):
    template_id: TemplateId


class TemplatePublic(Schema):
    id: str
    channel: Channel
    name: str
    language: str
    kind: SendKind
    subject: str | None
    body: str
    variables: list[str]
    status: TemplateStatus = Field(description="Only approved templates send; WhatsApp waits for Meta's review.")
    status_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class TemplatePage(Page[TemplatePublic]):
    pass


class TemplateDeleted(Schema):
    template_id: str
    name: str
    deleted: bool


class SendMessageInput(WriteInput):
    member_id: MemberId
    channel: Channel
    template_id: TemplateId | None = Field(default=None, description="An approved template of the channel.")
    variables: Values = Field(default_factory=dict, description="The template's variables by name.")
    text: Body | None = Field(default=None, description="Free text instead of a template.")
    subject: Subject | None = Field(default=None, description="Free-text email only.")

    @model_validator(mode="after")
    def _one_content(self) -> SendMessageInput:
        if (self.template_id is None) == (self.text is None):
            raise ValueError("give exactly one of template_id and text")
        if self.text is not None and self.variables:
            raise ValueError("variables go with a template_id")
        if self.subject is not None and (self.text is None or self.channel is not Channel.email):
            raise ValueError("subject is for free-text email (a template brings its own)")
        if self.text is not None and self.channel is Channel.email and self.subject is None:
            raise ValueError("a free-text email needs a subject")
        if self.text is not None and self.channel is Channel.sms and len(self.text) > SMS_LIMIT:
            raise ValueError(f"an SMS is at most {SMS_LIMIT} characters")
        return self


class MessagePublic(Schema):
    id: str
    member_id: str | None
    channel: Channel
    direction: Direction
    kind: SendKind | None
    status: MessageStatus
    address: str = Field(description="The customer's phone or email.")
    template_id: str | None
    campaign_id: str | None
    booking_id: str | None
    subject: str | None
    body: str | UntrustedText = Field(description="Inbound text is the customer's, wrapped as untrusted.")
    error: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None


class MessageSent(GatedResult):
    message: MessagePublic | None = None


class ListMessagesInput(ToolInput, PageParams):
    member_id: MemberId | None = None
    channel: Channel | None = None
    direction: Direction | None = None
    status: MessageStatus | None = Field(default=None, description="received: inbound.")
    campaign_id: str | None = Field(default=None, max_length=40)


class MessagePage(Page[MessagePublic]):
    pass


class ConversationInput(ToolInput, PageParams):
    member_id: MemberId
    channel: Channel | None = None


class Conversation(Page[MessagePublic]):
    member_id: str
    whatsapp_window_until: datetime | None = Field(
        description="Until when WhatsApp free text may be sent (24 h after their last message); null: templates only."
    )
