"""The seats of class sessions, the contract bookings use: take one (never past capacity), free one, and the
sessions that keep an instructor busy. The `booked` counter moves only by conditional UPDATEs."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col

from favmcp.core.errors import not_found
from favmcp.db.scoped import WorkspaceDB
from favmcp.domains.classes.models import ClassSession, SessionStatus
from favmcp.registry.context import ToolContext

FIND = "Find sessions with list_class_sessions."


async def load_session(
    ctx: ToolContext, session_id: str, *, lock: bool = False, unfiltered: bool = False
) -> ClassSession:
    """The session; unfiltered: through the whole workspace whoever asks (for invariants: seats, promotion)."""
    db = ctx.db.unfiltered if unfiltered else ctx.db
    session = await db.get(ClassSession, session_id, lock=lock, fresh=True)
    if session is None:
        raise not_found("class session", session_id, hint=FIND)
    return session


async def take_seat(ctx: ToolContext, session_id: str) -> bool:
    """Hold one seat of a scheduled session; False when it is full (or cancelled). Of concurrent takers of the
    last seat exactly one wins: one conditional UPDATE each."""
    won = await ctx.db.unfiltered.update_returning(
        ClassSession,
        col(ClassSession.id) == session_id,
        col(ClassSession.status) == SessionStatus.scheduled,
        col(ClassSession.booked) < col(ClassSession.capacity),
        values={"booked": col(ClassSession.booked) + 1},
    )
    return bool(won)


async def free_seat(ctx: ToolContext, session_id: str) -> None:
    """Give a seat back (its booking was cancelled or declined); the caller frees each booking's seat once, in the
    transition that ends the booking."""
    await ctx.db.unfiltered.update(
        ClassSession,
        col(ClassSession.id) == session_id,
        col(ClassSession.booked) > 0,
        values={"booked": col(ClassSession.booked) - 1},
    )


async def sessions_blocking(db: WorkspaceDB, staff_user_id: str, start: datetime, end: datetime) -> list[ClassSession]:
    """Scheduled sessions whose instructor time overlaps [start, end) (half-open: back-to-back is free)."""
    return await db.all(
        db.select(
            ClassSession,
            col(ClassSession.staff_user_id) == staff_user_id,
            col(ClassSession.status) == SessionStatus.scheduled,
            col(ClassSession.blocked_from) < end,
            col(ClassSession.blocked_until) > start,
        ).order_by(col(ClassSession.starts_at))
    )
