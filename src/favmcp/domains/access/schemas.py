from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator

from favmcp.auth import scopes as scope_rules
from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.core.times import UtcDateTime
from favmcp.registry.spec import ConfirmInput, Preview, ToolInput, WriteInput

# The names of favmcp.registry.profiles.PROFILES (a test holds them equal).
ProfileName = Literal["readonly", "front_desk", "marketing", "finance", "owner"]


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
