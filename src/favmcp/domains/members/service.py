"""Member workflows shared by the tools: loading with merge resolution, uniqueness, events, consent, erasure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, select

from favmcp.core.errors import conflict, invalid_state, not_found
from favmcp.core.ids import new_id
from favmcp.db.scoped import column as ref
from favmcp.domains.members.models import (
    ConsentEvent,
    Member,
    MemberEvent,
    MemberNote,
    MemberStatus,
    MemberTag,
    NoteAuthor,
)
from favmcp.domains.members.schemas import ConsentState, MemberPublic, NotePublic, UntrustedText
from favmcp.registry.context import ToolContext

# Tables that point at a member. Merge moves their rows to the survivor, export dumps them and erase clears
# the member's own. Later domains (bookings, invoices, ledgers) append theirs with `references.append`.
references: list[tuple[type[SQLModel], str]] = [
    (MemberTag, "member_id"),
    (MemberNote, "member_id"),
    (ConsentEvent, "member_id"),
    (MemberEvent, "member_id"),
]


async def load(ctx: ToolContext, member_id: str, *, for_update: bool = False) -> tuple[Member, str | None]:
    """The member, following a merge to the survivor; returns (member, the merged id asked for or None)."""
    member = await ctx.db.get(Member, member_id, for_update=for_update)
    if member is None:
        raise not_found("member", member_id, hint="Find members with search_members.")
    if member.status == MemberStatus.merged and member.merged_into:
        survivor = await ctx.db.get(Member, member.merged_into, for_update=for_update)
        if survivor is None:
            raise not_found("member", member_id)
        return survivor, member_id
    return member, None


async def load_active(ctx: ToolContext, member_id: str, *, for_update: bool = False) -> Member:
    member, _ = await load(ctx, member_id, for_update=for_update)
    if member.status != MemberStatus.active:
        raise invalid_state("member", member.status, [])
    return member


async def ensure_contact_free(ctx: ToolContext, email: str | None, phone: str | None, exclude_id: str | None) -> None:
    """Email and phone are unique among active members; a clash names the existing member."""
    clauses = [col(Member.email) == email] if email else []
    clauses += [col(Member.phone) == phone] if phone else []
    if not clauses:
        return
    stmt = ctx.db.select(Member).where(col(Member.status) == MemberStatus.active, or_(*clauses))
    if exclude_id:
        stmt = stmt.where(col(Member.id) != exclude_id)
    existing = await ctx.db.first(stmt)
    if existing is not None:
        field = "email" if email and existing.email == email else "phone"
        raise conflict(
            f"An active member already has this {field}: {existing.id}.",
            hint="Update or merge the existing member (update_member, merge_members) instead of creating another.",
            details={"existing_member_id": existing.id, "field": field},
        )


async def flush_contact(ctx: ToolContext, member: Member) -> None:
    """Flush a new or changed member; a concurrent writer who took the email or phone first wins cleanly."""
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(member)
            await ctx.session.flush()
    except IntegrityError:
        await ensure_contact_free(ctx, member.email, member.phone, member.id)
        raise


def record_event(ctx: ToolContext, member_id: str, kind: str, summary: str, data: dict[str, Any] | None = None) -> None:
    ctx.db.add(
        MemberEvent(
            id=new_id("evt"),
            workspace_id=ctx.workspace_id,
            member_id=member_id,
            kind=kind,
            summary=summary,
            data=data or {},
            actor_user_id=ctx.caller.user_id,
            created_at=ctx.now,
        )
    )


async def tags_of(ctx: ToolContext, member_ids: Iterable[str]) -> dict[str, list[str]]:
    ids = list(member_ids)
    found: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        stmt = ctx.db.select(MemberTag).where(col(MemberTag.member_id).in_(ids)).order_by(col(MemberTag.tag))
        for row in await ctx.db.all(stmt):
            found[row.member_id].append(row.tag)
    return found


async def consent_of(ctx: ToolContext, member_id: str) -> list[ConsentState]:
    """The latest consent event per channel."""
    stmt = ctx.db.select(ConsentEvent).where(col(ConsentEvent.member_id) == member_id)
    latest: dict[str, ConsentEvent] = {}
    for event in await ctx.db.all(stmt.order_by(col(ConsentEvent.recorded_at), col(ConsentEvent.id))):
        latest[event.channel] = event
    return [
        ConsentState(channel=e.channel, granted=e.granted, source=e.source, recorded_at=e.recorded_at)
        for e in sorted(latest.values(), key=lambda e: e.channel)
    ]


def add_consent(ctx: ToolContext, member_id: str, channel: str, granted: bool, source: str) -> None:
    ctx.db.add(
        ConsentEvent(
            id=new_id("cns"),
            workspace_id=ctx.workspace_id,
            member_id=member_id,
            channel=channel,  # type: ignore[arg-type]
            granted=granted,
            source=source,
            recorded_at=ctx.now,
        )
    )


async def attach(ctx: ToolContext, member_id: str, tags: Iterable[str]) -> int:
    """Add tags a member does not have yet; returns how many were added."""
    have = set((await tags_of(ctx, [member_id]))[member_id])
    new = sorted(set(tags) - have)
    for tag in new:
        ctx.db.add(MemberTag(workspace_id=ctx.workspace_id, member_id=member_id, tag=tag, created_at=ctx.now))
    return len(new)


async def detach(ctx: ToolContext, member_id: str, tags: Iterable[str]) -> int:
    """Remove tags from a member; returns how many it had."""
    result = await ctx.session.execute(
        ctx.db.delete(MemberTag).where(col(MemberTag.member_id) == member_id, col(MemberTag.tag).in_(list(tags)))
    )
    return int(getattr(result, "rowcount", 0) or 0)


TagChange = Callable[[ToolContext, str, list[str]], Awaitable[int]]


async def public(ctx: ToolContext, member: Member) -> MemberPublic:
    tags = (await tags_of(ctx, [member.id]))[member.id]
    return MemberPublic.model_validate(
        {**member.model_dump(), "tags": tags, "consent": await consent_of(ctx, member.id)}
    )


def note_public(note: MemberNote) -> NotePublic:
    body: str | UntrustedText = note.body
    if note.author != NoteAuthor.staff:
        body = UntrustedText(source=note.author, text=note.body)
    return NotePublic(
        id=note.id, author=note.author, author_user_id=note.author_user_id, body=body, created_at=note.created_at
    )


async def erase(ctx: ToolContext, member: Member, *, status: MemberStatus, merged_into: str | None = None) -> None:
    """Remove personal data and the member's own records; rows of other domains keep the pseudonymous id."""
    for model, column in references:
        await ctx.session.execute(ctx.db.delete(model).where(ref(model, column) == member.id))
    member.name = "Erased member" if status == MemberStatus.erased else "Merged member"
    member.email = member.phone = member.birthday = member.source = None
    member.status, member.merged_into = status, merged_into
    member.erased_at = member.updated_at = ctx.now
    ctx.session.add(member)
    await ctx.session.flush()


async def move_references(ctx: ToolContext, from_id: str, to_id: str) -> None:
    """Re-point every row of `from_id` at `to_id`. Tags are a set: only the missing ones move."""
    await attach(ctx, to_id, (await tags_of(ctx, [from_id]))[from_id])
    for model, column in references:
        of_duplicate = ref(model, column) == from_id
        if model is MemberTag:
            await ctx.session.execute(ctx.db.delete(model).where(of_duplicate))
        else:
            await ctx.session.execute(ctx.db.update(model).where(of_duplicate).values({column: to_id}))


async def count_by_tag(ctx: ToolContext) -> list[tuple[str, int]]:
    stmt = (
        select(MemberTag.tag, func.count())
        .join(Member, col(Member.id) == col(MemberTag.member_id))
        .where(col(MemberTag.workspace_id) == ctx.workspace_id, col(Member.status) == MemberStatus.active)
        .group_by(col(MemberTag.tag))
        .order_by(func.count().desc(), col(MemberTag.tag))
    )
    return [(tag, int(n)) for tag, n in (await ctx.session.execute(stmt)).all()]
