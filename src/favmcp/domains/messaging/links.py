"""Messages are a customer's records: merge moves them, erase blanks their text, export includes them. Erasing a
customer also stops what is still queued for them and blanks the outbox's copy of every message to them."""

from __future__ import annotations

from typing import Any

from sqlmodel import col

from favmcp.core.events import DomainEvent
from favmcp.core.links import MemberLink, OnErase, OnMerge
from favmcp.domains.members.events import MemberErased
from favmcp.domains.messaging import status
from favmcp.domains.messaging.message_tools import message_public
from favmcp.domains.messaging.models import Message, MessageStatus
from favmcp.effects.models import OutboxMessage, OutboxStatus
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Subscriber

ERASED = "erased"  # the outbox copy's recipient once the customer is erased


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


async def forget_erased(ctx: ToolContext, event: MemberErased) -> None:
    """The customer's queued messages are cancelled (nothing goes to an erased person) and the outbox rows of all
    their messages lose the address and the text (the outbox keeps customer messages as the business's record)."""
    whole = ctx.unfiltered()
    db = whole.db
    mine = col(Message.member_id) == event.member_id
    await status.advance(whole, MessageStatus.cancelled, mine, at=ctx.now)
    outbox_ids = [m.outbox_id for m in await db.all(db.select(Message, mine)) if m.outbox_id]
    for start in range(0, len(outbox_ids), 500):
        chunk = col(OutboxMessage.id).in_(outbox_ids[start : start + 500])
        await db.update(
            OutboxMessage,
            chunk,
            col(OutboxMessage.status) == OutboxStatus.pending,
            values={"status": OutboxStatus.failed, "last_error": "cancelled: the customer was erased"},
        )
        await db.update(OutboxMessage, chunk, values={"recipient": ERASED, "subject": "", "body": "", "html": ""})


SUBSCRIBERS: dict[type[DomainEvent], list[Subscriber]] = {MemberErased: [forget_erased]}
