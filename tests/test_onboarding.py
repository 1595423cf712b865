"""Signup and invite codes: 6 digits, 10 minutes, hashed, 5 tries, rate limits; also under concurrency."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from favmcp.app import App
from favmcp.auth.models import OneTimeCode, Role
from favmcp.db.scoped import WorkspaceDB
from favmcp.domains.team.invites import new_invite
from tests.support import Owner, call, error_code, gather, latest_code, signup, unique_address, unique_email


def request_args(email: str) -> dict[str, Any]:
    return {"email": email, "organisation_name": "Lotus", "owner_name": "Maya"}


async def request_code(app: App, email: str, address: str | None = None) -> Any:
    return await app.runner.call(
        "register_organisation_request",
        request_args(email),
        credential=None,
        client_address=address or unique_address(),
    )


async def verify(app: App, request_id: str, code: str) -> Any:
    return await app.runner.call(
        "register_organisation_verify", {"request_id": request_id, "code": code}, credential=None
    )


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_signup_creates_workspace_owner_and_key(app: App) -> None:
    owner = await signup(app, name="Lotus Yoga")
    me = await call(app, owner.key, "whoami")
    assert me.data["workspace_name"] == "Lotus Yoga" and me.data["role"] == "owner"
    ws = await call(app, owner.key, "get_workspace")
    assert ws.data["timezone"] == "Europe/Amsterdam" and ws.data["contact_email"] == owner.email
    audit = await call(app, owner.key, "list_audit_events", {"tool": "register_organisation_verify"})
    assert [e["outcome"] for e in audit.data["items"]] == ["ok"]


async def test_codes_are_stored_hashed(app: App) -> None:
    email = unique_email()
    req = await request_code(app, email)
    code = await latest_code(app, email)
    async with app.db.transaction() as session:
        row = await session.get(OneTimeCode, req.data["request_id"])
    assert row is not None and code not in row.code_hash and len(row.code_hash) == 64


async def test_email_is_normalised_and_masked(app: App) -> None:
    req = await request_code(app, "  Maya.J@Example.COM ")
    assert req.ok and req.data["email_masked"] == "m***@example.com"
    assert len(await latest_code(app, "maya.j@example.com")) == 6


async def test_answer_does_not_reveal_whether_the_email_is_known(app: App) -> None:
    known = await signup(app)
    again = await request_code(app, known.email)
    fresh = await request_code(app, unique_email())
    assert again.ok and fresh.ok
    assert set(again.data) == set(fresh.data) and again.data["message"] == fresh.data["message"]


async def test_five_wrong_tries_burn_the_code(app: App) -> None:
    email = unique_email()
    req = await request_code(app, email)
    code = await latest_code(app, email)
    for _ in range(5):
        assert error_code(await verify(app, req.data["request_id"], wrong(code))) == "validation_failed"
    assert error_code(await verify(app, req.data["request_id"], code)) == "validation_failed"


async def test_five_tries_hold_under_concurrent_guesses(app: App) -> None:
    email = unique_email()
    req = await request_code(app, email)
    code = await latest_code(app, email)
    rid = req.data["request_id"]
    results = await gather(*[verify(app, rid, f"{n:06d}") for n in range(20) if f"{n:06d}" != code])
    assert all(error_code(r) == "validation_failed" for r in results)
    async with app.db.transaction() as session:
        row = await session.get(OneTimeCode, rid)
    assert row is not None and row.attempts == 5
    assert error_code(await verify(app, rid, code)) == "validation_failed"


async def test_a_code_works_once_even_when_verified_concurrently(app: App) -> None:
    email = unique_email()
    req = await request_code(app, email)
    code = await latest_code(app, email)
    results = await gather(*[verify(app, req.data["request_id"], code) for _ in range(6)])
    assert sum(r.ok for r in results) == 1
    assert {r.data["workspace_id"] for r in results if r.ok}


async def test_code_expires_after_ten_minutes(app: App, clock: Any) -> None:
    email = unique_email()
    req = await request_code(app, email)
    code = await latest_code(app, email)
    clock.advance(minutes=10, seconds=1)
    assert error_code(await verify(app, req.data["request_id"], code)) == "validation_failed"


async def test_three_requests_an_hour_per_email(app: App, clock: Any) -> None:
    email = unique_email()
    for _ in range(3):
        assert (await request_code(app, email)).ok
    refused = await request_code(app, email)
    assert error_code(refused) == "rate_limited"
    assert 0 < refused.data["error"]["retry_after"] <= 3600 and refused.data["error"]["retryable"]
    clock.advance(hours=1)
    assert (await request_code(app, email)).ok


async def test_twenty_requests_a_day_per_email(app: App, clock: Any) -> None:
    email = unique_email()
    clock.current = clock.current.replace(hour=0, minute=0, second=1)
    accepted = 0
    for _ in range(12):
        for _ in range(3):
            accepted += (await request_code(app, email)).ok
        clock.advance(hours=1)
    assert accepted == 20


async def test_three_requests_an_hour_per_client_address(app: App) -> None:
    address = unique_address()
    for _ in range(3):
        assert (await request_code(app, unique_email(), address)).ok
    assert error_code(await request_code(app, unique_email(), address)) == "rate_limited"


async def test_rate_limit_holds_under_concurrent_requests(app: App) -> None:
    email = unique_email()
    results = await gather(*[request_code(app, email) for _ in range(12)])
    assert sum(r.ok for r in results) == 3
    assert all(error_code(r) == "rate_limited" for r in results if not r.ok)
    async with app.db.transaction() as session:
        rows = (await session.execute(select(OneTimeCode).where(OneTimeCode.email == email))).scalars().all()
    assert len(rows) == 3


async def invite(app: App, owner: Owner, role: Role = Role.staff) -> tuple[str, str]:
    email = unique_email("staff")
    async with app.db.transaction() as session:
        _, token = new_invite(
            WorkspaceDB(session, owner.workspace_id), email=email, role=role, name="Sofia",
            invited_by=owner.user_id, random=app.runner.random, now=app.runner.clock.now(),
        )  # fmt: skip
    return email, token


async def accept(app: App, token: str, email: str) -> Any:
    req = await call(app, None, "accept_team_invite_request", {"invite_token": token})
    assert req.ok, req.data
    code = await latest_code(app, email)
    return await call(app, None, "accept_team_invite_verify", {"request_id": req.data["request_id"], "code": code})


async def test_invite_acceptance_hands_the_member_their_own_key(app: App, owner: Owner) -> None:
    email, token = await invite(app, owner)
    done = await accept(app, token, email)
    assert done.ok and done.data["role"] == "staff" and done.data["workspace_id"] == owner.workspace_id
    me = await call(app, done.data["api_key"], "whoami")
    assert me.data["role"] == "staff" and "access:admin" not in me.data["scopes"]
    assert error_code(await call(app, done.data["api_key"], "list_api_keys")) == "forbidden"
    again = await call(app, None, "accept_team_invite_request", {"invite_token": token})
    assert error_code(again) == "not_found"


async def test_expired_or_unknown_invites_are_refused(app: App, owner: Owner, clock: Any) -> None:
    _, token = await invite(app, owner)
    assert error_code(await call(app, None, "accept_team_invite_request", {"invite_token": "fav_inv_" + "x" * 40})) == (
        "not_found"
    )
    clock.advance(days=7, seconds=1)
    assert error_code(await call(app, None, "accept_team_invite_request", {"invite_token": token})) == "not_found"


async def test_an_invite_is_accepted_once_under_concurrency(app: App, owner: Owner) -> None:
    email, token = await invite(app, owner)
    req = await call(app, None, "accept_team_invite_request", {"invite_token": token})
    code = await latest_code(app, email)
    args = {"request_id": req.data["request_id"], "code": code}
    results = await gather(*[call(app, None, "accept_team_invite_verify", args) for _ in range(4)])
    assert sum(r.ok for r in results) == 1
    members = await call(app, owner.key, "list_api_keys", {"limit": 100})
    assert sum(k["user_id"] != owner.user_id for k in members.data["items"]) == 1
