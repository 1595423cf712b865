"""Campaigns: one template sent to an audience chosen by a filter, now or at a set time, after approval."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field

from favmcp.core.contact import Channel
from favmcp.db.types import Table, enum_field, json_field, utc_field, workspace_fk


class CampaignStatus(StrEnum):
    draft = "draft"
    scheduled = "scheduled"  # approved and waiting for scheduled_at
    sending = "sending"  # its messages are queued and leaving at the channel's rate
    sent = "sent"  # every message has left (or failed)
    cancelled = "cancelled"


class Campaign(Table, table=True):
    """`audience` is a CampaignAudience dict (see campaigns.schemas); its messages carry campaign_id."""

    __tablename__ = "campaigns"
    __table_args__ = (
        Index("ix_campaigns_workspace_keyset", "workspace_id", "id"),
        Index("ix_campaigns_workspace_due", "workspace_id", "status", "scheduled_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    name: str = Field(max_length=200)
    channel: Channel = enum_field(Channel)
    template_id: str = Field(max_length=40)  # no foreign key: a template may go once no pending campaign uses it
    variables: dict[str, Any] = json_field()  # values of the template's variables other than the member's own
    audience: dict[str, Any] = json_field()
    status: CampaignStatus = enum_field(CampaignStatus, CampaignStatus.draft)
    scheduled_at: datetime | None = utc_field(nullable=True)
    attribution_days: int = 7
    audience_size: int | None = None  # members messaged when it was sent
    created_by_user_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    started_at: datetime | None = utc_field(nullable=True)
    finished_at: datetime | None = utc_field(nullable=True)
    cancelled_at: datetime | None = utc_field(nullable=True)
