"""The example booking page (examples/booking-page) in Debian's Chromium, driven by Playwright, against a live
`favmcp serve --http` on SQLite and Postgres, with a publishable key.

The page is served by a static HTTP server of its own on another loopback port, so the browser's CORS checks are
real: from the origin the key allows, a visitor picks a service, a date and a time, fills the form, reads the
server's problem when someone else took that time meanwhile, picks another and gets the "request received" state,
and the owner then finds a pending booking for that customer and time; the same page from an origin the key does
not allow cannot load the services and says so.

Without /usr/bin/chromium the tests are skipped, unless FAVMCP_REQUIRE_NODE=1 (CI, which installs it), which makes
that a failure.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from favmcp.app import App
from tests.servers import HttpServer, http_server, server_env
from tests.support import Owner, call, unique_email

PAGE_DIR = Path(__file__).resolve().parent.parent / "examples" / "booking-page"
CHROMIUM = Path("/usr/bin/chromium")
OPEN = {day: [{"open": "00:00", "close": "23:59"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
TIMEOUT_MS = 10_000


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        return None


@contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """The folder served on a free loopback port, as a web host would serve it; yields its origin."""
    site = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory)))
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}"
    finally:
        site.shutdown()
        site.server_close()


@pytest.fixture
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("FAVMCP_REQUIRE_NODE") == "1":
            pytest.fail(f"Chromium is required (FAVMCP_REQUIRE_NODE=1) but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing (Debian's chromium package)")
    return CHROMIUM


@pytest.fixture
async def chromium(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium_path), headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def server(database_url: str, tmp_path: Path, owner: Owner) -> AsyncIterator[HttpServer]:
    async with http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as live:
        yield live


async def ok(app: App, key: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await call(app, key, tool, args)
    assert result.ok, (tool, result.data)
    return dict(result.data)


async def studio(app: App, owner: Owner) -> dict[str, Any]:
    """Open around the clock, a 45-minute massage by the owner."""
    await ok(app, owner.key, "set_business_hours", {"weekly": OPEN, "closures": []})
    service = {"name": "Deep tissue massage", "duration_minutes": 45, "unit_amount": 6500, "staff_ids": [owner.user_id]}
    return await ok(app, owner.key, "create_service", service)


async def publishable_key(app: App, owner: Owner, origin: str) -> str:
    made = await ok(
        app, owner.key, "create_api_key", {"name": "website", "publishable": True, "allowed_origins": [origin]}
    )
    return str(made["api_key"])


async def open_page(browser: Browser, origin: str, api: str, key: str) -> Page:
    """In a browser whose clock is UTC's: the page learns the business's time zone from the free times."""
    page = await browser.new_page(timezone_id="UTC")
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{origin}/index.html?{urlencode({'api': api, 'key': key})}")
    return page


def tomorrow(zone: ZoneInfo) -> date:
    """The business's day after tomorrow: today may have no time left, and late at night the start of tomorrow is
    within the minimum notice for a booking."""
    return datetime.now(zone).date() + timedelta(days=2)


async def test_a_visitor_requests_an_appointment(server: HttpServer, app: App, owner: Owner, chromium: Browser) -> None:
    service = await studio(app, owner)
    timezone = "Pacific/Auckland"  # half a day from the visitor's UTC: a time on the wrong clock shows
    await ok(app, owner.key, "update_workspace", {"timezone": timezone})
    zone = ZoneInfo(timezone)
    day = tomorrow(zone)
    with static_site(PAGE_DIR) as origin:
        key = await publishable_key(app, owner, origin)
        page = await open_page(chromium, origin, server.base, key)

        await expect(page.locator("#business")).to_have_text("Studio")
        await page.get_by_label("Deep tissue massage").check()
        await page.get_by_label("Date", exact=True).fill(day.isoformat())
        # Open around the clock: the day's first time is midnight, in the business's own time.
        await expect(page.locator("#slots .choice label").first).to_have_text("00:00")
        await expect(page.locator("#zone")).to_have_text("Pacific/Auckland")
        await page.get_by_label("10:00", exact=True).check()

        email = unique_email("visitor")
        await page.get_by_label("Name").fill("Vera Visitor")
        await page.get_by_label("Email", exact=True).fill(email)
        await page.get_by_label("Phone").fill("+31 6 1234 5678")
        await page.get_by_label("Send me news").check()

        # Someone takes 10:00 while the visitor types: the page shows the server's refusal and what is still free.
        taken = datetime.combine(day, time(10), zone).isoformat()
        walk_in = {"name": "Walk In", "email": unique_email("walkin")}
        await ok(
            app, owner.key, "create_booking", {"service_id": service["id"], "starts_at": taken, "customer": walk_in}
        )
        submit = page.get_by_role("button", name="Request this appointment")
        await submit.click()
        problem = page.get_by_role("alert")
        await expect(problem).to_be_visible()
        await expect(page.get_by_label("10:00", exact=True)).to_have_count(0)
        shown = await problem.inner_text()

        await page.get_by_label("11:00", exact=True).check()
        await submit.click()
        done = page.locator("#done")
        await expect(done.get_by_role("heading", name="Request received")).to_be_focused()
        await expect(done).to_contain_text("The business will confirm")
        await expect(page.locator("#done-service")).to_have_text("Deep tissue massage")
        await expect(page.locator("#done-when")).to_contain_text("11:00")
        await expect(page.locator("#done-email")).to_have_text(email)
        await expect(problem).to_be_hidden()

    found = (await ok(app, owner.key, "search_members", {"text": email}))["items"]
    assert len(found) == 1, found
    bookings = (await ok(app, owner.key, "list_bookings", {"member_id": found[0]["id"]}))["items"]
    assert [(b["status"], datetime.fromisoformat(b["starts_at"])) for b in bookings] == [
        ("pending", datetime.combine(day, time(11), zone))
    ], bookings
    profile = await ok(app, owner.key, "get_member_profile", {"member_id": found[0]["id"]})
    assert [(c["channel"], c["granted"]) for c in profile["consent"]] == [("email", True)], profile["consent"]
    detail = await ok(app, owner.key, "get_booking_detail", {"booking_id": bookings[0]["id"]})
    assert detail["customer"]["name"] == "Vera Visitor" and "+31 6 1234 5678" in str(detail["customer_note"]), detail
    # What the visitor read was the server's problem, its title and detail, not a generic failure.
    assert shown.startswith("Conflict") and "No staff member" in shown, shown


async def test_a_page_from_an_origin_the_key_does_not_allow_cannot_load(
    server: HttpServer, app: App, owner: Owner, chromium: Browser
) -> None:
    await studio(app, owner)
    with static_site(PAGE_DIR) as allowed, static_site(PAGE_DIR) as elsewhere:
        key = await publishable_key(app, owner, allowed)
        page = await open_page(chromium, elsewhere, server.base, key)
        problem = page.get_by_role("alert")
        await expect(problem).to_contain_text("The booking service could not be reached")
        await expect(problem).to_contain_text(elsewhere)
        await expect(page.locator("#services-status")).to_have_text("The services could not be loaded.")
        await expect(page.locator("#services .choice")).to_have_count(0)
