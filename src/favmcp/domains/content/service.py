"""Posts: loading, showing, the live rule and the slug rule shared by the tools, the job and the public API."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, or_
from sqlmodel import col

from favmcp.core.clock import utc
from favmcp.core.errors import FieldError, conflict, not_found, validation_failed
from favmcp.domains.content.models import Post, PostStatus
from favmcp.domains.content.schemas import BookingButton, PostPublic, PostSummary
from favmcp.domains.services.models import Service, ServiceStatus
from favmcp.registry.context import ToolContext

FIND = "Use list_posts to find the post."
LIVE_STATES = (PostStatus.scheduled, PostStatus.published)
PUBLIC_PATH = "/public/{handle}/posts"


def slugify(text: str, max_length: int = 80) -> str:
    """Lower-case ASCII letters and digits joined by single dashes ('' when nothing is left)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower())[:max_length].strip("-")


def is_live(post: Post, now: datetime) -> bool:
    return post.status in LIVE_STATES and post.publish_at is not None and utc(post.publish_at) <= now


def live_clauses(now: datetime) -> list[Any]:
    """What the public sees: published or scheduled, with the publish time passed."""
    return [col(Post.status).in_(LIVE_STATES), col(Post.publish_at) <= now]


def has_tag(tag: str) -> Any:
    """Tags are lower-case ASCII (see schemas.Tag), stored as a JSON list: a quoted element matches exactly."""
    return cast(col(Post.tags), String).like(f'%"{tag}"%')


def post_url(ctx: ToolContext, handle: str | None, slug: str) -> str | None:
    if not handle:
        return None
    return (ctx.settings.public_url or "") + PUBLIC_PATH.format(handle=handle) + f"/{slug}"


async def summaries(ctx: ToolContext, posts: Sequence[Post]) -> list[PostSummary]:
    handle = (await ctx.db.workspace()).handle
    return [
        PostSummary.model_validate(
            {**p.model_dump(), "live": is_live(p, ctx.now), "url": post_url(ctx, handle, p.slug)}
        )
        for p in posts
    ]


async def public(ctx: ToolContext, post: Post) -> PostPublic:
    summary = (await summaries(ctx, [post]))[0]
    return PostPublic(**summary.model_dump(), blocks=post.blocks)


async def load(ctx: ToolContext, post_id: str, *, lock: bool = False) -> Post:
    post = await ctx.db.get(Post, post_id, lock=lock)
    if post is None:
        raise not_found("post", post_id, hint=FIND)
    return post


async def by_slug(ctx: ToolContext, slug: str) -> Post:
    """The live-or-scheduled post holding the slug, else the newest post with it."""
    stmt = ctx.db.select(Post, col(Post.slug) == slug).order_by(
        col(Post.status).in_(LIVE_STATES).desc(), col(Post.id).desc()
    )
    post = await ctx.db.first(stmt)
    if post is None:
        raise not_found("post", slug, hint=FIND)
    return post


async def check_services(ctx: ToolContext, blocks: Sequence[Any]) -> None:
    """A booking button names an active service of this workspace."""
    wanted = {b.service_id for b in blocks if isinstance(b, BookingButton)}
    if not wanted:
        return
    db = ctx.db.unfiltered
    found = {
        s.id
        for s in await db.all(
            db.select(Service, col(Service.id).in_(wanted), col(Service.status) == ServiceStatus.active)
        )
    }
    bad = [i for i, b in enumerate(blocks) if isinstance(b, BookingButton) and b.service_id not in found]
    if bad:
        raise validation_failed(
            "A booking button names no active service of this workspace.",
            [FieldError(field=f"blocks.{i}.service_id", message="an active service (list_services)") for i in bad],
        )


def dump_blocks(blocks: Sequence[Any]) -> list[dict[str, Any]]:
    return [b.model_dump(mode="json", exclude_none=True) for b in blocks]


def unique_tags(tags: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(tags))


async def live_holder(ctx: ToolContext, slug: str, post_id: str) -> Post | None:
    """Another scheduled or published post of this workspace holding `slug`."""
    db = ctx.db.unfiltered
    stmt = db.select(Post, col(Post.slug) == slug, col(Post.status).in_(LIVE_STATES), col(Post.id) != post_id)
    return await db.first(stmt)


def slug_taken(slug: str, holder: Post) -> Exception:
    return conflict(
        f"The slug {slug!r} is held by the {holder.status.value} post {holder.id}.",
        hint="Choose another slug (update_post), or unpublish_post the other post first.",
        details={"reason": "slug_taken", "field": "slug", "existing_post_id": holder.id},
    )


async def ensure_slug_free(ctx: ToolContext, slug: str, post_id: str) -> None:
    holder = await live_holder(ctx, slug, post_id)
    if holder is not None:
        raise slug_taken(slug, holder)


def page_filter(status: PostStatus | None, tag: str | None) -> list[Any]:
    where: list[Any] = []
    if status is not None:
        where.append(col(Post.status) == status)
    if tag is not None:
        where.append(has_tag(tag))
    return where


def before(publish_at: datetime, post_id: str) -> Any:
    """Keyset position of the public list (newest publish time first, then id)."""
    return or_(col(Post.publish_at) < publish_at, (col(Post.publish_at) == publish_at) & (col(Post.id) < post_id))
