"""Content: posts in typed blocks for a headless blog, and the public read API front ends render."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from favmcp.core.clock import utc
from favmcp.core.errors import FieldError, validation_failed
from favmcp.core.ids import new_id
from favmcp.domains.content import public as public_api
from favmcp.domains.content import service
from favmcp.domains.content.lifecycle import POST_LIFECYCLE
from favmcp.domains.content.models import Post, PostStatus
from favmcp.domains.content.schemas import (
    CreatePostInput,
    DeletePostInput,
    GetPostInput,
    ListPostsInput,
    PostDeleted,
    PostIdInput,
    PostPage,
    PostPreview,
    PostPublic,
    PublishPostInput,
    UpdatePostInput,
)
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain, Job
from favmcp.registry.spec import tool

DOMAIN_NAME = "content"


@tool(domain=DOMAIN_NAME, title="Create post", hints="W", scope="content:write", route="POST /v1/posts")
async def create_post(ctx: ToolContext, args: CreatePostInput) -> PostPublic:
    """Create a draft post of typed blocks (a booking_button names an active service); the slug defaults to
    one made from the title. Then publish_post."""
    slug = args.slug or service.slugify(args.title) or "post"
    await service.check_services(ctx, args.blocks)
    post = ctx.db.add(
        Post(
            id=new_id("pst"),
            workspace_id=ctx.workspace_id,
            slug=slug,
            title=args.title,
            excerpt=args.excerpt,
            blocks=service.dump_blocks(args.blocks),
            tags=service.unique_tags(args.tags),
            cover_image_url=args.cover_image_url,
            author_user_id=ctx.caller.user_id,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
    )
    await ctx.db.flush()
    ctx.record_change(post_id=post.id)
    return await service.public(ctx, post)


@tool(domain=DOMAIN_NAME, title="Get post", hints="R I", scope="content:read")
async def get_post(ctx: ToolContext, args: GetPostInput) -> PostPublic:
    """One post by post_id or slug, with its blocks, status, whether it is live now and its public URL."""
    post = await (service.load(ctx, args.post_id) if args.post_id else service.by_slug(ctx, args.slug or ""))
    return await service.public(ctx, post)


@tool(domain=DOMAIN_NAME, title="List posts", hints="R I", scope="content:read", route="GET /v1/posts")
async def list_posts(ctx: ToolContext, args: ListPostsInput) -> PostPage:
    """Posts newest first, by status and tag, without their blocks (get_post has them)."""
    stmt = ctx.db.select(Post, *service.page_filter(args.status, args.tag))
    rows, cursor = await ctx.db.page(stmt, col(Post.id), args)
    return PostPage(items=await service.summaries(ctx, rows), next_cursor=cursor, has_more=cursor is not None)


@tool(domain=DOMAIN_NAME, title="Update post", hints="W I", scope="content:write", route="PATCH /v1/posts/{post_id}")
async def update_post(ctx: ToolContext, args: UpdatePostInput) -> PostPublic:
    """Change a post's fields or replace its blocks: fields left out stay, null clears. A live post's new slug
    must be free (its old URL stops working)."""
    post = await service.load(ctx, args.post_id, lock=True)
    fields = args.model_dump(exclude_unset=True, exclude={"idempotency_key", "post_id", "blocks", "tags"})
    if args.blocks is not None:
        await service.check_services(ctx, args.blocks)
        fields["blocks"] = service.dump_blocks(args.blocks)
    if args.tags is not None:
        fields["tags"] = service.unique_tags(args.tags)
    changed = {k: v for k, v in fields.items() if getattr(post, k) != v}
    if not changed:
        return await service.public(ctx, post)
    live_slug = "slug" in changed and post.status in service.LIVE_STATES
    if live_slug:
        await service.ensure_slug_free(ctx, changed["slug"], post.id)
    try:
        async with ctx.db.savepoint():
            await ctx.db.update(
                Post,
                col(Post.id) == post.id,
                values={**changed, "version": col(Post.version) + 1, "updated_at": ctx.now},
            )
    except IntegrityError:
        holder = await service.live_holder(ctx, changed["slug"], post.id) if live_slug else None
        if holder is None:
            raise
        raise service.slug_taken(changed["slug"], holder) from None
    post = await ctx.db.get(Post, post.id, fresh=True) or post
    ctx.record_change(post_id=post.id, fields=sorted(changed))
    return await service.public(ctx, post)


@tool(
    domain=DOMAIN_NAME,
    title="Publish post",
    hints="W I",
    scope="content:write",
    route="POST /v1/posts/{post_id}/publish",
)
async def publish_post(ctx: ToolContext, args: PublishPostInput) -> PostPublic:
    """Publish a post now, or schedule it for a future publish_at (live from then). Its slug must be free among
    live and scheduled posts. Publishing a published post changes nothing."""
    post = await service.load(ctx, args.post_id, lock=True)
    if args.publish_at is not None and args.publish_at <= ctx.now:
        raise validation_failed(
            "publish_at is not in the future; leave it out to publish now.",
            [FieldError(field="publish_at", message="a future time")],
        )
    if args.publish_at is None and post.status == PostStatus.published:
        return await service.public(ctx, post)
    if args.publish_at is not None:
        target, when = PostStatus.scheduled, args.publish_at
    else:
        target = PostStatus.published
        passed = post.status == PostStatus.scheduled and service.is_live(post, ctx.now)
        when = utc(post.publish_at) if passed and post.publish_at else ctx.now
    if post.status not in service.LIVE_STATES:
        await service.ensure_slug_free(ctx, post.slug, post.id)
    values = {"publish_at": when, "unpublished_at": None, "version": col(Post.version) + 1, "updated_at": ctx.now}
    try:
        async with ctx.db.savepoint():
            moved = await ctx.transition(POST_LIFECYCLE, Post, post.id, target, values=values)
            if not moved:  # scheduled again: a new time
                await ctx.db.update(Post, col(Post.id) == post.id, values=values)
    except IntegrityError:
        holder = await service.live_holder(ctx, post.slug, post.id)
        if holder is None:
            raise
        raise service.slug_taken(post.slug, holder) from None
    post = await ctx.db.get(Post, post.id, fresh=True) or post
    ctx.record_change(post_id=post.id, status=target.value)
    return await service.public(ctx, post)


@tool(
    domain=DOMAIN_NAME,
    title="Unpublish post",
    hints="D I",
    scope="content:write",
    route="POST /v1/posts/{post_id}/unpublish",
)
async def unpublish_post(ctx: ToolContext, args: PostIdInput) -> PostPublic:
    """Take a post down from the public API: published (or scheduled and already live) becomes unpublished; a
    scheduled post not yet live goes back to draft. publish_post brings it back."""
    post = await service.load(ctx, args.post_id, lock=True)
    if post.status == PostStatus.unpublished:
        return await service.public(ctx, post)
    values = {"version": col(Post.version) + 1, "updated_at": ctx.now}
    if post.status == PostStatus.scheduled and not service.is_live(post, ctx.now):
        await ctx.transition(POST_LIFECYCLE, Post, post.id, PostStatus.draft, values={**values, "publish_at": None})
    else:
        if post.status == PostStatus.scheduled:  # its time has passed: it went live, then comes down
            await ctx.transition(POST_LIFECYCLE, Post, post.id, PostStatus.published)
        await ctx.transition(
            POST_LIFECYCLE, Post, post.id, PostStatus.unpublished, values={**values, "unpublished_at": ctx.now}
        )
    post = await ctx.db.get(Post, post.id, fresh=True) or post
    ctx.record_change(post_id=post.id, status=post.status.value)
    return await service.public(ctx, post)


async def _preview_delete(ctx: ToolContext, args: DeletePostInput) -> PostPreview:
    post = await service.load(ctx, args.post_id)
    gone = " Its public URL stops working." if service.is_live(post, ctx.now) else ""
    return PostPreview(
        summary=f"Delete the {post.status.value} post {post.title!r} ({post.slug}) for good.{gone}", post_id=post.id
    )


@tool(
    domain=DOMAIN_NAME,
    title="Delete post",
    hints="D I",
    scope="content:admin",
    gate="confirm",
    preview=_preview_delete,
    route="DELETE /v1/posts/{post_id}",
)
async def delete_post(ctx: ToolContext, args: DeletePostInput) -> PostDeleted:
    """Delete a post for good (unpublish_post only takes it down)."""
    post = await service.load(ctx, args.post_id, lock=True)
    await ctx.db.delete(Post, col(Post.id) == post.id)
    ctx.record_change(post_id=post.id)
    return PostDeleted(post_id=post.id, slug=post.slug)


async def publish_scheduled(ctx: ToolContext) -> None:
    """Bookkeeping: scheduled posts whose time has passed become published (reads already show them as live)."""
    stmt = ctx.db.select(Post, col(Post.status) == PostStatus.scheduled, col(Post.publish_at) <= ctx.now)
    for post in await ctx.db.all(stmt.order_by(col(Post.publish_at)).limit(500)):
        if await ctx.transition(POST_LIFECYCLE, Post, post.id, PostStatus.published):
            ctx.record_change(post_id=post.id, status=PostStatus.published.value)


DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[create_post, get_post, list_posts, update_post, publish_post, unpublish_post, delete_post],
    jobs=[Job("publish_scheduled", timedelta(minutes=5), publish_scheduled)],
    http_routes=public_api.ROUTES,
)
