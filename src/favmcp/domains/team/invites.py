"""Invites: a random token (stored hashed) that works once, within its validity, for one email and role."""

from __future__ import annotations

from datetime import datetime, timedelta

from favmcp.auth import keys
from favmcp.auth.models import Role
from favmcp.core.clock import Random
from favmcp.core.ids import new_id
from favmcp.db.scoped import WorkspaceDB
from favmcp.domains.team.models import TeamInvite

INVITE_TTL = timedelta(days=7)


def new_invite(
    db: WorkspaceDB,
    *,
    email: str,
    role: Role,
    name: str | None,
    invited_by: str | None,
    random: Random,
    now: datetime,
) -> tuple[TeamInvite, str]:
    token = "fav_inv_" + random.token(30)
    invite = TeamInvite(
        id=new_id("inv"),
        workspace_id=db.workspace_id,
        email=email,
        name=name,
        role=role,
        token_hash=keys.key_hash(token),
        invited_by=invited_by,
        created_at=now,
        expires_at=now + INVITE_TTL,
    )
    db.add(invite)
    return invite, token
