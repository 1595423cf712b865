"""Self-serve signup and invite acceptance, both through a one-time code sent by email."""

from __future__ import annotations

from sqlmodel import col

from favmcp.auth import scopes
from favmcp.auth.keys import mint_api_key
from favmcp.auth.models import CodePurpose, Role, User, UserStatus
from favmcp.core.contact import mask_email
from favmcp.core.errors import ErrorCode, FavError, conflict
from favmcp.core.ids import new_id
from favmcp.db.scoped import WorkspaceDB
from favmcp.db.tenancy import Workspace
from favmcp.domains.content.service import slugify
from favmcp.domains.onboarding.events import WorkspaceCreated
from favmcp.domains.onboarding.schemas import (
    AcceptInviteRequestInput,
    CodeRequested,
    NewKeyResult,
    RegisterOrganisationRequestInput,
    VerifyInput,
)
from favmcp.domains.team.lifecycle import INVITE_LIFECYCLE
from favmcp.domains.team.models import InviteStatus, TeamInvite
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain
from favmcp.registry.spec import tool

DOMAIN_NAME = "onboarding"
SENT = "If the address can receive email, a 6-digit code is on its way; it is valid for 10 minutes."


def _code_email(code: str, purpose: str) -> str:
    return (
        f"Your favmcp code to {purpose} is {code}.\n\n"
        "It is valid for 10 minutes. If you did not ask for it, ignore this email."
    )


@tool(domain=DOMAIN_NAME, title="Start signup", hints="W O", scope="public")
async def register_organisation_request(ctx: ToolContext, args: RegisterOrganisationRequestInput) -> CodeRequested:
    """Start signup of a new business: emails the owner a 6-digit code and returns a request_id for
    register_organisation_verify. Needs no API key. At most 3 requests an hour and 20 a day per email and address;
    the answer is the same whether or not the email is known."""
    row, code = await ctx.unscoped.issue_code(
        purpose=CodePurpose.signup,
        email=args.email,
        workspace_id=None,
        payload=args.model_dump(exclude={"email", "idempotency_key"}),
    )
    ctx.send_email(to=args.email, subject="Your favmcp signup code", body=_code_email(code, "sign up"))
    return CodeRequested(
        request_id=row.id, expires_at=row.expires_at, email_masked=mask_email(args.email), message=SENT
    )


@tool(domain=DOMAIN_NAME, title="Verify signup code", hints="W", scope="public", returns_secret=True)
async def register_organisation_verify(ctx: ToolContext, args: VerifyInput) -> NewKeyResult:
    """Finish signup with the request_id and the emailed code: creates the workspace, its owner and an owner API
    key (shown once). A code works once, for 10 minutes, with 5 wrong tries. Over stdio the session continues
    with the new key."""
    otc = await ctx.unscoped.verify_code(request_id=args.request_id, code=args.code, purpose=CodePurpose.signup)
    p = otc.payload
    workspace = Workspace(
        id=new_id("ws"),
        name=p["organisation_name"],
        handle=_handle(ctx, p["organisation_name"]),
        industry=p.get("industry"),
        country=p.get("country"),
        timezone=p["timezone"],
        currency=p["currency"],
        contact_email=otc.email,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    owner = User(
        id=new_id("usr"),
        workspace_id=workspace.id,
        email=otc.email,
        name=p["owner_name"],
        role=Role.owner,
        created_at=ctx.now,
    )
    db = await ctx.unscoped.create_workspace(workspace, owner)
    ctx.record_change(workspace_id=workspace.id, user_id=owner.id)
    ctx.emit(WorkspaceCreated(workspace_id=workspace.id, owner_user_id=owner.id), workspace_id=workspace.id)
    return _hand_over_key(ctx, db, owner, "First owner key", "Workspace created.")


def _handle(ctx: ToolContext, name: str) -> str:
    """The public name in URLs: the business name slugified, and a random suffix that makes it unique."""
    suffix = ctx.random.token(6).lower()[:6]  # letters and digits
    return f"{slugify(name, 50) or 'site'}-{suffix}"


def _hand_over_key(ctx: ToolContext, db: WorkspaceDB, user: User, key_name: str, greeting: str) -> NewKeyResult:
    """The person's own key, following their role; over stdio the session continues with it."""
    key, secret = mint_api_key(db, user=user, name=key_name, scopes=None, random=ctx.random, now=ctx.now)
    ctx.record_change(key_id=key.id)
    ctx.adopt_key(secret)
    return NewKeyResult(
        workspace_id=user.workspace_id,
        user_id=user.id,
        role=user.role,
        key_id=key.id,
        api_key=secret,
        scopes=scopes.role_scopes(user.role),
        message=f"{greeting} Store the API key now; it is shown only this once.",
    )


def _invalid_invite() -> FavError:
    return FavError(
        ErrorCode.not_found,
        "This invite is not valid: it may be mistyped, already used, revoked or expired.",
        hint="Ask the person who invited you for a new invite.",
    )


@tool(domain=DOMAIN_NAME, title="Start accepting an invite", hints="W O", scope="public")
async def accept_team_invite_request(ctx: ToolContext, args: AcceptInviteRequestInput) -> CodeRequested:
    """Start accepting a team invite with the token from the invite email: emails a 6-digit code to the invited
    address and returns a request_id for accept_team_invite_verify. Needs no API key. Refuses unknown, used,
    revoked or expired tokens; rate limited like signup."""
    invite = await ctx.unscoped.invite_by_token(args.invite_token, TeamInvite)
    if invite is None or invite.status != InviteStatus.pending or invite.expires_at <= ctx.now:
        raise _invalid_invite()
    row, code = await ctx.unscoped.issue_code(
        purpose=CodePurpose.invite,
        email=invite.email,
        workspace_id=invite.workspace_id,
        payload={"invite_id": invite.id},
    )
    ctx.send_email(
        to=invite.email,
        subject="Your favmcp code to join the team",
        body=_code_email(code, "accept your team invite"),
        workspace_id=invite.workspace_id,
    )
    return CodeRequested(
        request_id=row.id, expires_at=row.expires_at, email_masked=mask_email(invite.email), message=SENT
    )


@tool(domain=DOMAIN_NAME, title="Verify invite code", hints="W", scope="public", returns_secret=True)
async def accept_team_invite_verify(ctx: ToolContext, args: VerifyInput) -> NewKeyResult:
    """Finish accepting an invite with the request_id and the emailed code: activates the member with the invited
    role and returns their own API key (shown once). Over stdio the session continues with the new key."""
    otc = await ctx.unscoped.verify_code(request_id=args.request_id, code=args.code, purpose=CodePurpose.invite)
    db = ctx.unscoped.workspace(otc.workspace_id or "")
    invite = await db.get(TeamInvite, otc.payload["invite_id"], lock=True)
    if invite is None or invite.status != InviteStatus.pending or invite.expires_at <= ctx.now:
        raise _invalid_invite()
    await ctx.transition(
        INVITE_LIFECYCLE, TeamInvite, invite.id, InviteStatus.accepted, values={"accepted_at": ctx.now}, db=db
    )
    user = await db.first(db.select(User, col(User.email) == invite.email))
    if user is not None and user.status == UserStatus.active:
        raise conflict("This person is already an active member of the team.", details={"user_id": user.id})
    if user is None:
        user = db.add(
            User(
                id=new_id("usr"),
                workspace_id=invite.workspace_id,
                email=invite.email,
                name=invite.name or invite.email.split("@")[0],
                role=invite.role,
                created_at=ctx.now,
            )
        )
    else:
        user.role, user.status = invite.role, UserStatus.active
    await db.flush()
    await db.update(TeamInvite, col(TeamInvite.id) == invite.id, values={"user_id": user.id})
    ctx.record_change(workspace_id=invite.workspace_id, user_id=user.id, invite_id=invite.id)
    return _hand_over_key(ctx, db, user, "Personal key", "Welcome to the team.")


DOMAIN = Domain(
    name=DOMAIN_NAME,
    tools=[
        register_organisation_request,
        register_organisation_verify,
        accept_team_invite_request,
        accept_team_invite_verify,
    ],
    events=[WorkspaceCreated],
)
