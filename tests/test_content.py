"""Content (issue 13): posts in typed blocks, their states, one live slug per workspace under concurrent publishes,
scheduled posts going live by the clock, the public read API over real HTTP (live posts of one workspace only,
CORS, ETag and 304), workspace handles, and deletion through the confirm gate. SQLite and Postgres."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import col, select

from favmcp.app import App
from favmcp.core.pagination import encode_cursor
from favmcp.domains.content.models import Post
from favmcp.registry.jobs import Scheduler
from tests.support import FakeClock, Owner, call, confirmed, error_code, signup
from tests.test_calendar_feed import served
from tests.test_products import ok

N = 12


def stamp(clock: FakeClock, **delta: float) -> str:
    return (clock.now() + timedelta(**delta)).isoformat()


async def service(app: App, owner: Owner) -> str:
    made = await ok(app, owner, "create_service", {"name": "Massage", "duration_minutes": 60, "unit_amount": 5000})
    return str(made["id"])


async def draft(app: App, owner: Owner, title: str = "Spring opening hours", **fields: Any) -> dict[str, Any]:
    return await ok(app, owner, "create_post", {"title": title, **fields})


async def test_create_get_list_update_and_their_validation(app: App, owner: Owner) -> None:
    svc = await service(app, owner)
    blocks = [
        {"type": "heading", "text": "New at the studio", "level": 2},
        {"type": "paragraph", "text": "We open at 8 from May."},
        {"type": "image", "url": "https://cdn.example.com/a.jpg", "alt": "The studio"},
        {"type": "quote", "text": "Best massage in town.", "cite": "A customer"},
        {"type": "call_to_action", "label": "Read more", "url": "https://example.com/more"},
        {"type": "booking_button", "label": "Book a massage", "service_id": svc},
    ]
    made = await draft(app, owner, "Spring: Opening Hours!", blocks=blocks, tags=["News", "news", "Studio  life"])
    assert made["slug"] == "spring-opening-hours" and made["status"] == "draft" and made["version"] == 1
    assert made["blocks"] == blocks and made["tags"] == ["news", "studio life"]
    assert made["live"] is False and made["publish_at"] is None
    handle = (await ok(app, owner, "get_workspace"))["handle"]
    assert handle and made["url"].endswith(f"/public/{handle}/posts/spring-opening-hours")

    base = {"title": "T"}
    for bad in (
        {"blocks": [{"type": "video", "url": "https://x.example"}]},
        {"blocks": [{"type": "heading", "text": "H", "level": 1}]},
        {"blocks": [{"type": "paragraph", "text": ""}]},
        {"blocks": [{"type": "paragraph", "text": "x" * 10_001}]},
        {"blocks": [{"type": "paragraph", "text": "p"}] * 201},
        {"blocks": [{"type": "image", "url": "http://insecure.example/a.jpg"}]},
        {"blocks": [{"type": "paragraph", "text": "p", "extra": 1}]},
        {"blocks": [{"type": "booking_button", "label": "Book", "service_id": "svc_missing"}]},
        {"slug": "Not A Slug"},
        {"cover_image_url": "ftp://x.example/a.png"},
        {"tags": ["ok"] * 21},
        {"title": ""},
    ):
        refused = await call(app, owner.key, "create_post", {**base, **bad})
        assert error_code(refused) == "validation_failed", (bad, refused.data)
    archived = await service(app, owner)
    await ok(app, owner, "archive_service", {"service_id": archived})
    button = [{"type": "booking_button", "label": "Book", "service_id": archived}]
    refused = await call(app, owner.key, "create_post", {**base, "blocks": button})
    assert error_code(refused) == "validation_failed", "an archived service takes no bookings"
    assert refused.data["error"]["field_errors"][0]["field"] == "blocks.0.service_id"
    other = await signup(app)
    theirs = await service(app, other)
    refused = await call(app, owner.key, "create_post", {**base, "blocks": [{**button[0], "service_id": theirs}]})
    assert error_code(refused) == "validation_failed", "another workspace's service"

    got = await ok(app, owner, "get_post", {"post_id": made["id"]})
    assert got == made
    assert await ok(app, owner, "get_post", {"slug": made["slug"]}) == made
    assert error_code(await call(app, owner.key, "get_post", {"post_id": "pst_missing"})) == "not_found"
    assert error_code(await call(app, other.key, "get_post", {"post_id": made["id"]})) == "not_found"
    assert error_code(await call(app, owner.key, "get_post", {})) == "validation_failed"

    second = await draft(app, owner, "Summer prices", tags=["prices"])
    await ok(app, owner, "publish_post", {"post_id": second["id"]})
    listed = await ok(app, owner, "list_posts", {"limit": 1})
    assert [p["id"] for p in listed["items"]] == [second["id"]] and listed["has_more"]
    assert "blocks" not in listed["items"][0]
    rest = await ok(app, owner, "list_posts", {"limit": 1, "cursor": listed["next_cursor"]})
    assert [p["id"] for p in rest["items"]] == [made["id"]] and not rest["has_more"]
    assert [p["id"] for p in (await ok(app, owner, "list_posts", {"tag": "News"}))["items"]] == [made["id"]]
    assert [p["id"] for p in (await ok(app, owner, "list_posts", {"status": "published"}))["items"]] == [second["id"]]
    assert (await ok(app, other, "list_posts"))["items"] == []

    updated = await ok(
        app,
        owner,
        "update_post",
        {"post_id": made["id"], "title": "Spring hours", "excerpt": "From May", "blocks": blocks[:1], "tags": []},
    )
    assert updated["title"] == "Spring hours" and updated["blocks"] == blocks[:1] and updated["version"] == 2
    assert updated["slug"] == "spring-opening-hours", "the slug stays unless given"
    same = await ok(app, owner, "update_post", {"post_id": made["id"], "title": "Spring hours"})
    assert same["version"] == 2, "no change, no new version"
    cleared = await ok(app, owner, "update_post", {"post_id": made["id"], "excerpt": None})
    assert cleared["excerpt"] is None and cleared["version"] == 3
    for bad in ({"title": None}, {"slug": None}, {"blocks": [{"type": "quote"}]}, {"slug": "UPPER"}):
        refused = await call(app, owner.key, "update_post", {"post_id": made["id"], **bad})
        assert error_code(refused) == "validation_failed", bad
    refused = await call(app, owner.key, "update_post", {"post_id": made["id"], "blocks": button})
    assert error_code(refused) == "validation_failed"
    assert (await ok(app, owner, "get_post", {"post_id": made["id"]}))["version"] == 3, "bad input changes nothing"

    # A live post's slug stays unique; a draft may share one while it is written.
    shared = await ok(app, owner, "update_post", {"post_id": made["id"], "slug": "summer-prices"})
    assert shared["slug"] == "summer-prices"
    await ok(app, owner, "update_post", {"post_id": made["id"], "slug": "spring"})
    await ok(app, owner, "publish_post", {"post_id": made["id"]})
    clash = await call(app, owner.key, "update_post", {"post_id": made["id"], "slug": "summer-prices"})
    assert error_code(clash) == "conflict"
    assert clash.data["error"]["details"]["existing_post_id"] == second["id"]


async def test_states_and_refusals(app: App, owner: Owner, clock: FakeClock) -> None:
    post = await draft(app, owner)
    pid = {"post_id": post["id"]}
    refused = await call(app, owner.key, "unpublish_post", pid)
    assert error_code(refused) == "invalid_state"
    details = refused.data["error"]["details"]
    assert details["current"] == "draft" and sorted(details["allowed"]) == ["published", "scheduled"]
    past = await call(app, owner.key, "publish_post", {**pid, "publish_at": stamp(clock, minutes=-1)})
    assert error_code(past) == "validation_failed"

    scheduled = await ok(app, owner, "publish_post", {**pid, "publish_at": stamp(clock, days=1)})
    assert scheduled["status"] == "scheduled" and not scheduled["live"] and scheduled["version"] == 2
    moved = await ok(app, owner, "publish_post", {**pid, "publish_at": stamp(clock, days=2)})
    assert moved["status"] == "scheduled" and moved["publish_at"] > scheduled["publish_at"]
    back = await ok(app, owner, "unpublish_post", pid)
    assert back["status"] == "draft" and back["publish_at"] is None, "a schedule not yet live goes back to draft"

    published = await ok(app, owner, "publish_post", pid)
    assert published["status"] == "published" and published["live"]
    again = await ok(app, owner, "publish_post", pid)
    assert again == published, "publishing what is published changes nothing"
    refused = await call(app, owner.key, "publish_post", {**pid, "publish_at": stamp(clock, days=1)})
    assert error_code(refused) == "invalid_state"
    assert refused.data["error"]["details"]["allowed"] == ["unpublished"]
    down = await ok(app, owner, "unpublish_post", pid)
    assert down["status"] == "unpublished" and not down["live"]
    assert await ok(app, owner, "unpublish_post", pid) == down
    rescheduled = await ok(app, owner, "publish_post", {**pid, "publish_at": stamp(clock, hours=1)})
    assert rescheduled["status"] == "scheduled"

    # Scheduled and its time passed: live at once, before any job; unpublishing takes it down.
    clock.advance(hours=2)
    seen = await ok(app, owner, "get_post", pid)
    assert seen["status"] == "scheduled" and seen["live"]
    gone = await ok(app, owner, "unpublish_post", pid)
    assert gone["status"] == "unpublished"
    async with app.db.transaction() as session:
        stmt = select(Post).where(col(Post.id) == post["id"])
        assert (await session.execute(stmt)).scalar_one().status == "unpublished"


async def test_concurrent_publishes_of_one_slug_one_wins(app: App, owner: Owner) -> None:
    drafts = await asyncio.gather(*[draft(app, owner, "Same title") for _ in range(N)])
    assert {d["slug"] for d in drafts} == {"same-title"}, "drafts may share a slug"
    outs = await asyncio.gather(*[call(app, owner.key, "publish_post", {"post_id": d["id"]}) for d in drafts])
    winners = [o for o in outs if o.ok]
    assert len(winners) == 1, [o.data for o in outs]
    winner = winners[0].data["id"]
    for lost in (o for o in outs if not o.ok):
        assert error_code(lost) == "conflict", lost.data
        assert lost.data["error"]["details"]["existing_post_id"] == winner
    live = await ok(app, owner, "list_posts", {"status": "published"})
    assert [p["id"] for p in live["items"]] == [winner]
    drafts_left = await ok(app, owner, "list_posts", {"status": "draft", "limit": 100})
    assert len(drafts_left["items"]) == N - 1, "the losers stay drafts"


async def test_a_scheduled_post_goes_live_by_the_clock_and_the_job_books_it(
    app: App, owner: Owner, clock: FakeClock
) -> None:
    handle = (await ok(app, owner, "get_workspace"))["handle"]
    post = await draft(app, owner, "Soon")
    await ok(app, owner, "publish_post", {"post_id": post["id"], "publish_at": stamp(clock, minutes=30)})
    job = Scheduler(app.runner, [j for j in app.runner.platform.jobs if j.name == "publish_scheduled"])
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        before = await http.get(f"/public/{handle}/posts")
        assert before.status_code == 200 and before.json()["items"] == []
        assert (await http.get(f"/public/{handle}/posts/soon")).status_code == 404
        await job.run_due()
        assert (await ok(app, owner, "get_post", {"post_id": post["id"]}))["status"] == "scheduled"

        clock.advance(minutes=31)
        after = await http.get(f"/public/{handle}/posts", headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200, "a post going live changes the list's ETag before the job runs"
        assert [p["slug"] for p in after.json()["items"]] == ["soon"]
        assert (await http.get(f"/public/{handle}/posts/soon")).status_code == 200
        clock.advance(minutes=10)
        await job.run_due()
        seen = await ok(app, owner, "get_post", {"post_id": post["id"]})
        assert seen["status"] == "published" and seen["live"] and seen["version"] == 2, "bookkeeping only"


async def test_the_public_api_over_http(app: App, owner: Owner) -> None:
    other = await signup(app, name="Other Studio")
    ws = await ok(app, owner, "get_workspace")
    handle = ws["handle"]
    assert handle.startswith("studio-") and len(handle) == len("studio-") + 6
    theirs_handle = (await ok(app, other, "get_workspace"))["handle"]
    assert theirs_handle != handle

    shown = await draft(app, owner, "Shown", tags=["news"], blocks=[{"type": "paragraph", "text": "Hello"}])
    await ok(app, owner, "publish_post", {"post_id": shown["id"]})
    older = await draft(app, owner, "Older")
    await ok(app, owner, "publish_post", {"post_id": older["id"]})
    await draft(app, owner, "Hidden draft")
    down = await draft(app, owner, "Taken down")
    await ok(app, owner, "publish_post", {"post_id": down["id"]})
    await ok(app, owner, "unpublish_post", {"post_id": down["id"]})
    theirs = await draft(app, other, "Theirs")
    await ok(app, other, "publish_post", {"post_id": theirs["id"]})

    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        listed = await http.get(f"/public/{handle}/posts")
        assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == "*"
        assert listed.headers["cache-control"] == "public, max-age=60"
        assert {p["slug"] for p in listed.json()["items"]} == {"shown", "older"}
        assert all("blocks" not in p for p in listed.json()["items"])
        page = await http.get(f"/public/{handle}/posts", params={"limit": 1})
        assert page.json()["has_more"] and len(page.json()["items"]) == 1
        rest = await http.get(f"/public/{handle}/posts", params={"limit": 1, "cursor": page.json()["next_cursor"]})
        both = page.json()["items"] + rest.json()["items"]
        assert {p["slug"] for p in both} == {"shown", "older"} and not rest.json()["has_more"]
        tagged = await http.get(f"/public/{handle}/posts", params={"tag": "news"})
        assert [p["slug"] for p in tagged.json()["items"]] == ["shown"]

        one = await http.get(f"/public/{handle}/posts/shown")
        assert one.status_code == 200 and one.json()["blocks"] == [{"type": "paragraph", "text": "Hello"}]
        assert one.headers["access-control-allow-origin"] == "*"
        for missing in (
            f"/public/{handle}/posts/hidden-draft",
            f"/public/{handle}/posts/taken-down",
            f"/public/{handle}/posts/theirs",
            f"/public/{handle}/posts/nope",
            "/public/no-such-handle/posts",
            "/public/no-such-handle/posts/shown",
        ):
            gone = await http.get(missing)
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found", missing
        assert [p["slug"] for p in (await http.get(f"/public/{theirs_handle}/posts")).json()["items"]] == ["theirs"]
        assert (await http.get(f"/public/{handle}/posts", params={"limit": "0"})).status_code == 400
        for cursor, status in (
            ("garbage", 400),
            (encode_cursor({"id": "x"}), 400),
            (encode_cursor({"at": "2020-01-01", "id": "x"}), 200),
        ):
            assert (await http.get(f"/public/{handle}/posts", params={"cursor": cursor})).status_code == status
        assert (await http.get(f"/public/{handle}/posts", params={"tag": "50%"})).status_code == 400

        preflight = await http.options(
            f"/public/{handle}/posts",
            headers={"Origin": "https://site.example", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == "*"
        assert "GET" in preflight.headers["access-control-allow-methods"]

        # ETag round trip: 304 while nothing changed, a new ETag after an update.
        tag = one.headers["etag"]
        not_modified = await http.get(f"/public/{handle}/posts/shown", headers={"If-None-Match": tag})
        assert not_modified.status_code == 304 and not_modified.headers["etag"] == tag
        list_tag = listed.headers["etag"]
        assert (await http.get(f"/public/{handle}/posts", headers={"If-None-Match": list_tag})).status_code == 304
        await ok(app, owner, "update_post", {"post_id": shown["id"], "title": "Shown again"})
        changed = await http.get(f"/public/{handle}/posts/shown", headers={"If-None-Match": tag})
        assert changed.status_code == 200 and changed.headers["etag"] != tag
        assert changed.json()["title"] == "Shown again"
        relisted = await http.get(f"/public/{handle}/posts", headers={"If-None-Match": list_tag})
        assert relisted.status_code == 200 and relisted.headers["etag"] != list_tag

        # A new handle: the new URLs work, the old ones stop; a handle in use is refused.
        renamed = await ok(app, owner, "update_workspace", {"handle": "my-studio-" + handle[-6:]})
        assert renamed["handle"] == "my-studio-" + handle[-6:]
        assert (await http.get(f"/public/{handle}/posts")).status_code == 404
        assert (await http.get(f"/public/{renamed['handle']}/posts/shown")).status_code == 200
        taken = await call(app, owner.key, "update_workspace", {"handle": theirs_handle})
        assert error_code(taken) == "conflict" and theirs_handle not in str(taken.data["error"].get("details"))
        for bad in ("ab", "-abc", "abc-", "Has Caps", "a" * 61):
            assert error_code(await call(app, owner.key, "update_workspace", {"handle": bad})) == "validation_failed"
        assert error_code(await call(app, owner.key, "update_workspace", {"handle": None})) == "validation_failed"
        assert (await ok(app, owner, "get_workspace"))["handle"] == renamed["handle"]


async def test_concurrent_handle_claims_one_wins(app: App) -> None:
    owners = await asyncio.gather(*[signup(app) for _ in range(6)])
    outs = await asyncio.gather(*[call(app, o.key, "update_workspace", {"handle": "the-one-handle"}) for o in owners])
    assert len([o for o in outs if o.ok]) == 1, [o.data for o in outs]
    assert all(error_code(o) == "conflict" for o in outs if not o.ok)


async def test_delete_through_the_confirm_gate(app: App, owner: Owner) -> None:
    post = await draft(app, owner, "To delete")
    await ok(app, owner, "publish_post", {"post_id": post["id"]})
    preview = await call(app, owner.key, "delete_post", {"post_id": post["id"]})
    assert error_code(preview) == "confirmation_required"
    assert "public URL stops working" in preview.data["error"]["details"]["preview"]["summary"]
    assert (await ok(app, owner, "get_post", {"post_id": post["id"]}))["id"] == post["id"], "a preview deletes nothing"
    done = await confirmed(app, owner.key, "delete_post", {"post_id": post["id"]})
    assert done.ok and done.data == {"post_id": post["id"], "slug": "to-delete"}
    assert error_code(await call(app, owner.key, "get_post", {"post_id": post["id"]})) == "not_found"
    assert error_code(await call(app, owner.key, "delete_post", {"post_id": post["id"]})) == "not_found"
