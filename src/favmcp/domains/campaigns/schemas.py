"""Arguments and answers of the campaign tools."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field, model_validator

from favmcp.core.contact import Channel
from favmcp.core.money import Amount, CurrencyCode
from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.core.times import UtcDateTime
from favmcp.domains.campaigns.models import CampaignStatus
from favmcp.domains.members.models import Lifecycle
from favmcp.domains.members.schemas import Tag
from favmcp.registry.spec import GatedResult, ToolInput, WriteInput

CampaignId = Annotated[str, Field(min_length=1, max_length=40, description="A campaign id (cmp_...).")]


# Who a campaign is for: every criterion given applies; tags and lifecycle match any of those listed.
class CampaignAudience(Schema):
    model_config = ConfigDict(extra="forbid")

    tags: list[Tag] = Field(default_factory=list, max_length=20, description="Any of these.")
    lifecycle: list[Lifecycle] = Field(default_factory=list, max_length=5, description="Any of these.")
    tier_id: str | None = Field(default=None, max_length=40)
    inactive_days: int | None = Field(
        default=None, ge=1, le=3650, description="No visit, payment, order or message from them in N days."
    )
    min_spend: Amount | None = Field(default=None, description="Lifetime spend, minor units (needs invoices:read).")
    max_spend: Amount | None = Field(default=None, description="At most.")
    currency: CurrencyCode | None = Field(default=None, description="Of min_spend/max_spend: the workspace's.")

    @model_validator(mode="after")
    def _spend(self) -> CampaignAudience:
        if self.min_spend is not None and self.max_spend is not None and self.max_spend < self.min_spend:
            raise ValueError("max_spend must not be below min_spend")
        return self


class CreateCampaignInput(WriteInput, CampaignAudience):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    channel: Channel
    template_id: str = Field(min_length=1, max_length=40, description="An approved marketing template.")
    variables: dict[str, Annotated[str, Field(max_length=500)]] = Field(
        default_factory=dict, max_length=20, description="Template values; name, first_name: the member's."
    )
    scheduled_at: UtcDateTime | None = Field(default=None, description="Send then (after approval).")
    attribution_days: int = Field(default=7, ge=1, le=90, description="Days bookings and payments count.")

    def audience(self) -> CampaignAudience:
        return CampaignAudience.model_validate(self.model_dump(include=set(CampaignAudience.model_fields)))


class CampaignInput(ToolInput):
    campaign_id: CampaignId


class CampaignWriteInput(WriteInput):
    campaign_id: CampaignId


class SendTestInput(WriteInput):
    campaign_id: CampaignId
    user_id: str | None = Field(default=None, max_length=40, description="A team member; default: you.")


class ListCampaignsInput(ToolInput, PageParams):
    status: CampaignStatus | None = None


class MessageCounts(Schema):
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    cancelled: int = 0


class Rendered(Schema):
    subject: str | None
    body: str = Field(description="The template filled with the campaign's variables; {{name}} per customer.")


class CampaignSummary(Schema):
    id: str
    name: str
    channel: Channel
    status: CampaignStatus
    scheduled_at: datetime | None
    started_at: datetime | None
    recipients: int = Field(description="Customers messaged so far.")
    counts: MessageCounts


class CampaignPage(Page[CampaignSummary]):
    pass


class CampaignPublic(CampaignSummary):
    template_id: str
    variables: dict[str, Any]
    audience: CampaignAudience
    attribution_days: int
    audience_size: int | None = Field(description="Customers messaged, once every message is queued.")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    cancelled_at: datetime | None
    sample: Rendered | None = Field(description="Null when the template is gone.")


class AudienceSample(Schema):
    member_id: str
    name: str
    address: str = Field(description="Masked.")


class Excluded(Schema):
    unreachable: int = Field(description="Merged or erased.")
    no_address: int
    no_consent: int
    opted_out: int
    suppressed: int


class AudiencePreview(Schema):
    campaign_id: str
    channel: Channel
    matched: int = Field(description="Members the filter matches.")
    count: int = Field(description="Those a send would reach.")
    excluded: Excluded
    sample: list[AudienceSample]


class SentTest(Schema):
    message_id: str
    campaign_id: str
    recipient: str
    subject: str | None
    body: str


class CampaignSent(GatedResult):
    campaign_id: str | None = None
    campaign_status: CampaignStatus | None = None
    queued: int = Field(default=0, description="Messages queued now; the rest follow each minute.")
    skipped: int = Field(default=0, description="Refused by a messaging rule.")


class Revenue(Schema):
    currency: str
    amount: int = Field(description="Payments less refunds, minor units.")


class CampaignStats(Schema):
    campaign_id: str
    status: CampaignStatus
    recipients: int
    counts: MessageCounts
    opted_out: int = Field(description="Recipients who opted out or were suppressed after their message.")
    replies: int = Field(description="Recipients who wrote back after their message.")
    bookings: int = Field(description="Booked by recipients within attribution_days after their message was sent.")
    revenue: list[Revenue] = Field(description="Paid by recipients in that window, per currency.")
    attribution_days: int
