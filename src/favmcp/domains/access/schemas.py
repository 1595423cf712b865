from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from favmcp.auth import scopes as scope_rules
from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.core.times import UtcDateTime
from favmcp.registry.spec import ConfirmInput, Preview, ToolInput, WriteInput

# The names of favmcp.registry.profiles.PROFILES (a test holds them equal).
ProfileName = Literal["readonly", "front_desk", "marketing", "finance", "owner", "publishable"]
ORIGIN = re.compile(r"^https?://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$")


def _origin(value: str) -> str:
    """An origin as browsers send it: lower-case scheme and host, a port only when given, no path."""
    origin = value.strip().lower()
    if not ORIGIN.fullmatch(origin):
        raise ValueError("an origin is scheme://host[:port], e.g. https://studio.example, without a path")
    return origin


Origin = Annotated[str, Field(max_length=200), AfterValidator(_origin)]


class WhoamiInput(ToolInput):
    pass


class Whoami(Schema):
    authenticated: bool
    workspace_id: str | None = None
    workspace_name: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    role: str | None = None
    scopes: list[str] = Field(default_factory=list)
    key_id: str | None = None
    key_expires_at: datetime | None = None
    profile: str | None = Field(
        default=None, description="The tool profile this session is narrowed to (the key's, or the URL's)."
    )
    message: str


class CreateApiKeyInput(WriteInput):
    name: str = Field(min_length=1, max_length=120, description="What the key is for, e.g. 'booking agent'.")
    scopes: list[str] | None = Field(
        default=None,
        max_length=80,
        description="e.g. members:read, bookings:write; default: all of yours.",
    )
    expires_at: UtcDateTime | None = Field(default=None, description="Optional expiry (ISO 8601 with offset).")
    profile: ProfileName | None = Field(
        default=None,
        description="Bind the key to a tool profile: it lists and calls only that profile's tools, and is refused at "
        "another profile's URL. Default: every tool its scopes allow.",
    )
    publishable: bool = Field(
        default=False,
        description="A fav_pub_ key safe to embed in a web page: the publishable profile only (services, free "
        "slots, published posts, booking requests that wait for your confirmation), on the REST API only, limited "
        "per visitor's address. Needs allowed_origins; takes no scopes.",
    )
    allowed_origins: list[Origin] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="A publishable key's CORS allowlist: the origins (https://studio.example) whose pages may "
        "call with it.",
    )

    @field_validator("scopes")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            unknown = [s for s in value if not scope_rules.is_valid(s)]
            if unknown:
                raise ValueError(f"unknown scopes: {', '.join(unknown)}")
            if not value:
                raise ValueError("give at least one scope, or leave scopes out")
        return value

    @model_validator(mode="after")
    def _publishable(self) -> CreateApiKeyInput:
        if self.publishable:
            if not self.allowed_origins:
                raise ValueError("a publishable key needs allowed_origins")
            if self.scopes is not None:
                raise ValueError("a publishable key has fixed scopes: leave scopes out")
            if self.profile not in (None, "publishable"):
                raise ValueError("a publishable key is bound to the publishable profile")
        elif self.allowed_origins is not None or self.profile == "publishable":
            raise ValueError("allowed_origins and the publishable profile go with publishable: true")
        return self


class KeyStatus(StrEnum):
    active = "active"
    expired = "expired"
    revoked = "revoked"


class ApiKeyPublic(Schema):
    id: str
    name: str
    user_id: str
    display_prefix: str = Field(description="The first characters of the key, to recognise it.")
    scopes: list[str] = Field(description="The key's own scopes; empty when it follows its holder's role.")
    follows_role: bool = Field(description="A personal key: exactly the scopes of its holder's current role.")
    profile: str | None = Field(default=None, description="The tool profile the key is bound to, if any.")
    allowed_origins: list[str] | None = Field(
        default=None, description="A publishable (fav_pub_) key's CORS allowlist; null for a secret key."
    )
    status: KeyStatus
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class CreatedApiKey(Schema):
    key: ApiKeyPublic
    api_key: str = Field(description="The secret, shown this once. Store it now.")


class ListApiKeysInput(ToolInput, PageParams):
    include_revoked: bool = Field(default=False, description="Also list revoked keys.")


class ApiKeyPage(Page[ApiKeyPublic]):
    pass


class RevokeApiKeyInput(ConfirmInput):
    key_id: str = Field(min_length=1, max_length=40, description="The key's id (key_...), from list_api_keys.")


class RevokeKeyPreview(Preview):
    key: ApiKeyPublic
