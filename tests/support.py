"""Helpers shared by the tests: settings, the real signup flow, calls through the runner."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import platformdirs
from sqlalchemy import select
from sqlalchemy.engine import make_url

from favmcp.app import App
from favmcp.config import Settings
from favmcp.effects.models import OutboxMessage
from favmcp.effects.outbox import open_body
from favmcp.registry.runner import CallResult, Runner
from favmcp.transports.listing import Listing


class FakeClock:
    """The clock handlers see; tests move it."""

    def __init__(self) -> None:
        self.current = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


# The tool listing of every server the tests start, kept once per machine as a deployed server keeps it across
# restarts: its key is what it was made from (code, filters, domains), so no server reads another's listing, and
# building it is a fifth of a server's start. Tests of the cache itself give a server a cache of its own.
SHARED_LISTING_CACHE = str(platformdirs.user_cache_path("favmcp") / "test-listings")


def make_settings(home: Path, database_url: str, **overrides: Any) -> Settings:
    env = {"FAVMCP_HOME": str(home), "FAVMCP_DATABASE_URL": database_url, "FAVMCP_SECRET_KEY": "test-secret"}
    env["FAVMCP_CACHE_DIR"] = SHARED_LISTING_CACHE
    # One test is one minute of the fake clock: a fuzz or property run with one key would meet the per-minute call
    # limits and stop exercising the tools. The rate-limit tests set their own.
    env |= {"FAVMCP_RATE_LIMIT_READS": "0", "FAVMCP_RATE_LIMIT_WRITES": "0", "FAVMCP_RATE_LIMIT_SENDS": "0"}
    settings = Settings.from_env(env)
    for name, value in overrides.items():
        setattr(settings, name, value)
    return settings


def unique_email(tag: str = "owner") -> str:
    return f"{tag}.{uuid.uuid4().hex[:12]}@example.com"


def unique_address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


async def latest_code(app: App, email: str) -> str:
    async with app.db.transaction() as session:
        stmt = (
            select(OutboxMessage)
            .where(OutboxMessage.recipient == email)  # type: ignore[arg-type]
            .order_by(OutboxMessage.id.desc())  # type: ignore[attr-defined]
        )
        message = (await session.execute(stmt)).scalars().first()
    assert message is not None, f"no email to {email}"
    found = re.search(r"\b(\d{6})\b", open_body(app.settings, message))
    assert found
    return found.group(1)


@dataclass
class Owner:
    key: str
    workspace_id: str
    user_id: str
    key_id: str
    email: str


async def signup(app: App, email: str | None = None, *, name: str = "Studio") -> Owner:
    """The real signup flow through the runner; the code is read from the outbox."""
    email = email or unique_email()
    address = unique_address()
    req = await app.runner.call(
        "register_organisation_request",
        {"email": email, "organisation_name": name, "owner_name": "Ann Owner", "timezone": "Europe/Amsterdam"},
        credential=None,
        client_address=address,
    )
    assert req.ok, req.data
    code = await latest_code(app, email)
    ver = await app.runner.call(
        "register_organisation_verify",
        {"request_id": req.data["request_id"], "code": code},
        credential=None,
        client_address=address,
    )
    assert ver.ok, ver.data
    d = ver.data
    return Owner(d["api_key"], d["workspace_id"], d["user_id"], d["key_id"], email)


async def call(app: App, key: str | None, tool: str, args: dict[str, Any] | None = None) -> CallResult:
    return await app.runner.call(tool, args or {}, credential=key, client_address=unique_address())


async def confirmed(app: App, key: str, tool: str, args: dict[str, Any]) -> CallResult:
    """Walk the confirm gate: preview first, then act with the token."""
    first = await call(app, key, tool, args)
    assert not first.ok and first.data["error"]["code"] == "confirmation_required", first.data
    token = first.data["error"]["details"]["confirmation_token"]
    return await call(app, key, tool, {**args, "confirmation_token": token})


def error_code(result: CallResult) -> str | None:
    return None if result.ok else result.data["error"]["code"]


async def gather(*aws: Any) -> list[Any]:
    return list(await asyncio.gather(*aws))


@asynccontextmanager
async def fresh_postgres_beside(url: str) -> AsyncIterator[str]:
    """A new, empty database on the same server as `url`, dropped afterwards."""
    base = make_url(url)
    name = f"favmcp_scratch_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(
            host=base.host,
            port=base.port or 5432,
            user=base.username,
            password=base.password,
            database=base.database,
            timeout=10,
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Member:
    key: str
    user_id: str
    email: str


async def emails_to(app: App, email: str) -> list[OutboxMessage]:
    async with app.db.transaction() as session:
        stmt = select(OutboxMessage).where(OutboxMessage.recipient == email).order_by(OutboxMessage.id)  # type: ignore[arg-type]
        return list((await session.execute(stmt)).scalars())


async def invite_token(app: App, email: str) -> str:
    messages = await emails_to(app, email)
    assert messages, f"no email to {email}"
    body = open_body(app.settings, messages[-1])
    found = re.search(r"\bfav_inv_\w+", body)
    assert found, body
    return found.group(0)


async def invite(app: App, key: str, role: str = "staff", email: str | None = None) -> tuple[str, str]:
    """Invite through the tool; returns (email, invite id)."""
    email = email or unique_email(role)
    made = await call(app, key, "create_team_member_invite", {"email": email, "role": role, "name": "Sofia"})
    assert made.ok, made.data
    return email, made.data["invite"]["id"]


async def accept(app: App, email: str) -> Any:
    """The invited person's side: the token from the invite email, then the code from the next email."""
    token = await invite_token(app, email)
    req = await call(app, None, "accept_team_invite_request", {"invite_token": token})
    assert req.ok, req.data
    code = await latest_code(app, email)
    return await call(app, None, "accept_team_invite_verify", {"request_id": req.data["request_id"], "code": code})


async def join(app: App, owner: Owner, role: str = "staff") -> Member:
    email, _ = await invite(app, owner.key, role)
    done = await accept(app, email)
    assert done.ok, done.data
    return Member(done.data["api_key"], done.data["user_id"], email)


def served(app: App) -> tuple[Listing, Callable[[], Awaitable[Runner]]]:
    """What build_server takes for an app that is open: its listing and its runner."""

    async def runner() -> Runner:
        return app.runner

    return Listing.of(app.registry), runner
