"""The campaign lifecycle as data.

draft -> scheduled | sending | cancelled; scheduled -> sending | cancelled; sending -> sent | cancelled. `sent` and
`cancelled` are final. send_campaign makes a campaign scheduled or sending; the fan-out job moves a scheduled one
to sending when its time comes and a sending one to sent once every message has left.
"""

from __future__ import annotations

from favmcp.core.lifecycle import Lifecycle
from favmcp.domains.campaigns.models import CampaignStatus

CAMPAIGN_LIFECYCLE = Lifecycle(
    entity="campaign",
    states=CampaignStatus,
    transitions={
        CampaignStatus.draft: {
            CampaignStatus.scheduled: "send_campaign",
            CampaignStatus.sending: "send_campaign",
            CampaignStatus.cancelled: "cancel_campaign",
        },
        CampaignStatus.scheduled: {
            CampaignStatus.sending: "send_campaign",
            CampaignStatus.cancelled: "cancel_campaign",
        },
        CampaignStatus.sending: {
            CampaignStatus.sent: "send_campaign",
            CampaignStatus.cancelled: "cancel_campaign",
        },
    },
    events={},
)
