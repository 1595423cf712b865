from __future__ import annotations

from sqlmodel import col

from favmcp.auth import keys
from favmcp.auth import scopes as scope_rules
from favmcp.auth.models import ApiKey, ApiKeyOrigin, User
from favmcp.core.errors import FieldError, forbidden, not_found, validation_failed
from favmcp.domains.access.schemas import (
    ApiKeyPage,
    ApiKeyPublic,
    CreateApiKeyInput,
    CreatedApiKey,
    KeyStatus,
    ListApiKeysInput,
    RevokeApiKeyInput,
    RevokeKeyPreview,
    Whoami,
    WhoamiInput,
)
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain
from favmcp.registry.profiles import PUBLISHABLE
from favmcp.registry.spec import tool

DOMAIN_NAME = "access"


async def _origins(ctx: ToolContext, key_ids: list[str]) -> dict[str, list[str]]:
    rows = await ctx.db.all(ctx.db.select(ApiKeyOrigin, col(ApiKeyOrigin.key_id).in_(key_ids)))
    found: dict[str, list[str]] = {}
    for row in sorted(rows, key=lambda r: r.origin):
        found.setdefault(row.key_id, []).append(row.origin)
    return found


def _public(key: ApiKey, ctx: ToolContext, origins: dict[str, list[str]]) -> ApiKeyPublic:
    if key.revoked_at is not None:
        status = KeyStatus.revoked
    elif key.expires_at is not None and key.expires_at <= ctx.now:
        status = KeyStatus.expired
    else:
        status = KeyStatus.active
    publishable = key.display_prefix.startswith(keys.PUBLISHABLE_PREFIX)
    return ApiKeyPublic.model_validate(
        {**key.model_dump(), "status": status, "allowed_origins": origins.get(key.id, []) if publishable else None}
    )


async def _one(key: ApiKey, ctx: ToolContext) -> ApiKeyPublic:
    return _public(key, ctx, await _origins(ctx, [key.id]))


@tool(domain=DOMAIN_NAME, title="Who am I", hints="R I", scope="public", route="GET /v1/whoami")
async def whoami(ctx: ToolContext, args: WhoamiInput) -> Whoami:
    """Who this credential is: workspace, user, role, effective scopes, key id and expiry; without a key it says
    so. Call it first to learn what you may do."""
    caller = ctx.caller
    if caller.anonymous:
        return Whoami(
            authenticated=False,
            message="No API key: only public tools work. Sign up with register_organisation_request.",
        )
    profile = ctx.registry.profile
    if profile is not None and profile.keys_only:
        # A publishable key is in every visitor's browser: it names its workspace, never the person who made it.
        return Whoami(
            authenticated=True,
            workspace_id=caller.workspace_id,
            workspace_name=caller.workspace_name,
            scopes=list(caller.scopes),
            key_id=caller.key_id,
            profile=profile.name,
            message=f"A publishable key of workspace {caller.workspace_id}.",
        )
    return Whoami(
        authenticated=True,
        workspace_id=caller.workspace_id,
        workspace_name=caller.workspace_name,
        user_id=caller.user_id,
        user_name=caller.user_name,
        role=caller.role,
        scopes=list(caller.scopes),
        key_id=caller.key_id,
        key_expires_at=caller.key_expires_at,
        profile=ctx.registry.profile.name if ctx.registry.profile else None,
        message=f"Authenticated as {caller.role} of workspace {caller.workspace_id}.",
    )


@tool(
    domain=DOMAIN_NAME,
    title="Create API key",
    hints="W",
    scope="access:admin",
    returns_secret=True,
    route="POST /v1/api-keys",
)
async def create_api_key(ctx: ToolContext, args: CreateApiKeyInput) -> CreatedApiKey:
    """Mint a fav_mcp_ API key for yourself, optionally bound to a tool profile (readonly, front_desk, marketing,
    finance, owner), or with publishable and allowed_origins a fav_pub_ key for a web page's booking form. The
    secret is in this answer only (stored as a hash, never shown again). Refuses scopes you do not hold and past
    expiry dates."""
    held = ctx.caller.scopes
    wanted = args.scopes if args.scopes is not None else list(held)
    if args.publishable:
        wanted = keys.PUBLISHABLE_SCOPES
    follow = args.scopes is None and ctx.caller.follows_role and not args.publishable
    beyond = [s for s in wanted if not scope_rules.grants(held, s)]
    if beyond:
        raise forbidden(f"You cannot grant scopes you do not hold: {', '.join(beyond)}.")
    if args.expires_at is not None and args.expires_at <= ctx.now:
        raise validation_failed(
            "The expiry is in the past.", [FieldError(field="expires_at", message="must be in the future")]
        )
    user = await ctx.db.get(User, ctx.caller.user_id or "")
    if user is None:
        raise not_found("user", ctx.caller.user_id or "")
    key, secret = keys.mint_api_key(
        ctx.db,
        user=user,
        name=args.name,
        scopes=None if follow else wanted,
        random=ctx.random,
        now=ctx.now,
        expires_at=args.expires_at,
        created_by=ctx.caller.user_id,
        profile=PUBLISHABLE if args.publishable else args.profile,
        origins=args.allowed_origins,
    )
    await ctx.db.flush()
    ctx.record_change(key_id=key.id, scopes=key.scopes, profile=key.profile, origins=args.allowed_origins)
    return CreatedApiKey(key=await _one(key, ctx), api_key=secret)


@tool(domain=DOMAIN_NAME, title="List API keys", hints="R I", scope="access:admin", route="GET /v1/api-keys")
async def list_api_keys(ctx: ToolContext, args: ListApiKeysInput) -> ApiKeyPage:
    """API keys of the workspace, newest first: id, name, owner, scopes, status, last use and expiry; never the
    secret."""
    stmt = ctx.db.select(ApiKey)
    if not args.include_revoked:
        stmt = stmt.where(col(ApiKey.revoked_at).is_(None))
    rows, cursor = await ctx.db.page(stmt, col(ApiKey.id), args)
    origins = await _origins(ctx, [k.id for k in rows])
    return ApiKeyPage(items=[_public(k, ctx, origins) for k in rows], next_cursor=cursor, has_more=cursor is not None)


async def _key(ctx: ToolContext, key_id: str) -> ApiKey:
    key = await ctx.db.get(ApiKey, key_id)
    if key is None:
        raise not_found("API key", key_id, hint="List keys with list_api_keys.")
    return key


async def _preview_revoke(ctx: ToolContext, args: RevokeApiKeyInput) -> RevokeKeyPreview:
    key = await _key(ctx, args.key_id)
    if key.revoked_at is not None:
        return RevokeKeyPreview(summary="The key is already revoked.", nothing_to_do=True, key=await _one(key, ctx))
    user = await ctx.db.get(User, key.user_id)
    own = " This is the key you are calling with." if key.id == ctx.caller.key_id else ""
    return RevokeKeyPreview(
        summary=f"Revoke API key {key.name!r} ({key.display_prefix}) of {user.name if user else key.user_id}; "
        f"every later call with it is refused.{own}",
        key=await _one(key, ctx),
    )


@tool(
    domain=DOMAIN_NAME,
    title="Revoke API key",
    hints="D I",
    scope="access:admin",
    gate="confirm",
    preview=_preview_revoke,
    route="DELETE /v1/api-keys/{key_id}",
)
async def revoke_api_key(ctx: ToolContext, args: RevokeApiKeyInput) -> ApiKeyPublic:
    """Revoke an API key at once: its next call is refused. An already revoked key succeeds at once, changing
    nothing."""
    key = await _key(ctx, args.key_id)
    if await ctx.db.update(
        ApiKey, col(ApiKey.id) == key.id, col(ApiKey.revoked_at).is_(None), values={"revoked_at": ctx.now}
    ):
        ctx.record_change(key_id=key.id)
    await ctx.db.refresh(key)
    return await _one(key, ctx)


DOMAIN = Domain(name=DOMAIN_NAME, tools=[whoami, create_api_key, list_api_keys, revoke_api_key])
