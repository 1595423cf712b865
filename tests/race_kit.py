"""The kit of the concurrency races (tests/test_concurrency.py): what a race declares and the helpers its setup,
calls and checks use. Each domain's races live in tests/races/<domain>.py as a SCENARIOS dict."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlmodel import select

from favmcp.app import App
from favmcp.registry.runner import CallResult
from tests.support import FakeClock, Owner, call, unique_email

N = 20
# A scenario's one call that races the others (a merge, an erase, a removal) goes first: it has more to do before it
# reaches the contested row (a token to spend), so some of the others land before it and some after.
RACER = 0


# -- the declaration ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    tool: str
    args: dict[str, Any]
    key: str | None  # the credential; None calls anonymously


@dataclass(frozen=True)
class Outcome:
    i: int
    call: Call
    result: CallResult

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def code(self) -> str | None:
        return None if self.result.ok else self.result.data["error"]["code"]

    @property
    def details(self) -> dict[str, Any]:
        return {} if self.result.ok else self.result.data["error"].get("details", {})


class Stage(SimpleNamespace):
    """What setup made (ids, keys, tokens), shared by the calls and the check; always has app and owner."""

    app: App
    owner: Owner


@dataclass(frozen=True)
class Scenario:
    tool: str  # the mutating tool this race covers (other tools may race it)
    setup: Callable[[Stage], Awaitable[None]]
    call: Callable[[Stage, int], Call]  # call i of N
    check: Callable[[Stage, list[Outcome]], Awaitable[None]]
    refusals: frozenset[str] = field(default_factory=frozenset)  # typed refusals this race may answer
    one_key: bool = False  # all N calls share one idempotency_key (else each has its own)


class MovingClock(FakeClock):
    """Time moves on every reading, as in production: each call of a race starts at its own instant (a frozen
    clock hides races that order rows by time). It starts a minute into an hour: no race crosses a rate window."""

    def __init__(self) -> None:
        super().__init__()
        self.current = self.current.replace(minute=1, second=0)

    def now(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current


# -- helpers -------------------------------------------------------------------------------------------------------


def as_owner(s: Stage, tool: str, args: dict[str, Any]) -> Call:
    return Call(tool, args, s.owner.key)


async def ok(s: Stage, tool: str, args: dict[str, Any] | None = None, *, anonymous: bool = False) -> dict[str, Any]:
    """A setup step or a read for the check, as the owner (or without a key): it must succeed."""
    result = await call(s.app, None if anonymous else s.owner.key, tool, args or {})
    assert result.ok, (tool, result.data)
    return result.data


async def tokens(s: Stage, tool: str, args: dict[str, Any], n: int, key: str | None = None) -> list[str]:
    """n previews of one confirm-gated call, each with its own single-use token."""
    previews = await asyncio.gather(*[call(s.app, key or s.owner.key, tool, args) for _ in range(n)])
    assert all(p.data["error"]["code"] == "confirmation_required" for p in previews), previews[0].data
    return [p.data["error"]["details"]["confirmation_token"] for p in previews]


async def rows(s: Stage, model: Any, *where: Any) -> list[Any]:
    async with s.app.db.transaction() as session:
        return list((await session.execute(select(model).where(*where))).scalars())


async def audit_of(s: Stage, outs: list[Outcome]) -> list[dict[str, Any]]:
    """The audit rows the race's calls wrote (matched by request id)."""
    ids = {o.result.request_id for o in outs}
    found, cursor = [], None
    while True:
        page = await ok(s, "list_audit_events", {"limit": 100, **({"cursor": cursor} if cursor else {})})
        found += [e for e in page["items"] if e["request_id"] in ids]
        if not page["has_more"]:
            return found
        cursor = page["next_cursor"]


async def changed_by(s: Stage, outs: list[Outcome]) -> list[dict[str, Any]]:
    """Audit rows of the race that say something changed."""
    return [e for e in await audit_of(s, outs) if e["outcome"] == "ok" and e["changes"]]


def oks(outs: list[Outcome]) -> list[Outcome]:
    return [o for o in outs if o.ok]


async def member(s: Stage, name: str = "Member", **fields: Any) -> str:
    return str((await ok(s, "create_member", {"name": name, "email": unique_email("m"), **fields}))["id"])
