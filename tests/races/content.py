"""Races of the content domain: posts created each once, updates each counted in the version, one slug live once
among twenty drafts, a post published, unpublished and deleted once."""

from __future__ import annotations

from sqlmodel import col

from favmcp.registry.models import StateTransition
from tests.race_kit import N, Outcome, Scenario, Stage, as_owner, changed_by, ok, oks, rows, tokens


async def setup_nothing(s: Stage) -> None:
    pass


async def check_created(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    ids = {o.result.data["id"] for o in outs}
    assert len(ids) == N and {o.result.data["slug"] for o in outs} == {"race"}, "drafts may share a slug"
    listed = await ok(s, "list_posts", {"limit": 100, "status": "draft"})
    assert {p["id"] for p in listed["items"]} == ids


async def setup_post(s: Stage) -> None:
    s.post = (await ok(s, "create_post", {"title": "Race"}))["id"]


async def setup_published(s: Stage) -> None:
    await setup_post(s)
    await ok(s, "publish_post", {"post_id": s.post})


async def _moves(s: Stage, to_state: str) -> int:
    found = await rows(s, StateTransition, col(StateTransition.entity_id) == s.post)
    return [m.to_state for m in found].count(to_state)


async def check_updated(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    post = await ok(s, "get_post", {"post_id": s.post})
    assert post["version"] == 1 + N, "every update counted once, none lost"
    assert post["title"] in {f"Title {i}" for i in range(N)}
    assert len({o.result.data["version"] for o in outs}) == N, "each update saw its own version"


async def setup_drafts(s: Stage) -> None:
    s.drafts = [(await ok(s, "create_post", {"title": "One slug"}))["id"] for _ in range(N)]


async def check_one_slug(s: Stage, outs: list[Outcome]) -> None:
    winners = oks(outs)
    assert len(winners) == 1, "one live post per slug"
    winner = winners[0].result.data["id"]
    assert all(o.details["existing_post_id"] == winner for o in outs if not o.ok)
    live = await ok(s, "list_posts", {"status": "published", "limit": 100})
    assert [p["id"] for p in live["items"]] == [winner]


async def check_published_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N and all(o.result.data["status"] == "published" for o in outs)
    assert await _moves(s, "published") == 1 and len(await changed_by(s, outs)) == 1
    assert (await ok(s, "get_post", {"post_id": s.post}))["version"] == 2


async def check_unpublished_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N and all(o.result.data["status"] == "unpublished" for o in outs)
    assert await _moves(s, "unpublished") == 1 and len(await changed_by(s, outs)) == 1


async def setup_deletes(s: Stage) -> None:
    await setup_post(s)
    s.tokens = await tokens(s, "delete_post", {"post_id": s.post}, N)


async def check_deleted_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 1, "deleted once; the others find nothing"
    assert (await ok(s, "list_posts", {"limit": 100}))["items"] == []


SCENARIOS: dict[str, Scenario] = {
    "create_post: twenty drafts of one title": Scenario(
        "create_post",
        setup_nothing,
        lambda s, i: as_owner(s, "create_post", {"title": "Race"}),
        check_created,
    ),
    "update_post: twenty updates of one post": Scenario(
        "update_post",
        setup_post,
        lambda s, i: as_owner(s, "update_post", {"post_id": s.post, "title": f"Title {i}"}),
        check_updated,
    ),
    "publish_post: twenty drafts of one slug published at once": Scenario(
        "publish_post",
        setup_drafts,
        lambda s, i: as_owner(s, "publish_post", {"post_id": s.drafts[i]}),
        check_one_slug,
        frozenset({"conflict"}),
    ),
    "publish_post: twenty publishes of one post": Scenario(
        "publish_post",
        setup_post,
        lambda s, i: as_owner(s, "publish_post", {"post_id": s.post}),
        check_published_once,
    ),
    "unpublish_post: twenty unpublishes": Scenario(
        "unpublish_post",
        setup_published,
        lambda s, i: as_owner(s, "unpublish_post", {"post_id": s.post}),
        check_unpublished_once,
    ),
    "delete_post: twenty confirmed deletes": Scenario(
        "delete_post",
        setup_deletes,
        lambda s, i: as_owner(s, "delete_post", {"post_id": s.post, "confirmation_token": s.tokens[i]}),
        check_deleted_once,
        frozenset({"not_found"}),
    ),
}
