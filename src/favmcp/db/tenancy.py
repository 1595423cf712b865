from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field

from favmcp.db.types import Table, json_field, utc_field

# What the sealed `payment_provider` settings are sealed for (see favmcp.core.sealing; resealed on key rotation).
PAYMENT_PROVIDER_SEAL = "payment_provider"


class Workspace(Table, table=True):
    """A business, the tenant: its id is the workspace_id every other row carries."""

    __tablename__ = "workspaces"
    __table_args__ = (Index("uq_workspaces_handle", "handle", unique=True),)

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    # The public name in URLs (/public/{handle}/posts): lower-case letters, digits and dashes, unique.
    handle: str | None = Field(default=None, max_length=60)
    industry: str | None = Field(default=None, max_length=80)
    country: str | None = Field(default=None, max_length=2)
    timezone: str = Field(default="UTC", max_length=64)
    currency: str = Field(default="EUR", max_length=3)
    locale: str = Field(default="en", max_length=16)
    # Whether the prices the business enters include tax (consumer prices in the EU) or exclude it (the default).
    prices_include_tax: bool = Field(default=False)
    # The payment provider's settings (Stripe keys), sealed with the server secret; write-only through the tools.
    payment_provider: str | None = Field(default=None)
    contact_email: str | None = Field(default=None, max_length=320)
    contact_phone: str | None = Field(default=None, max_length=20)
    business_hours: dict[str, Any] = json_field()
    closures: list[Any] = json_field(list)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
