"""The steps of the sign-in page, each one short transaction: bind the request to the browser that opened it, email
a one-time code, check it, pick the workspace, answer the consent; or, for a new business, sign in its new owner.

Codes follow `auth/codes.py`: 6 digits, valid 10 minutes, 5 tries, at most 3 requests an hour and 20 a day per email
and per client address. A code belongs to one authorization request, so it signs in nowhere else.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from mcp.shared.auth import OAuthClientInformationFull
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from favmcp.auth import codes, keys, ratelimit
from favmcp.auth.models import ApiKey, Role, User, UserStatus
from favmcp.auth.oauth.models import OAuthAuthorization
from favmcp.auth.oauth.provider import Provider
from favmcp.core.errors import AuditSubject
from favmcp.db.tenancy import Workspace
from favmcp.effects.outbox import queue_email
from favmcp.registry.models import action_row

NO_CODE = "This code is used, expired or out of tries; ask for a new one."


@dataclass(frozen=True)
class Account:
    """One workspace a person may sign in to with their email."""

    user_id: str
    user_name: str
    role: Role
    workspace_id: str
    workspace_name: str


class SignIn:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.db = provider.db
        self.settings = provider.settings

    def _digest(self, *parts: str) -> str:
        return hmac.new(self.settings.secret_key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()

    def form_token(self, request: OAuthAuthorization, browser: str) -> str:
        """The anti-forgery field of the page's forms: only the browser holding the cookie can know it."""
        return self._digest("oauth-form", request.id, browser)

    def signup_token(self, request: OAuthAuthorization, browser: str, signup_id: str) -> str:
        """The page's handle on a signup it started: the code request's id, sealed to this request and browser, so
        the code form verifies that signup and no other."""
        return f"{signup_id}.{self._digest('oauth-signup', request.id, browser, signup_id)}"

    def signup_id(self, request: OAuthAuthorization, browser: str, token: str) -> str | None:
        signup_id = token.partition(".")[0]
        expected = self.signup_token(request, browser, signup_id)
        return signup_id if token.isascii() and hmac.compare_digest(token, expected) else None

    async def load(self, request_id: str) -> tuple[OAuthAuthorization, OAuthClientInformationFull] | None:
        """A request still open (not answered, not expired) and its client."""
        async with self.db.read_sessions() as session:
            row = await session.get(OAuthAuthorization, request_id)
        if row is None or row.finished_at is not None or row.expires_at <= self.provider.clock.now():
            return None
        client = await self.provider.stored_client(row.client_id)
        return (row, client) if client is not None else None

    async def bind(self, request: OAuthAuthorization, browser: str) -> bool:
        """Tie the request to the first browser that opens it; another browser cannot take it over."""
        async with self.db.transaction() as session:
            bound = await session.execute(
                update(OAuthAuthorization)
                .where(col(OAuthAuthorization.id) == request.id, col(OAuthAuthorization.browser_hash).is_(None))
                .values(browser_hash=keys.key_hash(browser))
                .returning(col(OAuthAuthorization.id))
            )
            return bound.first() is not None

    def holds(self, request: OAuthAuthorization, browser: str | None) -> bool:
        return bool(browser) and hmac.compare_digest(request.browser_hash or "", keys.key_hash(browser or ""))

    async def send_code(self, request: OAuthAuthorization, email: str, client_address: str) -> None:
        """Email a code to `email` when it belongs to someone (the page says the same either way). Raises
        `rate_limited` past the limits, counting nothing."""
        now = self.provider.clock.now()
        async with self.db.transaction() as session:
            for who in (f"email:{self._digest(email)}", f"addr:{self._digest(client_address)}"):
                await ratelimit.hit(session, f"code:oauth:{who}", codes.PER_HOUR, ratelimit.HOUR, now)
                await ratelimit.hit(session, f"code:oauth:{who}", codes.PER_DAY, ratelimit.DAY, now)
            code = self.provider.random.digits(6)
            stored = await session.execute(
                update(OAuthAuthorization)
                .where(col(OAuthAuthorization.id) == request.id, col(OAuthAuthorization.signed_in_at).is_(None))
                .values(
                    email=email,
                    code_hash=self._digest("oauth-code", request.id, code),
                    attempts=0,
                    code_expires_at=now + codes.CODE_TTL,
                )
                .returning(col(OAuthAuthorization.id))
            )
            if stored.first() is not None and await _accounts(session, email):
                queue_email(
                    session,
                    self.settings,
                    to=email,
                    subject="Your favmcp sign-in code",
                    body=f"Your favmcp code to sign in is {code}.\n\n"
                    "It is valid for 10 minutes. If you did not ask for it, ignore this email.",
                    workspace_id=None,
                    now=now,
                )

    async def check_code(self, request: OAuthAuthorization, code: str) -> str | None:
        """Spend one try; on a match the person is signed in (and, with one workspace, it is chosen). Returns what
        went wrong, or None."""
        now = self.provider.clock.now()
        table = OAuthAuthorization
        async with self.db.transaction() as session:
            counted = await session.execute(
                update(table)
                .where(
                    col(table.id) == request.id,
                    col(table.code_hash).is_not(None),
                    col(table.signed_in_at).is_(None),
                    col(table.attempts) < codes.MAX_TRIES,
                    col(table.code_expires_at) > now,
                )
                .values(attempts=col(table.attempts) + 1)
                .returning(col(table.code_hash), col(table.attempts), col(table.email))
            )
            row = counted.first()
            if row is None:
                return NO_CODE
            code_hash, attempts, email = row
            if not hmac.compare_digest(code_hash or "", self._digest("oauth-code", request.id, code.strip())):
                left = codes.MAX_TRIES - attempts
                return f"The code does not match; {left} tries left." if left else NO_CODE
            accounts = await _accounts(session, email or "")
            chosen = accounts[0] if len(accounts) == 1 else None
            await session.execute(
                update(table)
                .where(col(table.id) == request.id)
                .values(
                    signed_in_at=now,
                    user_id=chosen.user_id if chosen else None,
                    workspace_id=chosen.workspace_id if chosen else None,
                )
            )
        return None

    async def signed_up(self, request: OAuthAuthorization, user_id: str, key_id: str) -> bool:
        """The owner of a business just created from this page is signed in, with that workspace chosen. The
        signup's owner key (register_organisation_verify mints one) is revoked: it was never shown to anyone, and
        the grant is this person's credential. False when the request was answered or expired meanwhile."""
        now = self.provider.clock.now()
        table = OAuthAuthorization
        async with self.db.transaction() as session:
            owner = await session.get(User, user_id)
            assert owner is not None and owner.role == Role.owner, "register_organisation_verify made this owner"
            await session.execute(
                update(ApiKey)
                .where(col(ApiKey.id) == key_id, col(ApiKey.user_id) == owner.id, col(ApiKey.revoked_at).is_(None))
                .values(revoked_at=now)
            )
            changes = {"client_id": request.client_id, "revoked_key_id": key_id}
            subject = AuditSubject(owner.workspace_id, owner.id, key_id)
            session.add(action_row(subject, "oauth:signup", changes, now))
            signed = await session.execute(
                update(table)
                .where(col(table.id) == request.id, col(table.finished_at).is_(None), col(table.expires_at) > now)
                .values(email=owner.email, signed_in_at=now, user_id=owner.id, workspace_id=owner.workspace_id)
                .returning(col(table.id))
            )
            return signed.first() is not None

    async def accounts(self, email: str) -> list[Account]:
        async with self.db.read_sessions() as session:
            return await _accounts(session, email)

    async def choose(self, request: OAuthAuthorization, user_id: str) -> bool:
        """The signed-in person picks one of their workspaces."""
        if request.signed_in_at is None or request.email is None:
            return False
        async with self.db.transaction() as session:
            account = next((a for a in await _accounts(session, request.email) if a.user_id == user_id), None)
            if account is None:
                return False
            await session.execute(
                update(OAuthAuthorization)
                .where(col(OAuthAuthorization.id) == request.id, col(OAuthAuthorization.finished_at).is_(None))
                .values(user_id=account.user_id, workspace_id=account.workspace_id)
            )
        return True

    async def answer(
        self, request: OAuthAuthorization, allow: bool, resource: str, profile: str
    ) -> dict[str, str] | None:
        """The person's answer, once: the authorization code (of a grant bound to `profile`) to send back, or
        access_denied. None when the request was answered already, or the person is not signed in."""
        now = self.provider.clock.now()
        async with self.db.transaction() as session:
            finished = await _finish(session, request, now, signed_in=True)
            if finished is None:
                return None
            if not allow:
                return {"error": "access_denied", "error_description": "The person declined."}
            user = await session.get(User, finished)
            if user is None or user.status != UserStatus.active:
                return {"error": "access_denied", "error_description": "This account is not active."}
            code, _ = await self.provider.grant(session, request, user, resource, profile, now)
        return {"code": code}

    async def refuse(self, request: OAuthAuthorization, error: str, description: str) -> dict[str, str] | None:
        """End the request with an error for the client (an unknown resource)."""
        async with self.db.transaction() as session:
            if await _finish(session, request, self.provider.clock.now(), signed_in=False) is None:
                return None
        return {"error": error, "error_description": description}


async def _finish(session: AsyncSession, request: OAuthAuthorization, now: datetime, *, signed_in: bool) -> str | None:
    """Close the request once; returns its chosen user id ("" when none), or None when it was closed already."""
    table = OAuthAuthorization
    conditions = [col(table.id) == request.id, col(table.finished_at).is_(None)]
    if signed_in:
        conditions += [col(table.signed_in_at).is_not(None), col(table.user_id).is_not(None)]
    done = await session.execute(update(table).where(*conditions).values(finished_at=now).returning(col(table.user_id)))
    row = done.first()
    return None if row is None else row[0] or ""


async def _accounts(session: AsyncSession, email: str) -> list[Account]:
    """The active people with this email, one per workspace (emails are compared case-insensitively)."""
    stmt = (
        select(User, Workspace)
        .join(Workspace, col(Workspace.id) == col(User.workspace_id))
        .where(func.lower(col(User.email)) == email.lower(), col(User.status) == UserStatus.active)
        .order_by(col(Workspace.name), col(Workspace.id))
    )
    return [
        Account(user.id, user.name, user.role, workspace.id, workspace.name)
        for user, workspace in (await session.execute(stmt)).all()
    ]
