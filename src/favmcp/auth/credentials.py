"""Who is calling: an API key or an OAuth access token, resolved against the database on every call (revocation is
immediate)."""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from favmcp.auth import keys, scopes
from favmcp.auth.models import ApiKey, Role, UserStatus
from favmcp.auth.oauth.models import OAuthGrant
from favmcp.core.errors import AuditSubject, FavError, unauthenticated
from favmcp.db.engine import Database

LAST_USED_RESOLUTION = timedelta(minutes=1)
ACCESS_TOKEN_PREFIX = "fav_oat_"
GRANT_PREFIX = "ogr_"

# The protected resource the current HTTP request was made to (the /mcp URL), set by the HTTP transport. An OAuth
# access token works only there: anywhere else (stdio, another endpoint) this is None and the token is refused.
REQUEST_RESOURCE: ContextVar[str | None] = ContextVar("favmcp_request_resource", default=None)
# The profile named by the URL of the current HTTP request (/mcp/p/<profile>), set by the HTTP transport.
REQUEST_PROFILE: ContextVar[str | None] = ContextVar("favmcp_request_profile", default=None)
# Whether the current call came through the REST API, set by it: a publishable key works there only, where its
# origins, its pinned arguments and its per-address limit apply.
REST_REQUEST: ContextVar[bool] = ContextVar("favmcp_rest_request", default=False)


@dataclass(frozen=True)
class Caller:
    workspace_id: str | None = None
    user_id: str | None = None
    key_id: str | None = None
    role: Role | None = None
    scopes: tuple[str, ...] = ()
    key_expires_at: datetime | None = None
    user_name: str | None = None
    workspace_name: str | None = None
    last_used_at: datetime | None = None
    follows_role: bool = False
    # The profile the key or grant is bound to; None: every tool its scopes allow.
    profile: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.key_id is None

    def needs_touch(self, now: datetime) -> bool:
        """Whether last_used_at is older than its resolution (so most calls write nothing)."""
        return not self.anonymous and (self.last_used_at is None or self.last_used_at < now - LAST_USED_RESOLUTION)


ANONYMOUS = Caller()

# The credential the HTTP transport checked at the start of the current request, and who it is: the request's first
# call takes it from here rather than reading it again a moment later.
REQUEST_CALLER: ContextVar[tuple[str, Caller] | None] = ContextVar("favmcp_request_caller", default=None)


# Every column a Caller needs, in one indexed read: the key, its holder and the workspace.
_CALLER_SQL = """
SELECT k.id, k.workspace_id, k.user_id, k.scopes, k.follows_role, k.expires_at, k.last_used_at, k.revoked_at,
       u.name, u.role, u.status, w.name, k.profile
FROM api_keys k JOIN users u ON u.id = k.user_id JOIN workspaces w ON w.id = k.workspace_id
"""
_BY_HASH = _CALLER_SQL + "WHERE k.key_hash = $1"
_BY_ID = _CALLER_SQL + "WHERE k.id = $1 AND k.workspace_id = $2"
# The same columns for an OAuth grant (its id stands where a key's would): an access token's own scopes and expiry.
_GRANT_SQL = """
SELECT g.id, g.workspace_id, g.user_id, t.scopes, FALSE, t.expires_at, g.last_used_at, g.revoked_at,
       u.name, u.role, u.status, w.name, g.profile, g.resource
FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id
JOIN users u ON u.id = g.user_id JOIN workspaces w ON w.id = g.workspace_id
"""
_TOKEN_BY_HASH = _GRANT_SQL + "WHERE t.token_hash = $1 AND t.kind = 'access'"
# An approval runs as its requester later: the grant, not an access token that may be long gone, must still stand.
_GRANT_BY_ID = """
SELECT g.id, g.workspace_id, g.user_id, g.scopes, FALSE, NULL, g.last_used_at, g.revoked_at, u.name, u.role, u.status,
       w.name, g.profile, g.resource
FROM oauth_grants g JOIN users u ON u.id = g.user_id JOIN workspaces w ON w.id = g.workspace_id
WHERE g.id = $1 AND g.workspace_id = $2
"""


async def resolve(db: Database, secret: str | None, now: datetime) -> Caller:
    """Read on every call, outside the call's session and at the cost floor (Database.fetch_row): a revocation,
    a role change or a deactivation committed a moment ago holds from the very next call, in every process."""
    if not secret:
        return ANONYMOUS
    checked = REQUEST_CALLER.get()
    if checked is not None and checked[0] == secret:
        REQUEST_CALLER.set(None)  # once: a second call in the same request (after a person confirmed) reads again
        return checked[1]
    if secret.startswith(ACCESS_TOKEN_PREFIX):
        row = await db.fetch_row(_TOKEN_BY_HASH, keys.key_hash(secret))
        caller = _caller(row, now, "OAuth access token")
        if row is not None and row[13] != REQUEST_RESOURCE.get():
            raise _refused(caller, "This OAuth access token was issued for another resource.")
        return caller
    if not keys.looks_like_key(secret):
        raise unauthenticated("That is not a fav_mcp_ API key.")
    caller = _caller(await db.fetch_row(_BY_HASH, keys.key_hash(secret)), now)
    if keys.is_publishable(secret) and not REST_REQUEST.get():
        raise _refused(caller, "A publishable fav_pub_ key works on the REST API (/v1) only.")
    return caller


async def resolve_key_id(db: Database, key_id: str | None, workspace_id: str, now: datetime) -> Caller:
    """The caller behind a stored key or grant id (an approved request runs as its requester), checked as on every
    call."""
    if key_id is None:
        raise unauthenticated("The request was made without an API key.")
    if key_id.startswith(GRANT_PREFIX):
        return _caller(await db.fetch_row(_GRANT_BY_ID, key_id, workspace_id), now, "OAuth grant")
    return _caller(await db.fetch_row(_BY_ID, key_id, workspace_id), now)


def _refused(caller: Caller, message: str) -> FavError:
    error = unauthenticated(message)
    error.subject = AuditSubject(caller.workspace_id or "", caller.user_id, caller.key_id)
    return error


def _caller(row: tuple[Any, ...] | None, now: datetime, noun: str = "API key") -> Caller:
    if row is None:
        raise unauthenticated(f"This {noun} is not valid.")
    key_id, workspace_id, user_id, key_scopes, follows_role, expires_at, last_used_at, revoked_at = row[:8]
    user_name, role_name, status, workspace_name, profile = row[8:13]
    expires_at = _utc(expires_at)
    refusal = None
    if revoked_at is not None:
        refusal = f"This {noun} has been revoked."
    elif expires_at is not None and expires_at <= now:
        refusal = f"This {noun} has expired."
    elif status != UserStatus.active:
        refusal = f"The person this {noun} belongs to has been deactivated."
    if refusal is not None:
        error = unauthenticated(refusal)
        error.subject = AuditSubject(workspace_id, user_id, key_id)
        raise error
    role = Role(role_name)
    held = scopes.role_scopes(role)
    # A key never exceeds its holder's current role; a personal key is exactly the role.
    granted = sorted(held) if follows_role else scopes.intersect(_json(key_scopes), held)
    return Caller(
        workspace_id=workspace_id,
        user_id=user_id,
        key_id=key_id,
        role=role,
        scopes=tuple(granted),
        follows_role=bool(follows_role),
        key_expires_at=expires_at,
        user_name=user_name,
        workspace_name=workspace_name,
        last_used_at=_utc(last_used_at),
        profile=profile,
    )


def _utc(value: datetime | str | None) -> datetime | None:
    """Timestamps as the drivers hand them over: aware from Postgres, naive UTC text from SQLite."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


async def touch(session: AsyncSession, caller: Caller, now: datetime) -> None:
    """Record the key's (or OAuth grant's) last use (at most once a minute per credential)."""
    table: type[ApiKey] | type[OAuthGrant] = (
        OAuthGrant if caller.key_id and caller.key_id.startswith(GRANT_PREFIX) else ApiKey
    )
    await session.execute(
        update(table)
        .where(
            col(table.id) == caller.key_id,
            or_(col(table.last_used_at).is_(None), col(table.last_used_at) < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )
