"""API keys, whoami, scopes and the confirm gate, through the runner on both databases."""

from __future__ import annotations

from favmcp.app import App
from tests.support import Owner, call, error_code, gather, signup


async def test_whoami_anonymous_and_authenticated(app: App, owner: Owner) -> None:
    anon = await call(app, None, "whoami")
    assert anon.ok and anon.data["authenticated"] is False
    me = await call(app, owner.key, "whoami")
    assert me.ok
    assert me.data["workspace_id"] == owner.workspace_id
    assert me.data["role"] == "owner" and "access:admin" in me.data["scopes"]


async def test_unknown_and_malformed_keys_are_unauthenticated(app: App) -> None:
    assert error_code(await call(app, "fav_mcp_" + "x" * 40, "whoami")) == "unauthenticated"
    assert error_code(await call(app, "not-a-key", "whoami")) == "unauthenticated"
    assert error_code(await call(app, None, "list_api_keys")) == "unauthenticated"


async def test_created_key_is_shown_once_and_has_only_chosen_scopes(app: App, owner: Owner) -> None:
    made = await call(app, owner.key, "create_api_key", {"name": "reader", "scopes": ["workspace:read"]})
    assert made.ok and made.data["api_key"].startswith("fav_mcp_") and len(made.data["api_key"]) >= 40
    reader = made.data["api_key"]
    assert (await call(app, reader, "get_workspace")).ok
    assert error_code(await call(app, reader, "update_workspace", {"name": "X"})) == "forbidden"
    assert error_code(await call(app, reader, "list_api_keys")) == "forbidden"
    listed = await call(app, owner.key, "list_api_keys")
    assert reader not in str(listed.data) and "key_hash" not in str(listed.data)


async def test_a_key_cannot_grant_scopes_it_does_not_hold(app: App, owner: Owner) -> None:
    made = await call(app, owner.key, "create_api_key", {"name": "a", "scopes": ["access:admin"]})
    limited = made.data["api_key"]
    escalate = await call(app, limited, "create_api_key", {"name": "b", "scopes": ["workspace:admin"]})
    assert error_code(escalate) == "forbidden"


async def test_expired_key_is_refused(app: App, owner: Owner, clock) -> None:  # type: ignore[no-untyped-def]
    clock_now = clock.now()
    made = await call(
        app, owner.key, "create_api_key",
        {"name": "short", "expires_at": (clock_now.replace(microsecond=0)).isoformat().replace("+00:00", "Z")},
    )  # fmt: skip
    assert error_code(made) == "validation_failed"
    later = clock_now.replace(year=clock_now.year + 1).isoformat()
    made = await call(app, owner.key, "create_api_key", {"name": "short", "expires_at": later})
    assert made.ok
    assert (await call(app, made.data["api_key"], "whoami")).data["authenticated"]
    clock.advance(days=370)
    assert error_code(await call(app, made.data["api_key"], "whoami")) == "unauthenticated"


async def test_revoke_walks_the_confirm_gate_and_takes_effect_on_the_next_call(app: App, owner: Owner) -> None:
    made = await call(app, owner.key, "create_api_key", {"name": "temp"})
    key_id, secret = made.data["key"]["id"], made.data["api_key"]
    first = await call(app, owner.key, "revoke_api_key", {"key_id": key_id})
    assert error_code(first) == "confirmation_required"
    details = first.data["error"]["details"]
    assert details["preview"]["key"]["id"] == key_id and "temp" in details["preview"]["summary"]
    assert (await call(app, secret, "whoami")).ok, "the preview must change nothing"
    token = details["confirmation_token"]
    other_args = await call(app, owner.key, "revoke_api_key", {"key_id": owner.key_id, "confirmation_token": token})
    assert error_code(other_args) == "confirmation_required"
    done = await call(app, owner.key, "revoke_api_key", {"key_id": key_id, "confirmation_token": token})
    assert done.ok and done.data["status"] == "revoked"
    assert error_code(await call(app, secret, "whoami")) == "unauthenticated"
    reused = await call(app, owner.key, "revoke_api_key", {"key_id": key_id, "confirmation_token": token})
    assert error_code(reused) == "confirmation_required"
    assert "already been used" in reused.data["error"]["message"]


async def test_confirmation_token_is_bound_to_the_caller_and_expires(app: App, owner: Owner, clock) -> None:  # type: ignore[no-untyped-def]
    made = await call(app, owner.key, "create_api_key", {"name": "second admin key"})
    other_key = made.data["api_key"]
    target = (await call(app, owner.key, "create_api_key", {"name": "target"})).data["key"]["id"]
    first = await call(app, owner.key, "revoke_api_key", {"key_id": target})
    token = first.data["error"]["details"]["confirmation_token"]
    stolen = await call(app, other_key, "revoke_api_key", {"key_id": target, "confirmation_token": token})
    assert error_code(stolen) == "confirmation_required"
    clock.advance(minutes=5, seconds=1)
    late = await call(app, owner.key, "revoke_api_key", {"key_id": target, "confirmation_token": token})
    assert error_code(late) == "confirmation_required" and "expired" in late.data["error"]["message"]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert error_code(
        await call(app, owner.key, "revoke_api_key", {"key_id": target, "confirmation_token": forged})
    ) == ("confirmation_required")


async def test_a_confirmation_token_acts_once_under_concurrency(app: App, owner: Owner) -> None:
    target = (await call(app, owner.key, "create_api_key", {"name": "target"})).data["key"]["id"]
    first = await call(app, owner.key, "revoke_api_key", {"key_id": target})
    token = first.data["error"]["details"]["confirmation_token"]
    results = await gather(
        *[call(app, owner.key, "revoke_api_key", {"key_id": target, "confirmation_token": token}) for _ in range(8)]
    )
    assert sum(r.ok for r in results) == 1
    audit = await call(app, owner.key, "list_audit_events", {"tool": "revoke_api_key", "limit": 100})
    outcomes = sorted(e["outcome"] for e in audit.data["items"])
    assert outcomes == ["confirmation_required"] * 7 + ["ok"], "one revocation; the refused spends are audited"


async def test_workspaces_never_see_each_others_keys_or_audit(app: App) -> None:
    a, b = await signup(app), await signup(app)
    await call(app, a.key, "create_api_key", {"name": "a-only"})
    keys_b = await call(app, b.key, "list_api_keys")
    assert {k["user_id"] for k in keys_b.data["items"]} == {b.user_id}
    assert a.workspace_id not in str(keys_b.data)
    audit_b = await call(app, b.key, "list_audit_events", {"limit": 100})
    assert audit_b.ok and audit_b.data["items"]
    assert a.workspace_id not in str(audit_b.data) and a.key_id not in str(audit_b.data)
    cross = await call(app, b.key, "revoke_api_key", {"key_id": a.key_id})
    assert error_code(cross) == "not_found"


async def test_list_api_keys_pages_without_gaps(app: App, owner: Owner) -> None:
    made = {owner.key_id}
    for i in range(7):
        made.add((await call(app, owner.key, "create_api_key", {"name": f"k{i}"})).data["key"]["id"])
    seen: list[str] = []
    cursor = None
    while True:
        page = await call(app, owner.key, "list_api_keys", {"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert page.ok
        seen += [k["id"] for k in page.data["items"]]
        if not page.data["has_more"]:
            assert page.data["next_cursor"] is None
            break
        cursor = page.data["next_cursor"]
    assert sorted(seen) == sorted(made) and len(seen) == len(made)
    assert error_code(await call(app, owner.key, "list_api_keys", {"cursor": "garbage!"})) == "validation_failed"
    assert error_code(await call(app, owner.key, "list_api_keys", {"limit": 101})) == "validation_failed"
