"""The public read API of posts: what a website's front end renders, without a key.

GET /public/{handle}/posts (live posts, newest publish time first; ?tag=, ?limit=, ?cursor=) and
GET /public/{handle}/posts/{slug}. Only live posts (published, or scheduled with the time passed, judged at read
time) of the workspace the handle names; anything else is a 404. Every answer allows any origin (CORS), may be
cached for a minute, and carries an ETag made of the ids, versions and publish times it shows: If-None-Match
answers 304. A changed handle retires the old URLs.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import col

from favmcp.core.clock import utc
from favmcp.core.errors import FavError
from favmcp.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from favmcp.domains.content import service
from favmcp.domains.content.models import Post
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import HttpEndpoint

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from favmcp.registry.runner import Runner

LIST_PATH = "/public/{handle}/posts"
POST_PATH = "/public/{handle}/posts/{slug}"
NAME = "public:posts"
HANDLE = re.compile(r"^[a-z0-9][a-z0-9-]{1,58}[a-z0-9]$")
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
TAG = re.compile(r"^[a-z0-9][a-z0-9 -]{0,39}$")
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, OPTIONS",
    "Access-Control-Allow-Headers": "If-None-Match",
    "Access-Control-Expose-Headers": "ETag",
}
CACHE = {"Cache-Control": "public, max-age=60"}


class BadRequest(Exception):
    pass


def _stamp(moment: datetime | None) -> str | None:
    return utc(moment).isoformat() if moment is not None else None


def _item(ctx: ToolContext, handle: str, post: Post, *, blocks: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "slug": post.slug,
        "title": post.title,
        "excerpt": post.excerpt,
        "tags": post.tags,
        "cover_image_url": post.cover_image_url,
        "published_at": _stamp(post.publish_at),
        "updated_at": _stamp(post.updated_at),
        "url": service.post_url(ctx, handle, post.slug),
    }
    if blocks:
        item["blocks"] = post.blocks
    return item


def etag(posts: list[Post], extra: str = "") -> str:
    parts = [f"{p.id}:{p.version}:{_stamp(p.publish_at)}" for p in posts]
    digest = hashlib.sha256("|".join([*parts, extra]).encode()).hexdigest()[:32]
    return f'W/"{digest}"'


def _matches(header: str | None, tag: str) -> bool:
    if not header:
        return False
    wanted = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in wanted or tag.removeprefix("W/") in wanted


async def _workspace_of(runner: Runner, handle: str) -> str | None:
    """The workspace the handle names: one indexed read, before any workspace-bound access."""
    if not HANDLE.match(handle):
        return None
    row = await runner.db.fetch_row("SELECT id FROM workspaces WHERE handle = $1", handle)
    return str(row[0]) if row is not None else None


def _query(request: Request) -> tuple[str | None, int, dict[str, Any] | None]:
    q = request.query_params
    tag = q.get("tag")
    if tag is not None:
        tag = " ".join(tag.lower().split())
        if not TAG.match(tag):
            raise BadRequest("tag: letters, digits, spaces or dashes, at most 40")
    try:
        limit = int(q.get("limit", DEFAULT_LIMIT))
    except ValueError:
        raise BadRequest(f"limit: a number from 1 to {MAX_LIMIT}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit: a number from 1 to {MAX_LIMIT}")
    cursor = None
    if q.get("cursor"):
        try:
            cursor = decode_cursor(q["cursor"][:500])
            cursor["at"] = utc(datetime.fromisoformat(cursor["at"]))
            str(cursor["id"])
        except (FavError, KeyError, ValueError, TypeError):
            raise BadRequest("cursor: pass next_cursor of a previous page unchanged") from None
    return tag, limit, cursor


async def list_posts(request: Request, runner: Runner) -> Response:
    handle = str(request.path_params.get("handle", ""))
    try:
        tag, limit, cursor = _query(request)
    except BadRequest as exc:
        return _error(400, "bad_request", str(exc))
    workspace_id = await _workspace_of(runner, handle)
    if workspace_id is None:
        return _error(404, "not_found", "No such site.")

    async def read(ctx: ToolContext) -> tuple[dict[str, Any], str]:
        db = ctx.db
        stmt = db.select(Post, *service.live_clauses(ctx.now))
        if tag is not None:
            stmt = stmt.where(service.has_tag(tag))
        if cursor is not None:
            stmt = stmt.where(service.before(cursor["at"], str(cursor["id"])))
        stmt = stmt.order_by(col(Post.publish_at).desc(), col(Post.id).desc()).limit(limit + 1)
        posts = await db.all(stmt)
        more = len(posts) > limit
        posts = posts[:limit]
        last = posts[-1] if more else None
        next_cursor = (
            encode_cursor({"at": _stamp(last.publish_at), "id": last.id})
            if last is not None and last.publish_at is not None
            else None
        )
        body = {
            "items": [_item(ctx, handle, p, blocks=False) for p in posts],
            "next_cursor": next_cursor,
            "has_more": more,
        }
        return body, etag(posts, f"{handle}|{tag}|{limit}|{next_cursor}")

    body, tag_value = await runner.read_system(workspace_id, NAME, read)
    return _answer(request, body, tag_value)


async def get_post(request: Request, runner: Runner) -> Response:
    handle = str(request.path_params.get("handle", ""))
    slug = str(request.path_params.get("slug", ""))
    workspace_id = await _workspace_of(runner, handle) if SLUG.match(slug) and len(slug) <= 120 else None
    if workspace_id is None:
        return _error(404, "not_found", "No such post.")

    async def read(ctx: ToolContext) -> tuple[dict[str, Any], str] | None:
        stmt = ctx.db.select(Post, col(Post.slug) == slug, *service.live_clauses(ctx.now))
        post = await ctx.db.first(stmt)
        if post is None:
            return None
        return _item(ctx, handle, post, blocks=True), etag([post], handle)

    found = await runner.read_system(workspace_id, NAME, read)
    if found is None:
        return _error(404, "not_found", "No such post.")
    return _answer(request, *found)


async def preflight(request: Request, runner: Runner) -> Response:
    from starlette.responses import Response

    return Response(status_code=204, headers={**CORS, "Access-Control-Max-Age": "86400"})


def _answer(request: Request, body: dict[str, Any], tag: str) -> Response:
    from starlette.responses import JSONResponse, Response

    headers = {**CORS, **CACHE, "ETag": tag}
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(body, headers=headers)


def _error(status: int, code: str, message: str) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=CORS)


ROUTES: dict[str, HttpEndpoint] = {
    f"GET {LIST_PATH}": list_posts,
    f"OPTIONS {LIST_PATH}": preflight,
    f"GET {POST_PATH}": get_post,
    f"OPTIONS {POST_PATH}": preflight,
}
