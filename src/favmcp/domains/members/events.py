"""What happens to customers, for other domains to react to (loyalty, messaging, webhooks)."""

from __future__ import annotations

from favmcp.core.events import DomainEvent


class MemberCreated(DomainEvent):
    name = "member.created"

    member_id: str
    source: str | None


class MemberUpdated(DomainEvent):
    name = "member.updated"

    member_id: str
    fields: list[str]


class MemberMerged(DomainEvent):
    name = "member.merged"

    survivor_id: str
    duplicate_id: str


class MemberErased(DomainEvent):
    name = "member.erased"

    member_id: str


EVENTS: list[type[DomainEvent]] = [MemberCreated, MemberUpdated, MemberMerged, MemberErased]
