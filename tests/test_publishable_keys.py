"""Publishable keys (fav_pub_), for a web page's booking form, against a live `favmcp serve --http` on SQLite and
Postgres: what they may read and ask, the CORS allowlist of each key, the limit per client address, and /mcp
refusing them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from favmcp.app import App
from favmcp.transports.rest import PUBLISHABLE_PER_MINUTE
from tests.servers import HttpServer, http_server, server_env
from tests.support import Owner, join, unique_email

PAGE = "https://studio.example"
ELSEWHERE = "https://elsewhere.example"
OPEN = {day: [{"open": "00:00", "close": "23:59"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture
async def server(database_url: str, tmp_path: Path, owner: Owner) -> AsyncIterator[HttpServer]:
    async with http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as live:
        yield live


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def answer(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def make_key(http: httpx.AsyncClient, owner: Owner, origins: list[str]) -> str:
    made = answer(
        await http.post(
            "/v1/api-keys",
            json={"name": "booking page", "publishable": True, "allowed_origins": origins},
            headers=bearer(owner.key),
        )
    )
    assert made["api_key"].startswith("fav_pub_"), made
    assert made["key"]["profile"] == "publishable" and made["key"]["allowed_origins"] == sorted(origins), made
    return str(made["api_key"])


async def studio(http: httpx.AsyncClient, owner: Owner) -> str:
    """Open around the clock, a 30-minute massage by the owner, bookings confirmed at once, a post live and a
    draft."""
    owner_headers = bearer(owner.key)
    answer(await http.put("/v1/workspace/business-hours", json={"weekly": OPEN, "closures": []}, headers=owner_headers))
    answer(await http.patch("/v1/booking-settings", json={"requires_confirmation": False}, headers=owner_headers))
    service = answer(
        await http.post(
            "/v1/services",
            json={"name": "Massage", "duration_minutes": 30, "unit_amount": 5000, "staff_ids": [owner.user_id]},
            headers=owner_headers,
        )
    )
    live = answer(await http.post("/v1/posts", json={"title": "Open on Sundays"}, headers=owner_headers))
    answer(await http.post(f"/v1/posts/{live['id']}/publish", json={}, headers=owner_headers))
    answer(await http.post("/v1/posts", json={"title": "Secret plans"}, headers=owner_headers))
    return str(service["id"])


async def first_slot(http: httpx.AsyncClient, key: str, service_id: str) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    query = {"from_date": str(today), "to_date": str(today + timedelta(days=6)), "limit": 5}
    slots = answer(await http.get(f"/v1/services/{service_id}/slots", params=query, headers=bearer(key)))
    assert slots["items"], slots
    return dict(slots["items"][0])


async def test_a_page_key_reads_services_slots_and_live_posts_and_asks_for_bookings(
    server: HttpServer, owner: Owner
) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
        service_id = await studio(http, owner)
        key = await make_key(http, owner, [PAGE])
        page = bearer(key, Origin=PAGE)

        services = answer(await http.get("/v1/services", headers=page))
        assert [s["id"] for s in services["items"]] == [service_id]
        # Every visitor holds the key: it names its workspace, never the person who made it.
        me = answer(await http.get("/v1/whoami", headers=page))
        assert (me["profile"], me["user_id"], me["user_name"], me["role"]) == ("publishable", None, None, None), me
        posts = answer(await http.get("/v1/posts", headers=page))
        assert [p["title"] for p in posts["items"]] == ["Open on Sundays"]
        # The key's pin holds whatever the page asks for.
        asked = answer(await http.get("/v1/posts", params={"status": "draft"}, headers=page), 422)
        assert asked["code"] == "validation_failed"

        slot = await first_slot(http, key, service_id)
        email = unique_email("visitor")
        request = {
            "service_id": service_id,
            "starts_at": slot["starts_at"],
            "customer": {"name": "Vera Visitor", "email": email, "email_consent": True},
        }
        booking = answer(await http.post("/v1/bookings", json=request, headers=page))
        # Booking settings confirm at once; a page's request waits for the business all the same.
        assert booking["status"] == "pending", booking

        owner_headers = bearer(owner.key)
        found = answer(await http.get("/v1/members", params={"text": email}, headers=owner_headers))["items"]
        assert [m["id"] for m in found] == [booking["member_id"]]
        profile = answer(await http.get(f"/v1/members/{booking['member_id']}", headers=owner_headers))
        assert [(c["channel"], c["granted"]) for c in profile["consent"]] == [("email", True)], profile["consent"]

        # The same visitor again: found by email, not added twice.
        later = await first_slot(http, key, service_id)
        again_request = {**request, "starts_at": later["starts_at"], "customer": {"name": "Vera", "email": email}}
        if later["starts_at"] == slot["starts_at"]:
            pytest.fail(f"the booked slot is still offered: {later}")
        again = answer(await http.post("/v1/bookings", json=again_request, headers=page))
        assert again["member_id"] == booking["member_id"] and again["status"] == "pending"

        by_id = {**request, "customer": None, "member_id": booking["member_id"]}
        assert answer(await http.post("/v1/bookings", json=by_id, headers=page), 403)["code"] == "forbidden"
        for method, path, body in [
            ("GET", "/v1/members", None),
            ("GET", f"/v1/members/{booking['member_id']}", None),
            ("GET", f"/v1/bookings/{booking['id']}", None),
            ("GET", "/v1/bookings", None),
            ("POST", "/v1/invoices", {"member_id": booking["member_id"]}),
            ("POST", "/v1/api-keys", {"name": "more"}),
        ]:
            refused = await http.request(method, path, json=body, headers=page)
            assert refused.status_code == 403 and "publishable profile" in refused.json()["detail"], (
                path,
                refused.text,
            )


async def test_a_refusal_tells_nothing_about_the_customer(server: HttpServer, app: App, owner: Owner) -> None:
    colleague = await join(app, owner)
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
        service_id = await studio(http, owner)
        answer(
            await http.put(
                f"/v1/services/{service_id}/staff",
                json={"staff_ids": [owner.user_id, colleague.user_id]},
                headers=bearer(owner.key),
            )
        )
        key = await make_key(http, owner, [PAGE])
        slot = await first_slot(http, key, service_id)
        request = {
            "service_id": service_id,
            "starts_at": slot["starts_at"],
            "customer": {"name": "Vera Visitor", "email": unique_email("visitor")},
        }
        answer(await http.post("/v1/bookings", json=request, headers=bearer(key, Origin=PAGE)))
        # The other staff member is free then; the customer is not, which the owner may learn and the page may not.
        refused = answer(await http.post("/v1/bookings", json=request, headers=bearer(key, Origin=PAGE)), 409)
        assert refused["details"] == {"reason": "unavailable"}, refused
        member_id = answer(await http.get("/v1/bookings", headers=bearer(owner.key)))["items"][0]["member_id"]
        by_owner = {**request, "customer": None, "member_id": member_id}
        busy = answer(await http.post("/v1/bookings", json=by_owner, headers=bearer(owner.key)), 409)
        assert busy["details"]["reason"] == "customer_busy", busy


async def test_each_key_allows_its_own_origins(server: HttpServer, owner: Owner) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
        key = await make_key(http, owner, [PAGE, "http://localhost:3000"])
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}

        allowed = await http.options("/v1/bookings", headers={"Origin": PAGE, **preflight})
        assert allowed.status_code == 204, allowed.text
        assert allowed.headers["access-control-allow-origin"] == PAGE
        assert "POST" in allowed.headers["access-control-allow-methods"]
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()

        refused = await http.options("/v1/bookings", headers={"Origin": ELSEWHERE, **preflight})
        assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers

        call = await http.get("/v1/services", headers=bearer(key, Origin=PAGE))
        assert call.status_code == 200 and call.headers["access-control-allow-origin"] == PAGE
        assert call.headers["vary"] == "Origin"
        other = await http.get("/v1/services", headers=bearer(key, Origin=ELSEWHERE))
        assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
        # Without an Origin (a server, not a browser) there is nothing to allow.
        plain = await http.get("/v1/services", headers=bearer(key))
        assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers
        # A secret key's answers carry no CORS headers: no page may read them.
        secret = await http.get("/v1/services", headers=bearer(owner.key, Origin=PAGE))
        assert secret.status_code == 200 and "access-control-allow-origin" not in secret.headers

        # Another key's origins are its own.
        mine = await make_key(http, owner, [ELSEWHERE])
        assert (await http.get("/v1/services", headers=bearer(mine, Origin=PAGE))).status_code == 403
        ok = await http.get("/v1/services", headers=bearer(mine, Origin=ELSEWHERE))
        assert ok.headers["access-control-allow-origin"] == ELSEWHERE


async def test_made_only_with_origins_and_without_scopes(server: HttpServer, owner: Owner) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
        for body in [
            {"name": "page", "publishable": True},
            {"name": "page", "publishable": True, "allowed_origins": [PAGE], "scopes": ["members:read"]},
            {"name": "page", "publishable": True, "allowed_origins": ["https://studio.example/booking"]},
            {"name": "page", "allowed_origins": [PAGE]},
            {"name": "page", "profile": "publishable"},
        ]:
            made = await http.post("/v1/api-keys", json=body, headers=bearer(owner.key))
            assert made.status_code == 422, (body, made.text)


async def test_limited_per_address_and_refused_on_mcp(server: HttpServer, owner: Owner) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
        key = await make_key(http, owner, [PAGE])
        statuses = []
        # Fixed one-minute windows: within twice the limit one window is full, wherever the boundary falls.
        for _ in range(2 * PUBLISHABLE_PER_MINUTE + 1):
            response = await http.get("/v1/services", headers=bearer(key, Origin=PAGE))
            statuses.append(response.status_code)
            if response.status_code == 429:
                break
        assert statuses[-1] == 429 and statuses.count(200) >= PUBLISHABLE_PER_MINUTE, statuses
        assert int(response.headers["retry-after"]) > 0
        assert response.headers["access-control-allow-origin"] == PAGE
        assert response.json()["code"] == "rate_limited"

        # Another address (the loopback network is all this machine's) has its own count.
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=server.base, timeout=10, transport=transport) as neighbour:
            assert (await neighbour.get("/v1/services", headers=bearer(key, Origin=PAGE))).status_code == 200

        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "booking page", "version": "1"},
            },
        }
        mcp = await http.post(
            "/mcp", json=initialize, headers=bearer(key, Accept="application/json, text/event-stream")
        )
        assert mcp.status_code == 401, mcp.text
