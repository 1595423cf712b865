"""The team invite lifecycle and the events of the team domain."""

from __future__ import annotations

from favmcp.core.events import DomainEvent
from favmcp.core.lifecycle import Lifecycle
from favmcp.domains.team.models import InviteStatus


class TeamInviteAccepted(DomainEvent):
    name = "team_invite.accepted"

    invite_id: str


class TeamInviteRevoked(DomainEvent):
    name = "team_invite.revoked"

    invite_id: str


class TeamMemberDeactivated(DomainEvent):
    name = "team_member.deactivated"

    user_id: str
    revoked_key_ids: list[str]


# Expired is not a stored state: a pending invite past expires_at reads as expired and can only be revoked.
INVITE_LIFECYCLE = Lifecycle(
    entity="invite",
    states=InviteStatus,
    transitions={
        InviteStatus.pending: {
            InviteStatus.accepted: "accept_team_invite_verify",
            InviteStatus.revoked: "revoke_team_invite",
        },
    },
    events={
        InviteStatus.accepted: lambda invite_id, _from, _to: TeamInviteAccepted(invite_id=invite_id),
        InviteStatus.revoked: lambda invite_id, _from, _to: TeamInviteRevoked(invite_id=invite_id),
    },
)
EVENTS: list[type[DomainEvent]] = [TeamInviteAccepted, TeamInviteRevoked, TeamMemberDeactivated]
