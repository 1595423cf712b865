"""Messages are a customer's records: merge moves them, erase blanks their text, export includes them."""

from __future__ import annotations

from typing import Any

from favmcp.core.links import MemberLink, OnErase, OnMerge
from favmcp.domains.messaging.message_tools import message_public
from favmcp.domains.messaging.models import Message


def _export(message: Message) -> dict[str, Any]:
    return message_public(message).model_dump(mode="json")


MEMBER_LINKS: list[MemberLink] = [
    MemberLink(
        "messages",
        Message,
        "member_id",
        OnMerge.move,
        OnErase.pseudonymise,
        personal_fields={"body": "", "address": "", "subject": None, "variables": {}},
        export=_export,
    ),
]
