"""The team: invites, members and roles, deactivation, working hours and time off."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any, get_args
from zoneinfo import ZoneInfo

from sqlmodel import col

from favmcp.auth import scopes
from favmcp.auth.models import ApiKey, Role, User, UserStatus
from favmcp.core.errors import not_found, unauthenticated
from favmcp.core.ids import new_id
from favmcp.domains.bookings import calendar
from favmcp.domains.services.service import services_of
from favmcp.domains.team import rules
from favmcp.domains.team.invites import new_invite
from favmcp.domains.team.lifecycle import EVENTS, INVITE_LIFECYCLE, TeamMemberDeactivated
from favmcp.domains.team.models import InviteStatus, StaffSchedule, StaffTimeOff, TeamInvite
from favmcp.domains.team.schemas import (
    AddStaffTimeOffInput,
    CreateTeamMemberInviteInput,
    DeactivateTeamMemberInput,
    DeactivationPreview,
    DeactivationResult,
    GetStaffScheduleInput,
    InviteSent,
    InviteState,
    ListTeamInvitesInput,
    ListTeamMembersInput,
    RemoveStaffTimeOffInput,
    RevokeTeamInviteInput,
    ScheduleDay,
    SetStaffWorkingHoursInput,
    StaffScheduleView,
    StaffWorkingHours,
    TeamInvitePage,
    TeamInvitePublic,
    TeamMemberPage,
    TeamMemberPublic,
    TimeOffPublic,
    TimeOffRemoved,
    UpdateTeamMemberRoleInput,
)
from favmcp.domains.workspace.schemas import OpeningInterval, Weekday
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain
from favmcp.registry.spec import tool

DOMAIN_NAME = "team"
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)


# Shared helpers


def _invite_public(invite: TeamInvite, ctx: ToolContext) -> TeamInvitePublic:
    return TeamInvitePublic.model_validate({**invite.model_dump(), "status": rules.invite_state(invite, ctx.now)})


def _member_public(user: User, service_ids: list[str]) -> TeamMemberPublic:
    return TeamMemberPublic.model_validate({**user.model_dump(), "service_ids": service_ids})


async def _one_public(ctx: ToolContext, user: User) -> TeamMemberPublic:
    return _member_public(user, (await services_of(ctx, [user.id]))[user.id])


def _time_off_public(block: StaffTimeOff) -> TimeOffPublic:
    return TimeOffPublic.model_validate(block, from_attributes=True)


async def _member(ctx: ToolContext, user_id: str, *, lock: bool = False) -> User:
    user = await ctx.db.get(User, user_id, lock=lock)
    if user is None:
        raise not_found("team member", user_id, hint=rules.LIST_MEMBERS)
    return user


async def _acting_role(ctx: ToolContext) -> Role:
    """The caller's role as it is now (re-read after the workspace lock, so a concurrent demotion counts)."""
    me = await rules.fresh_member(ctx.db, ctx.caller.user_id or "")
    if me.status != UserStatus.active:
        raise unauthenticated("The person this API key belongs to has been deactivated.")
    return me.role


async def _timezone(ctx: ToolContext) -> str:
    return (await ctx.db.workspace()).timezone


# Invites


@tool(domain=DOMAIN_NAME, title="Invite a team member", hints="W O", scope="team:admin", route="POST /v1/team/invites")
async def create_team_member_invite(ctx: ToolContext, args: CreateTeamMemberInviteInput) -> InviteSent:
    """Invite a person by email: they get a token (7 days, single use, never shown to you) and accept it
    themselves, getting their own API key. Refuses the email of an active member or of a pending invite (conflict
    naming it; revoke_team_invite to resend). Owners: invite as admin, then update_team_member_role. Inviting a
    deactivated member again reactivates them."""
    ws = await rules.lock_workspace(ctx.db)  # serialises invites: one pending invite per email
    await rules.ensure_no_open_invite(ctx.db, args.email, ctx.now)
    inviter = await ctx.db.get(User, ctx.caller.user_id or "")
    invite, token = new_invite(
        ctx.db, email=args.email, role=Role(args.role), name=args.name,
        invited_by=ctx.caller.user_id, random=ctx.random, now=ctx.now,
    )  # fmt: skip
    await ctx.db.flush()
    who = inviter.name if inviter else "Someone"
    team = " ".join(ws.name.split())  # one line: it goes into the Subject header
    ctx.send_email(
        to=args.email,
        subject=f"You are invited to join {team} on favmcp",
        body=(
            f"{who} invited you to join {team} as {args.role}.\n\n"
            f"Your invite token: {token}\n\n"
            "To accept, ask your AI assistant or favmcp client to call the tool accept_team_invite_request with "
            "this token. A 6-digit code will then be emailed to this address; finish with "
            "accept_team_invite_verify to get your own API key.\n\n"
            f"The invite works once and expires on {invite.expires_at:%Y-%m-%d %H:%M} UTC. "
            "If you did not expect it, ignore this email."
        ),
        workspace_id=ctx.workspace_id,
    )
    ctx.record_change(invite_id=invite.id, fields=["role"])
    return InviteSent(
        invite=_invite_public(invite, ctx),
        message="The invite token was emailed to the person (it is not shown here). "
        "They accept with accept_team_invite_request; follow progress with list_team_invites.",
    )


@tool(domain=DOMAIN_NAME, title="List team invites", hints="R I", scope="team:read", route="GET /v1/team/invites")
async def list_team_invites(ctx: ToolContext, args: ListTeamInvitesInput) -> TeamInvitePage:
    """Team invites, newest first, with their state; never shows tokens."""
    stmt = ctx.db.select(TeamInvite)
    if args.status in (InviteState.pending, InviteState.expired):
        stmt = stmt.where(col(TeamInvite.status) == InviteStatus.pending)
        live = col(TeamInvite.expires_at) > ctx.now
        stmt = stmt.where(live if args.status == InviteState.pending else ~live)
    elif args.status is not None:
        stmt = stmt.where(col(TeamInvite.status) == InviteStatus(args.status.value))
    rows, cursor = await ctx.db.page(stmt, col(TeamInvite.id), args)
    return TeamInvitePage(items=[_invite_public(i, ctx) for i in rows], next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME,
    title="Revoke team invite",
    hints="D I",
    scope="team:admin",
    route="DELETE /v1/team/invites/{invite_id}",
)
async def revoke_team_invite(ctx: ToolContext, args: RevokeTeamInviteInput) -> TeamInvitePublic:
    """Revoke a pending or expired invite so its token stops working; repeating it changes nothing. An accepted
    invite cannot be revoked (invalid_state): use deactivate_team_member."""
    invite = await ctx.db.get(TeamInvite, args.invite_id)
    if invite is None:
        raise not_found("invite", args.invite_id, hint="List invites with list_team_invites.")
    hint = "The person already joined; remove their access with deactivate_team_member."
    if await ctx.transition(INVITE_LIFECYCLE, TeamInvite, invite.id, InviteStatus.revoked, hint=hint):
        ctx.record_change(invite_id=invite.id, fields=["status"])
    await ctx.db.refresh(invite)
    return _invite_public(invite, ctx)


# Members and roles


@tool(domain=DOMAIN_NAME, title="List team members", hints="R I", scope="team:read", route="GET /v1/team/members")
async def list_team_members(ctx: ToolContext, args: ListTeamMembersInput) -> TeamMemberPage:
    """Team members (people with a login here), newest first: id, name, email, role, status and the services
    they deliver."""
    stmt = ctx.db.select(User)
    if args.role is not None:
        stmt = stmt.where(col(User.role) == args.role)
    if args.status is not None:
        stmt = stmt.where(col(User.status) == args.status)
    rows, cursor = await ctx.db.page(stmt, col(User.id), args)
    services = await services_of(ctx, [u.id for u in rows])
    items = [_member_public(u, services[u.id]) for u in rows]
    return TeamMemberPage(items=items, next_cursor=cursor, has_more=cursor is not None)


@tool(
    domain=DOMAIN_NAME,
    title="Change team member role",
    hints="W I",
    scope="team:admin",
    route="PATCH /v1/team/members/{user_id}",
)
async def update_team_member_role(ctx: ToolContext, args: UpdateTeamMemberRoleInput) -> TeamMemberPublic:
    """Change a team member's role (the same role changes nothing). Only an owner makes owners or changes an
    owner's role (forbidden); the last active owner cannot be demoted (invalid_state). Deactivated members cannot
    be changed. Applies from their next call; keys with chosen scopes never exceed the role."""
    await rules.lock_workspace(ctx.db)  # role changes serialise, so two demotions cannot both pass the owner count
    acting_role = await _acting_role(ctx)
    target = await rules.fresh_member(ctx.db, args.user_id)
    rules.ensure_can_assign_role(acting_role, target.role, args.role)
    rules.ensure_active(target, "change their role")
    if target.role == args.role:
        return await _one_public(ctx, target)
    if target.role == Role.owner:
        await rules.ensure_not_last_owner(ctx.db, target, "remove the owner role")
    await ctx.db.update(User, col(User.id) == target.id, values={"role": args.role})
    await ctx.db.refresh(target)
    ctx.record_change(user_id=target.id, fields=["role"])
    return await _one_public(ctx, target)


async def _deactivation_target(ctx: ToolContext, user_id: str) -> User:
    """Load the target and apply every guard; the workspace row is locked by the caller."""
    acting_role = await _acting_role(ctx)
    target = await rules.fresh_member(ctx.db, user_id)
    rules.ensure_can_deactivate(ctx.caller.user_id, acting_role, target)
    await rules.ensure_not_last_owner(ctx.db, target, "deactivate them")
    return target


async def _preview_deactivate(ctx: ToolContext, args: DeactivateTeamMemberInput) -> DeactivationPreview:
    target = await _deactivation_target(ctx, args.user_id)
    if target.status == UserStatus.deactivated:
        summary = f"{target.name} ({target.id}) is already deactivated; nothing will change."
        member = await _one_public(ctx, target)
        return DeactivationPreview(summary=summary, nothing_to_do=True, member=member, keys_to_revoke=0)
    keys = await ctx.db.count(ApiKey, col(ApiKey.user_id) == target.id, col(ApiKey.revoked_at).is_(None))
    summary = (
        f"Deactivate {target.name} ({target.role.value}, {target.id}) and revoke their {keys} unrevoked "
        "API key(s) at once; their next call is refused. Their bookings stay assigned to them for reassignment."
    )
    return DeactivationPreview(summary=summary, member=await _one_public(ctx, target), keys_to_revoke=keys)


@tool(
    domain=DOMAIN_NAME, title="Deactivate team member", hints="D I", scope="team:admin",
    gate="confirm", preview=_preview_deactivate,
    route="POST /v1/team/members/{user_id}/deactivate",
)  # fmt: skip
async def deactivate_team_member(ctx: ToolContext, args: DeactivateTeamMemberInput) -> DeactivationResult:
    """Deactivate a team member and revoke all their API keys: their next call is refused. One already deactivated
    succeeds at once, changing nothing. Refuses yourself, an owner unless you are one (forbidden) and the last
    active owner (invalid_state). Their bookings stay assigned. To bring them back, invite their email again."""
    await rules.lock_workspace(ctx.db)
    target = await _deactivation_target(ctx, args.user_id)
    if target.status == UserStatus.deactivated:
        return DeactivationResult(
            member=await _one_public(ctx, target), revoked_key_ids=[], message="Already deactivated; nothing changed."
        )
    await ctx.db.update(User, col(User.id) == target.id, values={"status": UserStatus.deactivated})
    key_ids = sorted(
        await ctx.db.update_returning(
            ApiKey, col(ApiKey.user_id) == target.id, col(ApiKey.revoked_at).is_(None), values={"revoked_at": ctx.now}
        )
    )
    await ctx.db.refresh(target)
    ctx.record_change(user_id=target.id, fields=["status"], revoked_key_ids=key_ids)
    ctx.emit(TeamMemberDeactivated(user_id=target.id, revoked_key_ids=key_ids))
    return DeactivationResult(
        member=await _one_public(ctx, target),
        revoked_key_ids=key_ids,
        message=f"Deactivated; {len(key_ids)} API key(s) revoked.",
    )


# Working hours and time off


def _weekly(stored: dict[str, Any]) -> dict[Weekday, list[OpeningInterval]]:
    return {day: [OpeningInterval.model_validate(i) for i in stored[day]] for day in WEEKDAYS if stored.get(day)}


@tool(
    domain=DOMAIN_NAME,
    title="Set staff working hours",
    hints="W I",
    scope="team:admin",
    route="PUT /v1/team/members/{user_id}/working-hours",
)
async def set_staff_working_hours(ctx: ToolContext, args: SetStaffWorkingHoursInput) -> StaffWorkingHours:
    """Replace a team member's weekly working hours as a whole; an empty weekly clears them. Intervals on a day may
    not overlap. Availability intersects them with business hours and subtracts time off. Refuses deactivated
    members."""
    target = await _member(ctx, args.user_id, lock=True)
    rules.ensure_active(target, "set their working hours")
    feed_url = await calendar.rotate_feed(ctx, target.id) if args.rotate_calendar_feed else None
    fields = ["calendar_feed"] if feed_url else []
    if args.weekly is None:
        schedule = await ctx.db.first(ctx.db.select(StaffSchedule, col(StaffSchedule.user_id) == target.id))
        weekly: dict[str, Any] = schedule.weekly if schedule else {}
        updated_at = schedule.updated_at if schedule else None
    else:
        weekly = {}
        for day in WEEKDAYS:
            if args.weekly.get(day):
                weekly[day] = [i.model_dump(mode="json") for i in sorted(args.weekly[day], key=lambda i: i.open)]
        await ctx.db.upsert(
            StaffSchedule,
            {"user_id": target.id, "weekly": weekly, "updated_at": ctx.now},
            key=["user_id"],
            changes=["weekly", "updated_at"],
        )
        fields.append("weekly")
        updated_at = ctx.now
    ctx.record_change(user_id=target.id, fields=fields)
    return StaffWorkingHours(
        user_id=target.id,
        timezone=await _timezone(ctx),
        weekly=_weekly(weekly),
        updated_at=updated_at,
        calendar_feed_url=feed_url,
    )


@tool(
    domain=DOMAIN_NAME,
    title="Get staff schedule",
    hints="R I",
    scope="team:read",
    route="GET /v1/team/members/{user_id}/schedule",
)
async def get_staff_schedule(ctx: ToolContext, args: GetStaffScheduleInput) -> StaffScheduleView:
    """A team member's schedule over local dates: weekly hours, each date's working intervals, the time off that
    overlaps and their bookings. Times of day are workspace-local, time-off instants UTC. Works for deactivated
    members too."""
    target = await _member(ctx, args.user_id)
    tz_name = await _timezone(ctx)
    tz = ZoneInfo(tz_name)
    starts = datetime.combine(args.from_date, time(0), tz).astimezone(UTC)
    ends = datetime.combine(args.to_date + timedelta(days=1), time(0), tz).astimezone(UTC)
    schedule = await ctx.db.first(ctx.db.select(StaffSchedule, col(StaffSchedule.user_id) == target.id))
    weekly = _weekly(schedule.weekly if schedule else {})
    blocks = await ctx.db.all(
        ctx.db.select(StaffTimeOff)
        .where(
            col(StaffTimeOff.user_id) == target.id,
            col(StaffTimeOff.removed_at).is_(None),
            col(StaffTimeOff.starts_at) < ends,
            col(StaffTimeOff.ends_at) > starts,
        )
        .order_by(col(StaffTimeOff.starts_at), col(StaffTimeOff.id))
    )
    span = (args.to_date - args.from_date).days + 1
    days = []
    for n in range(span):
        day = args.from_date + timedelta(days=n)
        weekday = WEEKDAYS[day.weekday()]
        days.append(ScheduleDay(date=day, weekday=weekday, working_hours=weekly.get(weekday, [])))
    return StaffScheduleView(
        user_id=target.id,
        status=target.status,
        timezone=tz_name,
        from_date=args.from_date,
        to_date=args.to_date,
        range_starts_at=starts,
        range_ends_at=ends,
        weekly=weekly,
        days=days,
        time_off=[_time_off_public(b) for b in blocks],
        bookings=await ctx.platform.staff_commitments(ctx.db, target.id, starts, ends),
        calendar_feed_url=await _feed_url_for(ctx, target),
    )


async def _feed_url_for(ctx: ToolContext, target: User) -> str | None:
    """The private feed URL, for the person themselves or a team admin; null for others and deactivated members."""
    allowed = target.id == ctx.caller.user_id or scopes.grants(ctx.caller.scopes, "team:admin")
    if not allowed or target.status != UserStatus.active:
        return None
    return await calendar.current_feed_url(ctx, target.id)


@tool(
    domain=DOMAIN_NAME,
    title="Add staff time off",
    hints="W",
    scope="team:admin",
    route="POST /v1/team/members/{user_id}/time-off",
)
async def add_staff_time_off(ctx: ToolContext, args: AddStaffTimeOffInput) -> TimeOffPublic:
    """Block a team member's time (leave, training, appointment); stored in UTC. Refuses overlapping their other
    time off (conflict naming the block; touching is fine) or their confirmed bookings (conflict with the count),
    and deactivated members. Undo with remove_staff_time_off."""
    target = await _member(ctx, args.user_id, lock=True)  # locks the person: overlap checks serialise
    rules.ensure_active(target, "give them time off")
    await rules.ensure_time_off_free(ctx.db, target.id, args.starts_at, args.ends_at)
    clashes = await ctx.platform.staff_commitments(ctx.db, target.id, args.starts_at, args.ends_at)
    rules.ensure_no_commitments(clashes, list_them=args.list_overlapping_bookings)
    block = ctx.db.add(
        StaffTimeOff(
            id=new_id("off"),
            workspace_id=ctx.workspace_id,
            user_id=target.id,
            starts_at=args.starts_at,
            ends_at=args.ends_at,
            reason=args.reason,
            created_by=ctx.caller.user_id,
            created_at=ctx.now,
        )
    )
    await ctx.db.flush()
    ctx.record_change(time_off_id=block.id, user_id=target.id)
    return _time_off_public(block)


@tool(
    domain=DOMAIN_NAME,
    title="Remove staff time off",
    hints="D I",
    scope="team:admin",
    route="DELETE /v1/team/time-off/{time_off_id}",
)
async def remove_staff_time_off(ctx: ToolContext, args: RemoveStaffTimeOffInput) -> TimeOffRemoved:
    """Remove a time-off block: those hours count as working again. Repeating it answers the same, changing
    nothing."""
    block = await ctx.db.get(StaffTimeOff, args.time_off_id, lock=True)  # a concurrent removal waits here
    if block is None:
        raise not_found("time-off block", args.time_off_id, hint="See a member's blocks with get_staff_schedule.")
    if block.removed_at is None:
        block.removed_at = ctx.now
        await ctx.db.flush()
        ctx.record_change(time_off_id=block.id, user_id=block.user_id)
    return TimeOffRemoved(removed=_time_off_public(block))


DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[
        create_team_member_invite,
        list_team_invites,
        revoke_team_invite,
        list_team_members,
        update_team_member_role,
        deactivate_team_member,
        set_staff_working_hours,
        get_staff_schedule,
        add_staff_time_off,
        remove_staff_time_off,
    ],
    events=EVENTS,
)
