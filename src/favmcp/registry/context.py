"""What a handler receives: workspace-bound data access, the caller, injected time and randomness, events, outbox.

The transaction itself stays with the runner: a handler reaches the database only through `db` (bound to the
caller's workspace) or, before a workspace exists, through `unscoped` (signup and invite acceptance).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from favmcp.auth.credentials import Caller
from favmcp.auth.models import Role
from favmcp.auth.unscoped import Unscoped
from favmcp.config import Settings
from favmcp.core.clock import Random
from favmcp.core.errors import not_found, unauthenticated
from favmcp.core.events import DomainEvent
from favmcp.core.ids import new_id
from favmcp.core.lifecycle import Lifecycle
from favmcp.db.scoped import WorkspaceDB, column
from favmcp.effects.approvals import ApprovalRequest
from favmcp.effects.models import OutboxMessage
from favmcp.effects.outbox import queue_email
from favmcp.registry.domain import Platform
from favmcp.registry.models import EventRecord, StateTransition
from favmcp.registry.registry import Registry
from favmcp.registry.results import Image

S = TypeVar("S", bound=StrEnum)

MAX_EVENT_ROUNDS = 10  # subscribers may emit events in turn; a loop between domains is a bug, not a workload


@dataclass(frozen=True)
class ExecutionResult:
    """What an approved request's call answered: its data, or its error object."""

    ok: bool
    data: dict[str, Any]


@dataclass
class ToolContext:
    # Called on first use of `session`: a read whose handler never reaches the database opens no session.
    open_session: Callable[[], AsyncSession] = field(repr=False)
    caller: Caller
    settings: Settings
    random: Random
    now: datetime
    request_id: str
    client_address: str
    tool: str
    registry: Registry
    platform: Platform
    changes: dict[str, Any] = field(default_factory=dict)
    # What the tool's `prepare` step (or a job's `fetch`) found before the unit of work began (see ToolSpec.prepare).
    prepared: Any = None
    adopted_key: str | None = None
    pending_events: list[tuple[str, DomainEvent]] = field(default_factory=list)
    # Set while an approved request runs: the approval gate has been passed by a person.
    approved_request_id: str | None = None
    # Set by the approval gate when the caller may approve the held call at once (see the MCP transport).
    self_approvable: tuple[str, str] | None = None
    # Runs an approved request's stored call as its requester (the runner's; see approve_request).
    executor: Callable[[ToolContext, ApprovalRequest], Awaitable[ExecutionResult]] | None = field(
        default=None, repr=False
    )
    # Pictures a read tool returns beside its data (attach_image); the data stays the answer.
    images: list[Image] = field(default_factory=list, repr=False)

    async def execute_approved(self, request: ApprovalRequest) -> ExecutionResult:
        assert self.executor is not None, "only the runner's calls can execute approved requests"
        return await self.executor(self, request)

    @property
    def workspace_id(self) -> str:
        if self.caller.workspace_id is None:
            raise unauthenticated()
        return self.caller.workspace_id

    @cached_property
    def session(self) -> AsyncSession:
        return self.open_session()

    async def close_session(self) -> None:
        """Close the session if this call opened one (the runner's, for reads; writes own theirs)."""
        session = self.__dict__.pop("session", None)
        if session is not None:
            await session.close()

    @cached_property
    def db(self) -> WorkspaceDB:
        """Data access limited to the caller's workspace, and for a staff user to their bookings and those
        bookings' customers (owners, admins, managers and the system see the whole workspace)."""
        viewer = None
        if self.caller.role == Role.staff and self.caller.user_id is not None:
            viewer = self.platform.staff_viewer(self.workspace_id, self.caller.user_id)
        return WorkspaceDB(self.session, self.workspace_id, viewer)

    def unfiltered(self) -> ToolContext:
        """This call seeing the whole workspace (same session, events and audit changes): for invariants run by
        helpers that take a context, such as a staff member booking a customer who is not theirs yet."""
        if self.db.viewer is None:
            return self
        whole = copy.copy(self)
        whole.__dict__["db"] = self.db.unfiltered
        return whole

    @cached_property
    def unscoped(self) -> Unscoped:
        """For public tools, before a workspace is known: signup, invite tokens, one-time codes."""
        return Unscoped(self.session, self.settings, self.random, self.now, self.client_address)

    def attach_image(self, data: bytes, mime_type: str = "image/png") -> None:
        """Return a picture beside the answer (MCP image content); only read tools' pictures reach the client."""
        self.images.append(Image(mime_type, data))

    def record_change(self, **what: Any) -> None:
        """Say what changed, for the audit row (ids and field names, never personal data)."""
        self.changes.update(what)

    def emit(self, event: DomainEvent, *, workspace_id: str | None = None) -> None:
        """Announce what happened; subscribers run before the call commits, in its transaction."""
        self.pending_events.append((workspace_id or self.workspace_id, event))

    async def deliver_events(self) -> None:
        """Record each pending event and run its subscribers (which may emit more), until none is left."""
        for _ in range(MAX_EVENT_ROUNDS):
            if not self.pending_events:
                return
            batch, self.pending_events = self.pending_events, []
            for workspace_id, event in batch:
                self.session.add(
                    EventRecord(
                        id=new_id("dev"),
                        workspace_id=workspace_id,
                        name=event.name,
                        payload=event.model_dump(mode="json"),
                        request_id=self.request_id,
                        tool=self.tool,
                        created_at=self.now,
                    )
                )
                for subscriber in self.platform.subscribers_of(type(event)):
                    await subscriber(self, event)
        raise RuntimeError(f"domain events still pending after {MAX_EVENT_ROUNDS} rounds: a subscriber loop")

    async def transition(
        self,
        lifecycle: Lifecycle[S],
        model: type[SQLModel],
        entity_id: str,
        target: S,
        *,
        values: dict[str, Any] | None = None,
        db: WorkspaceDB | None = None,
        hint: str | None = None,
    ) -> bool:
        """Move a row to `target` if its lifecycle allows it; False when it is there already (a repeat).

        The row is locked, then moved by one conditional UPDATE; the change is written as a transition row and
        announced as the lifecycle's event for that state. Anything else is `invalid_state`.
        """
        db = db or self.db
        row = await db.get(model, entity_id, lock=True)
        if row is None:
            raise not_found(lifecycle.entity, entity_id)
        current = lifecycle.states(getattr(row, "status"))  # noqa: B009 (any lifecycle table has a status)
        if current == target:
            return False
        sources = lifecycle.sources_of(target)
        moved = await db.update_returning(
            model,
            column(model, "id") == entity_id,
            col(column(model, "status")).in_(sources),
            values={"status": target, **(values or {})},
        )
        if not moved:
            raise lifecycle.refuse(entity_id, current, target, hint)
        db.add(
            StateTransition(
                id=new_id("trn"),
                workspace_id=db.workspace_id,
                entity=lifecycle.entity,
                entity_id=entity_id,
                from_state=current.value,
                to_state=target.value,
                tool=self.tool,
                request_id=self.request_id,
                actor_user_id=self.caller.user_id,
                created_at=self.now,
            )
        )
        make_event = lifecycle.events.get(target)
        if make_event is not None:
            self.emit(make_event(entity_id, current, target), workspace_id=db.workspace_id)
        await db.refresh(row)
        return True

    def send_email(
        self, *, to: str, subject: str, body: str, html: str | None = None, workspace_id: str | None = None
    ) -> OutboxMessage:
        """Queue an email (plain text, and an HTML alternative if given) in this transaction; the dispatcher
        delivers it after commit."""
        return queue_email(
            self.session,
            self.settings,
            to=to,
            subject=subject,
            body=body,
            html=html,
            workspace_id=workspace_id,
            now=self.now,
        )

    def adopt_key(self, secret: str) -> None:
        """Ask the transport to continue this session with a new key (stdio after signup)."""
        self.adopted_key = secret
