"""Domain events: what happened, as typed facts other domains react to.

A handler emits them through its context; the unit of work hands each to the subscribers declared by the
domains (in the same transaction: a subscriber's error fails the call) and records it in the event log, from
which webhooks and messaging fan out as outbox rows. Payloads are exported as JSON Schemas (schemas/events/).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict

from favmcp.core.schema import Schema


class DomainEvent(Schema):
    """Subclasses set `name` (`member.erased`) and carry ids and facts, never free text of customers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str]
