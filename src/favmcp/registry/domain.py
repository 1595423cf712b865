"""What a domain declares to the composition root: its tools, its links to customers, its events and reactions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import false, literal, select, union
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel

from favmcp.core.events import DomainEvent
from favmcp.core.links import MemberLink
from favmcp.core.schema import Schema
from favmcp.db.maintenance import SealedColumn
from favmcp.db.scoped import Viewer, WorkspaceDB, column
from favmcp.registry.spec import ToolSpec

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from favmcp.effects.dispatcher import Channel
    from favmcp.registry.context import ToolContext
    from favmcp.registry.runner import Runner

# A reaction to an event, run in the emitting call's transaction with the emitting caller's context.
Subscriber = Callable[["ToolContext", Any], Awaitable[None]]


class Commitment(Schema):
    """Something a staff member is committed to (a confirmed booking), which time off may not silently override."""

    kind: str
    id: str
    starts_at: datetime
    ends_at: datetime
    summary: str


# What a domain holds a staff member to in [starts_at, ends_at): (data access, user id, starts_at, ends_at).
CommitmentsOf = Callable[[WorkspaceDB, str, datetime, datetime], Awaitable[list[Commitment]]]


@dataclass(frozen=True)
class Job:
    """Work the server does by itself, for every workspace once per period (renewals, reconciliation): the worker
    runs `run` as the system in one unit of work per workspace, with its events and an audit row named `job:<name>`.
    A job must be safe to run twice for one period: a worker that dies mid-run leaves it to the next.

    fetch: what the run needs from a provider, fetched first with read access only and outside any transaction (no
    write lock waits on the provider); `run` finds it in ctx.prepared."""

    name: str
    every: timedelta
    run: Callable[[ToolContext], Awaitable[None]]
    fetch: Callable[[ToolContext], Awaitable[Any]] | None = None


# A domain's part of a customer's money in get_member_profile (see members.schemas.MemberMoney): its fields by name.
MoneyOf = Callable[["ToolContext", str], Awaitable[dict[str, Any]]]


# A domain's part of get_member_profile beyond money (upcoming bookings): its fields by name.
ProfileOf = Callable[["ToolContext", str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class StaffAssignment:
    """Rows that assign a customer to a staff member (a booking): a staff user sees the rows assigned to them, and
    the customers of those rows (see Platform.staff_viewer)."""

    model: type[SQLModel]
    member_column: str
    staff_column: str


# Where a customer can pay a document online now ("invoice" or "order", its id), if a payment domain has a link.
PaymentUrlOf = Callable[["ToolContext", str, str], Awaitable[str | None]]


# An HTTP endpoint of a domain (a provider's callback, a page a provider sends people back to): it checks the
# request itself (signatures) and makes its changes through `runner.run_system`.
HttpEndpoint = Callable[["Request", "Runner"], Awaitable["Response"]]

# How a domain delivers its own outbox rows (a message to a provider, a webhook): built once per process with the
# runner, through which it reads and settles its rows (run_system), since domains never hold a session.
ChannelOf = Callable[["Runner"], "Channel"]


@dataclass(frozen=True)
class Domain:
    name: str
    tools: Sequence[ToolSpec]
    member_links: Sequence[MemberLink] = ()
    events: Sequence[type[DomainEvent]] = ()
    subscribers: Mapping[type[DomainEvent], Sequence[Subscriber]] = field(default_factory=dict)
    staff_commitments: CommitmentsOf | None = None
    jobs: Sequence[Job] = ()
    member_money: MoneyOf | None = None
    payment_url: PaymentUrlOf | None = None
    member_profile: ProfileOf | None = None
    # Staff visibility (see Platform.staff_viewer): what assigns customers to staff, and the customers' own table.
    staff_assignments: Sequence[StaffAssignment] = ()
    customer_model: type[SQLModel] | None = None
    # "METHOD path" -> endpoint, e.g. "POST /hooks/stripe/{workspace_id}"
    http_routes: Mapping[str, HttpEndpoint] = field(default_factory=dict)
    # outbox channel name -> how it is delivered (see ChannelOf)
    outbox_channels: Mapping[str, ChannelOf] = field(default_factory=dict)
    # Sealed values in the domain's tables, resealed by `favmcp secrets reseal` when the server secret rotates.
    sealed_columns: Sequence[SealedColumn] = ()


@dataclass(frozen=True)
class Platform:
    """Every domain's declarations, merged: what the runner hands to each call."""

    domains: Sequence[Domain]

    @property
    def specs(self) -> list[ToolSpec]:
        return [spec for d in self.domains for spec in d.tools]

    @property
    def member_links(self) -> list[MemberLink]:
        return [link for d in self.domains for link in d.member_links]

    @property
    def events(self) -> list[type[DomainEvent]]:
        return [event for d in self.domains for event in d.events]

    @property
    def sealed_columns(self) -> list[SealedColumn]:
        return [sealed for d in self.domains for sealed in d.sealed_columns]

    @property
    def jobs(self) -> list[Job]:
        return [job for d in self.domains for job in d.jobs]

    async def member_money(self, ctx: ToolContext, member_id: str) -> dict[str, Any]:
        """Each domain's part of a customer's money (open invoices, subscriptions, credits), merged."""
        parts: dict[str, Any] = {}
        for d in self.domains:
            if d.member_money is not None:
                parts.update(await d.member_money(ctx, member_id))
        return parts

    async def member_profile(self, ctx: ToolContext, member_id: str) -> dict[str, Any]:
        """Each domain's part of a customer's profile (upcoming bookings), merged."""
        parts: dict[str, Any] = {}
        for d in self.domains:
            if d.member_profile is not None:
                parts.update(await d.member_profile(ctx, member_id))
        return parts

    def staff_viewer(self, workspace_id: str, user_id: str) -> Viewer:
        """What a staff user sees: the rows assigned to them (their bookings), the customers of those rows, and of
        every member-linked table the rows of those customers. Builds clauses (subqueries) only; no query."""
        assignments = [a for d in self.domains for a in d.staff_assignments]
        mine = {a.model: column(a.model, a.staff_column) == user_id for a in assignments}
        sources = [
            select(column(a.model, a.member_column)).where(
                column(a.model, "workspace_id") == workspace_id, column(a.model, a.staff_column) == user_id
            )
            for a in assignments
        ]
        customers: Any = union(*sources) if len(sources) > 1 else sources[0] if sources else None
        if customers is None:
            customers = select(literal(None)).where(false())
        rows: dict[type[SQLModel], ColumnElement[bool]] = {
            link.model: column(link.model, link.column).in_(customers) for link in self.member_links
        }
        for d in self.domains:
            if d.customer_model is not None:
                rows[d.customer_model] = column(d.customer_model, "id").in_(customers)
        rows.update(mine)  # an assignment row is seen by its staff member, not by all who share its customer
        return Viewer(user_id=user_id, rows=rows)

    async def payment_url(self, ctx: ToolContext, kind: str, target_id: str) -> str | None:
        """A link where the customer can pay the document now, when a payment domain has one."""
        for d in self.domains:
            if d.payment_url is not None and (url := await d.payment_url(ctx, kind, target_id)):
                return url
        return None

    @property
    def http_routes(self) -> dict[str, HttpEndpoint]:
        return {path: endpoint for d in self.domains for path, endpoint in d.http_routes.items()}

    def subscribers_of(self, event: type[DomainEvent]) -> list[Subscriber]:
        """The subscribers of `event`, then those of DomainEvent itself, which hear every event."""
        own = [fn for d in self.domains for fn in d.subscribers.get(event, ())]
        return own + [fn for d in self.domains for fn in d.subscribers.get(DomainEvent, ())]

    def outbox_channels(self, runner: Runner) -> dict[str, Channel]:
        return {name: make(runner) for d in self.domains for name, make in d.outbox_channels.items()}

    async def staff_commitments(
        self, db: WorkspaceDB, user_id: str, starts_at: datetime, ends_at: datetime
    ) -> list[Commitment]:
        found = [
            c
            for d in self.domains
            if d.staff_commitments is not None
            for c in await d.staff_commitments(db, user_id, starts_at, ends_at)
        ]
        return sorted(found, key=lambda c: (c.starts_at, c.id))

    def __post_init__(self) -> None:
        names = [e.name for e in self.events]
        if len(names) != len(set(names)):
            raise ValueError("an event name is declared twice")
        jobs = [job.name for job in self.jobs]
        if len(jobs) != len(set(jobs)):
            raise ValueError("a job name is declared twice")
        paths = [path for d in self.domains for path in d.http_routes]
        if len(paths) != len(set(paths)):
            raise ValueError("an HTTP route is declared twice")
        # DomainEvent itself is the key of subscribers that hear every event.
        undeclared = {e for d in self.domains for e in d.subscribers} - {DomainEvent, *self.events}
        if undeclared:
            raise ValueError(f"subscribers to undeclared events: {sorted(e.__name__ for e in undeclared)}")
