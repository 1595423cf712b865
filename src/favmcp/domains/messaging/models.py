"""Messaging: the channels a workspace sends through, its templates, every message in and out, and the addresses
that must not be written to any more."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field

from favmcp.core.contact import Channel
from favmcp.db.types import Table, enum_field, json_field, utc_field, workspace_fk
from favmcp.effects.approvals import SendKind


class Provider(StrEnum):
    whatsapp_cloud = "whatsapp_cloud"
    twilio = "twilio"
    smtp = "smtp"


PROVIDER_OF = {Channel.whatsapp: Provider.whatsapp_cloud, Channel.sms: Provider.twilio, Channel.email: Provider.smtp}


class ChannelHealth(StrEnum):
    unverified = "unverified"  # configured; no provider has reached us or taken a message yet
    verified = "verified"  # a verification challenge, a signed callback or a delivery proved the settings
    failing = "failing"  # the latest delivery attempts were refused by the provider


class ChannelConfig(Table, table=True):
    """One row per workspace and channel. `secrets` is sealed JSON (tokens, passwords) that no tool ever returns;
    `settings` holds what may be shown (sender identity, API base, quiet hours, reminders)."""

    __tablename__ = "messaging_channels"
    __table_args__ = (UniqueConstraint("workspace_id", "channel", name="uq_messaging_channels_workspace_channel"),)

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    channel: Channel = enum_field(Channel)
    provider: Provider = enum_field(Provider)
    sender: str = Field(max_length=320)  # the phone number, the Twilio number or the From address people see
    settings: dict[str, Any] = json_field()
    secrets: str  # sealed with the server secret (purpose "messaging_channel")
    health: ChannelHealth = enum_field(ChannelHealth, ChannelHealth.unverified)
    verified_at: datetime | None = utc_field(nullable=True)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()


class TemplateStatus(StrEnum):
    """WhatsApp templates wait for Meta's review; SMS and email templates are approved when saved."""

    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    paused = "paused"
    disabled = "disabled"


class MessageTemplate(Table, table=True):
    """A message with named variables ({{first_name}}); `variables` lists every name the text may use."""

    __tablename__ = "message_templates"
    __table_args__ = (
        UniqueConstraint("workspace_id", "channel", "name", "language", name="uq_message_templates_name"),
        Index("ix_message_templates_workspace_keyset", "workspace_id", "id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    channel: Channel = enum_field(Channel)
    name: str = Field(max_length=120)
    language: str = Field(default="en", max_length=20)
    kind: SendKind = enum_field(SendKind)  # transactional or marketing
    subject: str | None = Field(default=None, max_length=300)  # email only
    body: str
    variables: list[str] = json_field(list)
    status: TemplateStatus = enum_field(TemplateStatus)
    status_reason: str | None = Field(default=None, max_length=500)
    provider_template_id: str | None = Field(default=None, max_length=120)
    version: int = 1
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()


class Direction(StrEnum):
    outbound = "outbound"
    inbound = "inbound"


class MessageStatus(StrEnum):
    """Outbound: queued → sent → delivered → read, or failed; cancelled when a campaign stopped it before it went.
    Inbound messages are `received`."""

    queued = "queued"
    sent = "sent"
    delivered = "delivered"
    read = "read"
    failed = "failed"
    cancelled = "cancelled"
    received = "received"


# A status may only replace the ones listed: a late or repeated callback never moves a message backwards.
REPLACES: dict[MessageStatus, frozenset[MessageStatus]] = {
    MessageStatus.sent: frozenset({MessageStatus.queued}),
    MessageStatus.delivered: frozenset({MessageStatus.queued, MessageStatus.sent, MessageStatus.failed}),
    MessageStatus.read: frozenset(
        {MessageStatus.queued, MessageStatus.sent, MessageStatus.delivered, MessageStatus.failed}
    ),
    MessageStatus.failed: frozenset({MessageStatus.queued, MessageStatus.sent}),
    MessageStatus.cancelled: frozenset({MessageStatus.queued}),
}

ONCE = text("dedupe_key IS NOT NULL")
HAS_PROVIDER_ID = text("provider_message_id IS NOT NULL")


class Message(Table, table=True):
    """Every message to and from a customer. `body` is the text as sent or received (customer text when inbound);
    erasing the customer blanks it. `dedupe_key` makes a message happen once per cause (a booking's reminder, a
    campaign's message to one member)."""

    __tablename__ = "messages"
    __table_args__ = (
        Index(
            "uq_messages_dedupe", "workspace_id", "dedupe_key", unique=True, sqlite_where=ONCE, postgresql_where=ONCE
        ),
        Index(
            "uq_messages_provider_id",
            "channel",
            "provider_message_id",
            unique=True,
            sqlite_where=HAS_PROVIDER_ID,
            postgresql_where=HAS_PROVIDER_ID,
        ),
        Index("ix_messages_workspace_keyset", "workspace_id", "id"),
        Index("ix_messages_member", "workspace_id", "member_id", "created_at"),
        Index("ix_messages_campaign", "workspace_id", "campaign_id"),
        Index("ix_messages_address", "workspace_id", "channel", "address", "direction"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    member_id: str | None = Field(default=None, foreign_key="members.id", max_length=40, ondelete="SET NULL")
    channel: Channel = enum_field(Channel)
    direction: Direction = enum_field(Direction)
    kind: SendKind | None = enum_field(SendKind, None, nullable=True)  # outbound only
    status: MessageStatus = enum_field(MessageStatus)
    address: str = Field(max_length=320)  # the customer's phone or email, whichever way the message went
    template_id: str | None = Field(default=None, max_length=40)
    campaign_id: str | None = Field(default=None, max_length=40)
    booking_id: str | None = Field(default=None, max_length=40)
    subject: str | None = Field(default=None, max_length=300)
    body: str = ""
    variables: dict[str, Any] = json_field()
    dedupe_key: str | None = Field(default=None, max_length=120)
    provider_message_id: str | None = Field(default=None, max_length=120)
    outbox_id: str | None = Field(default=None, max_length=40)
    error: str | None = Field(default=None, max_length=500)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    sent_at: datetime | None = utc_field(nullable=True)
    delivered_at: datetime | None = utc_field(nullable=True)
    read_at: datetime | None = utc_field(nullable=True)
    failed_at: datetime | None = utc_field(nullable=True)


class SuppressionReason(StrEnum):
    stop = "stop"  # an SMS stop word (START or UNSTOP lifts it)
    unsubscribe = "unsubscribe"  # the one-click unsubscribe link of a marketing email
    bounce = "bounce"
    complaint = "complaint"


class Suppression(Table, table=True):
    """An address that nothing is sent to on a channel, whoever it belongs to (or nobody we know)."""

    __tablename__ = "message_suppressions"
    __table_args__ = (UniqueConstraint("workspace_id", "channel", "address", name="uq_message_suppressions_address"),)

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    channel: Channel = enum_field(Channel)
    address: str = Field(max_length=320)
    reason: SuppressionReason = enum_field(SuppressionReason)
    created_at: datetime = utc_field()


class ProviderEvent(Table, table=True):
    """A provider callback already applied (by the provider's own event id): a retried callback changes nothing."""

    __tablename__ = "messaging_provider_events"

    workspace_id: str = Field(primary_key=True, foreign_key="workspaces.id", max_length=40, ondelete="CASCADE")
    provider: str = Field(primary_key=True, max_length=20)  # a Provider
    event_id: str = Field(primary_key=True, max_length=200)
    received_at: datetime = utc_field()
