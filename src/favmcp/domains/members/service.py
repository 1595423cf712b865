"""Member workflows shared by the tools: loading (merge resolution, row locks), uniqueness, timeline, consent,
and erasure and merge driven by the links every domain declares."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from favmcp.core.clock import utc
from favmcp.core.contact import is_national, normalise_phone, phone_argument, phone_text
from favmcp.core.errors import conflict, invalid_state, not_found
from favmcp.core.ids import new_id
from favmcp.core.links import MemberLink, OnErase, OnMerge
from favmcp.db.scoped import column
from favmcp.domains.members import imports
from favmcp.domains.members.models import ConsentEvent, Member, MemberEvent, MemberStatus, MemberTag
from favmcp.domains.members.schemas import ConsentState, MemberMoney, MemberPublic
from favmcp.registry.context import ToolContext

FIND = "Find members with search_members."


async def load(ctx: ToolContext, member_id: str) -> tuple[Member, str | None]:
    """For reads: the member, following a merge to the survivor; returns (member, the merged id asked for or None)."""
    member = await ctx.db.get(Member, member_id)
    if member is None:
        raise not_found("member", member_id, hint=FIND)
    if member.status == MemberStatus.merged and member.merged_into:
        survivor = await ctx.db.get(Member, member.merged_into)
        if survivor is None:
            raise not_found("member", member_id, hint=FIND)
        return survivor, member_id
    return member, None


async def load_for_write(ctx: ToolContext, member_id: str) -> Member:
    """For writes: the active member, its row locked so that writers to one member (merge, erase, notes, tags,
    consent) take turns. A merged id is refused with the survivor's id: a write never silently lands elsewhere."""
    member = await ctx.db.get(Member, member_id, lock=True)
    if member is None:
        raise not_found("member", member_id, hint=FIND)
    ensure_active(member)
    return member


async def lock(ctx: ToolContext, member_id: str) -> None:
    """Take a customer's row lock whatever their state. A write to their money (a payment, a refund) takes it
    before the rows it changes, the order merge and erase take them in, so neither waits on the other in a cycle."""
    await ctx.db.get(Member, member_id, lock=True)


def ensure_active(member: Member) -> None:
    if member.status == MemberStatus.merged:
        raise invalid_state(
            f"Member {member.id} was merged into {member.merged_into}; it cannot be changed any more.",
            current="merged",
            hint=f"Use the surviving member {member.merged_into} instead.",
            survivor_id=member.merged_into,
        )
    if member.status == MemberStatus.erased:
        raise invalid_state(
            f"Member {member.id} was erased; it cannot be changed any more.",
            current="erased",
            hint="Create a new member if the person comes back (create_member).",
        )


async def phone_country(ctx: ToolContext, *phones: str | None) -> str | None:
    """The workspace's country, read (once) only when one of `phones` is written without its country code."""
    if any(p and is_national(p) for p in phones):
        return (await ctx.db.workspace()).country
    return None


async def phone_of(ctx: ToolContext, value: str | None) -> str | None:
    """A `phone` argument as E.164 (None stays None); refused as a validation error on the field."""
    if value is None:
        return None
    return phone_argument(value, await phone_country(ctx, value), "phone")


async def phone_in(ctx: ToolContext, text: str) -> str | None:
    """The E.164 form of a search text that is a phone number, so that 06 12345678 finds +31612345678."""
    try:
        return normalise_phone(phone_text(text), await phone_country(ctx, text))
    except ValueError:
        return None


async def ensure_contact_free(ctx: ToolContext, email: str | None, phone: str | None, exclude_id: str | None) -> None:
    """Email and phone are unique among active members; a clash names the existing member."""
    clauses = [col(Member.email) == email] if email else []
    clauses += [col(Member.phone) == phone] if phone else []
    if not clauses:
        return
    stmt = ctx.db.select(Member, col(Member.status) == MemberStatus.active, or_(*clauses))
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


async def save_member(ctx: ToolContext, member: Member, changes: dict[str, Any] | None = None) -> None:
    """Write a new member, or `changes` to one, inside a savepoint: a concurrent writer who took the email or
    phone first wins cleanly (a conflict naming them) and this call's transaction stays usable. The changes are
    applied inside the savepoint, since everything pending before it would be flushed outside it."""
    member_id, email, phone = (
        member.id,
        (changes or {}).get("email", member.email),
        (changes or {}).get("phone", member.phone),
    )
    try:
        async with ctx.db.savepoint():
            for name, value in (changes or {}).items():
                setattr(member, name, value)
            ctx.db.add(member)
            await ctx.db.flush()
    except IntegrityError:
        # The savepoint's rollback expired the member; compare with what this call tried to write.
        await ensure_contact_free(ctx, email, phone, member_id)
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


async def tags_of(ctx: ToolContext, member_id: str) -> list[str]:
    """A member's tags, sorted here as search_members sorts them (code points, whatever the database collation)."""
    return sorted(t.tag for t in await ctx.db.all(ctx.db.select(MemberTag, col(MemberTag.member_id) == member_id)))


async def consent_of(ctx: ToolContext, member_id: str) -> list[ConsentState]:
    """The latest consent event per channel."""
    stmt = ctx.db.select(ConsentEvent, col(ConsentEvent.member_id) == member_id)
    latest: dict[str, ConsentEvent] = {}
    for event in await ctx.db.all(stmt.order_by(col(ConsentEvent.recorded_at), col(ConsentEvent.id))):
        latest[event.channel] = event
    return [
        ConsentState(channel=e.channel, granted=e.granted, source=e.source, recorded_at=e.recorded_at)
        for e in sorted(latest.values(), key=lambda e: e.channel)
    ]


async def add_consent(ctx: ToolContext, member_id: str, channel: str, granted: bool, source: str) -> None:
    """Append to the consent log, after its latest entry: a call that waited for the member's lock started
    before the entries written meanwhile, and its own must still read as the latest."""
    stmt = ctx.db.select_columns(ConsentEvent, func.max(col(ConsentEvent.recorded_at))).where(
        col(ConsentEvent.member_id) == member_id
    )
    latest = (await ctx.db.rows(stmt))[0][0]
    recorded_at = ctx.now if latest is None else max(ctx.now, utc(latest) + timedelta(microseconds=1))
    ctx.db.add(
        ConsentEvent(
            id=new_id("cns"),
            workspace_id=ctx.workspace_id,
            member_id=member_id,
            channel=channel,  # type: ignore[arg-type]
            granted=granted,
            source=source,
            recorded_at=recorded_at,
        )
    )
    await ctx.db.flush()


async def attach(ctx: ToolContext, member_id: str, tags: Iterable[str]) -> int:
    """Add tags a member does not have yet (insert-or-ignore: concurrent attaches of one tag both succeed)."""
    rows = [{"member_id": member_id, "tag": tag, "created_at": ctx.now} for tag in sorted(set(tags))]
    return await ctx.db.insert_or_ignore(MemberTag, rows)


async def detach(ctx: ToolContext, member_id: str, tags: Iterable[str]) -> int:
    """Remove tags from a member; returns how many it had."""
    return await ctx.db.delete(MemberTag, col(MemberTag.member_id) == member_id, col(MemberTag.tag).in_(list(tags)))


async def public(ctx: ToolContext, member: Member) -> MemberPublic:
    return MemberPublic.model_validate(
        {**member.model_dump(), "tags": await tags_of(ctx, member.id), "consent": await consent_of(ctx, member.id)}
    )


def _of(link: MemberLink, member_id: str) -> Any:
    return column(link.model, link.column) == member_id


async def count_links(ctx: ToolContext, member_id: str, links: Iterable[MemberLink]) -> dict[str, int]:
    return {link.label: await ctx.db.count(link.model, _of(link, member_id)) for link in links}


async def erase(ctx: ToolContext, member: Member, *, status: MemberStatus, merged_into: str | None = None) -> None:
    """Remove personal data, as every domain's links declare: personal records go, financial records stay under
    the (now pseudonymous) member id with their personal fields cleared. Import staging forgets the person."""
    for link in ctx.platform.member_links:
        if link.on_erase is OnErase.delete:
            await ctx.db.delete(link.model, _of(link, member.id))
        elif link.on_erase is OnErase.pseudonymise:
            await ctx.db.update(link.model, _of(link, member.id), values=link.personal_fields)
    await imports.forget(ctx, member.email, member.phone)
    member.name = "Erased member" if status == MemberStatus.erased else "Merged member"
    member.email = member.phone = member.birthday = member.source = None
    member.status, member.merged_into = status, merged_into
    member.erased_at = member.updated_at = ctx.now
    await ctx.db.flush()


async def move_links(ctx: ToolContext, from_id: str, to_id: str) -> None:
    """Re-point every linked row of `from_id` at `to_id`, as each link declares."""
    for link in ctx.platform.member_links:
        if link.on_merge is OnMerge.move:
            await ctx.db.update(link.model, _of(link, from_id), values={link.column: to_id})
        elif link.on_merge is OnMerge.move_set:
            # Delete first: a row keyed by its own id would clash with itself. What then clashes with the
            # survivor's own rows (a tag both have, a place in the same waitlist) is dropped.
            rows = await ctx.db.all(ctx.db.select(link.model, _of(link, from_id)))
            moved = [{**r.model_dump(exclude={"workspace_id"}), link.column: to_id} for r in rows]
            await ctx.db.delete(link.model, _of(link, from_id))
            await ctx.db.insert_or_ignore(link.model, moved)


async def export_records(ctx: ToolContext, member_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every exported link's rows of the member, oldest first, in each link's public shape."""
    records: dict[str, list[dict[str, Any]]] = {}
    for link in ctx.platform.member_links:
        if link.export is None:
            continue
        key = column(link.model, "id") if hasattr(link.model, "id") else column(link.model, "created_at")
        rows = await ctx.db.all(ctx.db.select(link.model, _of(link, member_id)).order_by(key))
        records[link.label] = [link.export(r) for r in rows]
    return records


async def count_by_tag(ctx: ToolContext) -> list[tuple[str, int]]:
    stmt = (
        ctx.db.select_columns(MemberTag, col(MemberTag.tag), func.count())
        .join(Member, col(Member.id) == col(MemberTag.member_id))
        .where(ctx.db.owns(Member), col(Member.status) == MemberStatus.active)
        .group_by(col(MemberTag.tag))
        .order_by(func.count().desc(), col(MemberTag.tag))
    )
    return [(tag, int(n)) for tag, n in await ctx.db.rows(stmt)]


async def money_of(ctx: ToolContext, member: Member) -> MemberMoney:
    """The customer's money as the money domains tell it (open invoices, subscriptions, credits)."""
    parts = await ctx.platform.member_money(ctx, member.id)
    currency = (await ctx.db.workspace()).currency
    return MemberMoney.model_validate({**parts, "currency": currency, "lifetime_spend": member.lifetime_spend})


async def record_spend(ctx: ToolContext, member_id: str, amount: int, currency: str) -> None:
    """Money moved for the customer (a payment, or a refund as a negative amount): their lifetime spend follows
    in the workspace's currency, and a payment is their own activity."""
    values: dict[str, Any] = {}
    if currency == (await ctx.db.workspace()).currency:
        values["lifetime_spend"] = col(Member.lifetime_spend) + amount
    if amount > 0:
        values["last_activity_at"] = ctx.now
    if values:
        await ctx.db.update(Member, col(Member.id) == member_id, values=values)


async def record_activity(ctx: ToolContext, member_id: str) -> None:
    """The customer did something themselves (a completed visit): their last activity moves to now."""
    await ctx.db.update(Member, col(Member.id) == member_id, values={"last_activity_at": ctx.now})
