"""Guards of the team domain: who may change whom, the last owner, invite states, overlapping time off.

Invariants that concurrent callers could break are checked under a lock: role changes and deactivations lock
the workspace row first (`lock_workspace`), so two of them serialise on Postgres (SQLite serialises writers
already); time off locks the person's user row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col

from favmcp.auth.models import Role, User, UserStatus
from favmcp.core.errors import conflict, forbidden, invalid_state, not_found
from favmcp.core.times import format_utc
from favmcp.db.scoped import WorkspaceDB
from favmcp.db.tenancy import Workspace
from favmcp.domains.team.models import InviteStatus, StaffTimeOff, TeamInvite
from favmcp.domains.team.schemas import InviteState
from favmcp.registry.domain import Commitment

LIST_MEMBERS = "List members with list_team_members."


async def lock_workspace(db: WorkspaceDB) -> Workspace:
    """SELECT ... FOR UPDATE on the workspace row: team-wide invariants (owners, invites) serialise on it."""
    return await db.workspace(lock=True)


async def fresh_member(db: WorkspaceDB, user_id: str) -> User:
    """A team member of this workspace, re-read from the database (after a lock, never a stale copy)."""
    user = await db.get(User, user_id, fresh=True)
    if user is None:
        raise not_found("team member", user_id, hint=LIST_MEMBERS)
    return user


def invite_state(invite: TeamInvite, now: datetime) -> InviteState:
    if invite.status == InviteStatus.pending and invite.expires_at <= now:
        return InviteState.expired
    return InviteState(invite.status.value)


def ensure_active(user: User, action: str) -> None:
    if user.status != UserStatus.active:
        raise invalid_state(
            f"Team member {user.id} is deactivated; you cannot {action}.",
            current=user.status.value,
            hint="To bring them back, invite their email again with create_team_member_invite.",
        )


def ensure_can_assign_role(acting_role: Role | None, current: Role, new: Role) -> None:
    """Only an owner makes an owner, and only an owner changes an owner's role."""
    if acting_role != Role.owner and Role.owner in (current, new):
        what = "make someone an owner" if new == Role.owner else "change an owner's role"
        raise forbidden(f"Only an owner can {what}.", hint="Ask an owner of the workspace to do it.")


def ensure_can_deactivate(acting_user_id: str | None, acting_role: Role | None, target: User) -> None:
    if target.id == acting_user_id:
        raise forbidden(
            "You cannot deactivate yourself.",
            hint="Ask another owner or admin to call deactivate_team_member for you.",
        )
    if target.role == Role.owner and acting_role != Role.owner:
        raise forbidden("Only an owner can deactivate an owner.", hint="Ask an owner of the workspace to do it.")


async def ensure_not_last_owner(db: WorkspaceDB, target: User, action: str) -> None:
    """Refuse when `target` is the only active owner. Call it with the workspace row locked."""
    if target.role != Role.owner or target.status != UserStatus.active:
        return
    owners = await db.count(User, col(User.role) == Role.owner, col(User.status) == UserStatus.active)
    if owners <= 1:
        raise invalid_state(
            f"Team member {target.id} is the last owner of this workspace; you cannot {action}.",
            current="last_owner",
            hint="Make another active member an owner first with update_team_member_role.",
            active_owners=owners,
        )


async def ensure_no_open_invite(db: WorkspaceDB, email: str, now: datetime) -> None:
    """Refuse inviting an active team member, or an email that already has a pending invite."""
    member = await db.first(db.select(User).where(col(User.email) == email))
    if member is not None and member.status == UserStatus.active:
        raise conflict(
            f"This person is already an active team member ({member.id}).",
            hint="Change their role with update_team_member_role instead.",
            details={"user_id": member.id},
        )
    pending = await db.first(
        db.select(TeamInvite).where(
            col(TeamInvite.email) == email,
            col(TeamInvite.status) == InviteStatus.pending,
            col(TeamInvite.expires_at) > now,
        )
    )
    if pending is not None:
        raise conflict(
            f"This email already has a pending invite ({pending.id}).",
            hint="Wait for it to be accepted, or revoke it with revoke_team_invite and invite again.",
            details={"invite_id": pending.id},
        )


async def ensure_time_off_free(db: WorkspaceDB, user_id: str, starts_at: datetime, ends_at: datetime) -> None:
    """Refuse a block that overlaps another of the same person (touching ends are fine)."""
    clash = await db.first(
        db.select(StaffTimeOff)
        .where(
            col(StaffTimeOff.user_id) == user_id,
            col(StaffTimeOff.removed_at).is_(None),
            col(StaffTimeOff.starts_at) < ends_at,
            col(StaffTimeOff.ends_at) > starts_at,
        )
        .order_by(col(StaffTimeOff.starts_at))
    )
    if clash is not None:
        raise conflict(
            f"This overlaps time-off block {clash.id} ({format_utc(clash.starts_at)} to {format_utc(clash.ends_at)}).",
            hint="Pick times that do not overlap, or remove that block first with remove_staff_time_off.",
            details={"time_off_id": clash.id},
        )


def ensure_no_commitments(clashes: list[Commitment], *, list_them: bool) -> None:
    """Time off never silently overrides what the person is booked for."""
    if not clashes:
        return
    details: dict[str, Any] = {"overlapping_bookings": len(clashes)}
    if list_them:
        details["bookings"] = [c.model_dump(mode="json") for c in clashes]
    raise conflict(
        f"This time off overlaps {len(clashes)} confirmed booking(s) of this person.",
        hint="Reschedule or reassign those bookings first"
        + ("." if list_them else "; call again with list_overlapping_bookings=true to see them."),
        details=details,
    )
