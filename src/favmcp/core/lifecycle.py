"""Lifecycles as data: states as an enum, allowed transitions as a table, the tool that makes each one.

The transition itself runs as one conditional `UPDATE ... WHERE status IN (states that may go there)` (see
`ToolContext.transition`), so two concurrent callers cannot both move a row; anything else is refused with
`invalid_state` naming the current state, the allowed next states and the tools that get there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from favmcp.core.errors import FavError, invalid_state
from favmcp.core.events import DomainEvent

S = TypeVar("S", bound=StrEnum)


@dataclass(frozen=True)
class Lifecycle(Generic[S]):
    """`transitions[current][next]` is the tool that makes that move; a state with no entry is final."""

    entity: str
    states: type[S]
    transitions: Mapping[S, Mapping[S, str]]
    # The event of each arrival state: (entity id, from, to) -> event; states without one emit nothing.
    events: Mapping[S, Callable[[str, S, S], DomainEvent]]

    def allowed_from(self, current: S) -> list[S]:
        return list(self.transitions.get(current, {}))

    def sources_of(self, target: S) -> list[S]:
        """The states from which `target` may be reached."""
        return [state for state, nexts in self.transitions.items() if target in nexts]

    def refuse(self, entity_id: str, current: S, target: S, hint: str | None = None) -> FavError:
        allowed = self.allowed_from(current)
        ways = {state.value: self.transitions[current][state] for state in allowed}
        nxt = ", ".join(f"{s} ({t})" for s, t in ways.items()) or "none (final state)"
        return invalid_state(
            f"The {self.entity} {entity_id} is {current.value} and cannot become {target.value}; "
            f"allowed next states: {nxt}.",
            current=current.value,
            allowed=[s.value for s in allowed],
            hint=hint or (f"Use {', '.join(sorted(set(ways.values())))}." if ways else None),
            entity=self.entity,
            id=entity_id,
            requested=target.value,
            tools=ways,
        )
