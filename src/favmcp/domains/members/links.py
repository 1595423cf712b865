"""The members domain's own tables that point at a member, declared like every other domain's."""

from __future__ import annotations

from typing import Any

from favmcp.core.links import MemberLink, OnErase, OnMerge
from favmcp.domains.members.models import ConsentEvent, MemberEvent, MemberNote, MemberTag
from favmcp.domains.members.schemas import ConsentRecord, TimelineEvent, note_public


def _tag(row: MemberTag) -> dict[str, Any]:
    return {"tag": row.tag, "created_at": row.created_at}


def _note(row: MemberNote) -> dict[str, Any]:
    return note_public(row).model_dump(mode="json")


def _consent(row: ConsentEvent) -> dict[str, Any]:
    return ConsentRecord.model_validate(row, from_attributes=True).model_dump(mode="json")


def _event(row: MemberEvent) -> dict[str, Any]:
    return TimelineEvent.model_validate(row, from_attributes=True).model_dump(mode="json")


MEMBER_LINKS = [
    MemberLink("tags", MemberTag, "member_id", OnMerge.move_set, OnErase.delete, export=_tag),
    MemberLink("notes", MemberNote, "member_id", OnMerge.move, OnErase.delete, export=_note),
    MemberLink("consent_log", ConsentEvent, "member_id", OnMerge.move, OnErase.delete, export=_consent),
    MemberLink("timeline", MemberEvent, "member_id", OnMerge.move, OnErase.delete, export=_event),
]
