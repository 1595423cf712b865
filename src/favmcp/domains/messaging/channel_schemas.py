"""configure_channel and get_channel_status: a channel's provider settings in, its public view out (secrets never
leave: only their names, in secrets_set)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, model_validator

from favmcp.core.contact import Channel
from favmcp.core.schema import Schema
from favmcp.domains.messaging.models import ChannelHealth, Provider
from favmcp.registry.spec import ToolInput, WriteInput

Clock = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
Token = Annotated[str, Field(min_length=1, max_length=500)]
Ident = Annotated[str, Field(min_length=1, max_length=120)]

# Which fields belong to which channel, and which of them are secrets (sealed, write-only).
FIELDS: dict[Channel, tuple[str, ...]] = {
    Channel.whatsapp: ("phone_number_id", "waba_id", "access_token", "app_secret", "verify_token", "from_number"),
    Channel.sms: ("account_sid", "auth_token", "from_number"),
    Channel.email: ("host", "port", "username", "password", "starttls", "from_address", "webhook_secret"),
}
REQUIRED: dict[Channel, tuple[str, ...]] = {
    Channel.whatsapp: ("phone_number_id", "waba_id", "access_token", "app_secret", "verify_token", "from_number"),
    Channel.sms: ("account_sid", "auth_token", "from_number"),
    Channel.email: ("host", "from_address"),
}
SECRETS = frozenset({"access_token", "app_secret", "verify_token", "auth_token", "password", "webhook_secret"})
# A change to one of these is a change of credentials: the channel is unverified until it proves itself again.
CREDENTIALS = SECRETS | {"phone_number_id", "waba_id", "account_sid", "host", "port", "username"}


class QuietHours(Schema):
    start: Clock = Field(description="Local HH:MM.")
    end: Clock

    @model_validator(mode="after")
    def _differ(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class Reminders(Schema):
    template_id: Ident = Field(description="A transactional template of this channel.")
    hours_before: int = Field(ge=1, le=168)


class ConfigureChannelInput(WriteInput):
    null_means = frozenset({"quiet_hours", "reminders"})

    channel: Channel
    phone_number_id: Ident | None = None
    waba_id: Ident | None = None
    access_token: Token | None = None
    app_secret: Token | None = None
    verify_token: Token | None = None
    account_sid: str | None = Field(default=None, pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: Token | None = None
    from_number: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$", description="E.164.")
    host: str | None = Field(default=None, max_length=253, pattern=r"^[A-Za-z0-9.:\[\]-]+$")
    port: int | None = Field(default=None, ge=1, le=65535)
    username: str | None = Field(default=None, max_length=320)
    password: Token | None = None
    starttls: bool | None = None
    from_address: str | None = Field(default=None, max_length=320)
    webhook_secret: Token | None = None
    quiet_hours: QuietHours | None = Field(default=None, description="Marketing waits outside; null: none.")
    reminders: Reminders | None = Field(default=None, description="Booking reminders; null: off.")


class ChannelPublic(Schema):
    id: str
    channel: Channel
    provider: Provider
    sender: str
    health: ChannelHealth
    verified_at: datetime | None
    last_error: str | None
    settings: dict[str, Any] = Field(description="Without secrets.")
    secrets_set: list[str]
    callback_url: str | None = Field(description="To paste into the provider's console.")


class GetChannelStatusInput(ToolInput):
    pass


class LastFailure(Schema):
    message_id: str
    at: datetime
    error: str | None


class ChannelStatus(Schema):
    channel: Channel
    configured: bool
    provider: Provider | None = None
    sender: str | None = None
    health: ChannelHealth | None = None
    verified_at: datetime | None = None
    last_error: str | None = None
    last_24h: dict[str, int] = Field(description="Outbound messages created in the last 24 h, by status.")
    last_failure: LastFailure | None = None


class ChannelStatusList(Schema):
    channels: list[ChannelStatus]
