"""MCP over stdio and streamable HTTP: a thin adapter from the protocol to the runner."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mcp.types as types
from mcp.server import Server
from mcp.server.caching import CacheHint
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from favmcp import __version__
from favmcp.core.errors import ErrorBody, ErrorCode, FavError
from favmcp.core.ids import new_id
from favmcp.registry.results import CallResult
from favmcp.skills import Skill, load_all, skill_uri
from favmcp.transports.listing import Listing

if TYPE_CHECKING:
    from favmcp.registry.runner import Runner

INSTRUCTIONS = (
    "favmcp is the backend of a service business (customers, bookings, payments, team). "
    "Call whoami first to learn your workspace, role and scopes; find tools with search_tools. "
    "An error is an isError result whose text is a JSON object with a code, a message, a hint and field errors "
    "(also in _meta favmcp/error): read it and act on it. "
    "Destructive tools answer confirmation_required with a preview and a confirmation_token first; "
    "show the preview to the person before calling again with the token."
)
APPROVAL_STATE = "approval:"
APPROVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"approve": {"type": "boolean", "title": "Approve and send", "default": False}},
    "required": ["approve"],
}
CONFIRM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"confirm": {"type": "boolean", "title": "Go ahead", "default": False}},
    "required": ["confirm"],
}


ERROR_META = "favmcp/error"


def to_call_tool_result(result: CallResult) -> types.CallToolResult:
    """Success: structuredContent matching the outputSchema, mirrored as JSON text, then any pictures the tool
    attached (a report's chart) as image content.

    A refusal carries no structuredContent: clients built on the TypeScript SDK check structuredContent against
    the outputSchema even on isError results and would replace the error with a schema complaint. The error
    object is the JSON of the single text block and is repeated in _meta["favmcp/error"].
    """
    if result.ok:
        pictures = [
            types.ImageContent(type="image", data=base64.b64encode(image.data).decode(), mime_type=image.mime_type)
            for image in result.images
        ]
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(result.data, ensure_ascii=False)), *pictures],
            structured_content=result.data,
        )
    error = result.data["error"]
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(error, ensure_ascii=False))],
        is_error=True,
        _meta={ERROR_META: error},
    )


@dataclass
class StdioCredential:
    """Over stdio one process serves one person: the key can change mid-session (after signup)."""

    secret: str | None


def _http_credential(ctx: ServerRequestContext[Any, Any]) -> tuple[str | None, str]:
    request = ctx.request
    if request is None:
        return None, "local"
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    secret = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return secret, request.client.host if request.client else "unknown"


def build_server(
    listing: Listing,
    runner_of: Callable[[], Awaitable[Runner]],
    *,
    stdio_credential: StdioCredential | None = None,
    profiled: dict[str, Listing] | None = None,
    profile_of: Callable[[str], Awaitable[str | None]] | None = None,
) -> Server[Any]:
    """runner_of: the runner, once the domains have loaded and the database is open (a stdio server answers
    initialize and tools/list from the listing before that; a call waits). profiled: the listing of each profile,
    for a credential bound to one (its tools/list shows that profile's; calls are narrowed by the runner).
    profile_of: a credential's profile, raising FavError for one that is no good (default: the database's)."""
    confirm_gated, approval_gated = listing.confirm_gated, listing.approval_gated

    def credential_of(ctx: ServerRequestContext[Any, Any]) -> tuple[str | None, str]:
        if stdio_credential is not None:
            return stdio_credential.secret, "local"
        return _http_credential(ctx)

    async def resolved_profile(secret: str) -> str | None:
        # Imported here: a stdio server answers its first tools/list before the database layer loads.
        from favmcp.auth import credentials

        runner = await runner_of()
        return (await credentials.resolve(runner.db, secret, runner.clock.now())).profile

    profile_of = profile_of or resolved_profile

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> dict[str, Any]:
        secret = credential_of(ctx)[0] if profiled else None
        if profiled and secret:
            try:
                profile = await profile_of(secret)
            except FavError:  # the listing is no secret; the first call says what is wrong with the credential
                return listing.tools
            if profile is not None:
                return profiled[profile].tools
        return listing.tools

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        secret, address = credential_of(ctx)
        arguments = dict(params.arguments or {})
        gated = params.name in confirm_gated
        if params.name in approval_gated and params.input_responses is not None and params.request_state:
            # A modern-era retry after we asked the person to approve: never run the call again, decide the request.
            approval_id = params.request_state.removeprefix(APPROVAL_STATE)
            return await decide(approval_id, params.input_responses.get("approve"), params.name, secret, address)
        if gated and params.request_state and params.input_responses is not None:
            # A modern-era retry after we asked the person to confirm: the state is our own signed token.
            if not _accepted(params.input_responses.get("confirm")):
                return _declined(new_id("req"))
            arguments["confirmation_token"] = params.request_state
        runner = await runner_of()
        result = await runner.call(params.name, arguments, credential=secret, client_address=address)
        token = _confirmation_token(result) if gated else None
        if token is not None and _can_elicit(ctx):
            message = result.data["error"]["message"]
            if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
                ask = types.ElicitRequest(
                    params=types.ElicitRequestFormParams(message=message, requested_schema=CONFIRM_SCHEMA)
                )
                return types.InputRequiredResult(input_requests={"confirm": ask}, request_state=token)
            try:
                answer = await ctx.session.elicit_form(message, CONFIRM_SCHEMA, related_request_id=ctx.request_id)
            except MCPError:  # the client could not ask: the preview and token stand
                return to_call_tool_result(result)
            if not _accepted(answer):
                return _declined(result.request_id)
            arguments["confirmation_token"] = token
            result = await runner.call(params.name, arguments, credential=secret, client_address=address)
        if result.self_approvable is not None and _can_elicit(ctx):
            approval_id, summary = result.self_approvable
            message = f"Approve and send now? {summary}"
            if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
                ask = types.ElicitRequest(
                    params=types.ElicitRequestFormParams(message=message, requested_schema=APPROVE_SCHEMA)
                )
                return types.InputRequiredResult(
                    input_requests={"approve": ask}, request_state=APPROVAL_STATE + approval_id
                )
            try:
                answer = await ctx.session.elicit_form(message, APPROVE_SCHEMA, related_request_id=ctx.request_id)
            except MCPError:  # the client could not ask: the request waits for a person
                return to_call_tool_result(result)
            return await decide(approval_id, answer, params.name, secret, address)
        if result.adopted_key and stdio_credential is not None:
            stdio_credential.secret = result.adopted_key
        return to_call_tool_result(result)

    async def decide(
        approval_id: str, answer: Any, tool: str, secret: str | None, address: str
    ) -> types.CallToolResult:
        """The person answered the approval question: on yes, approve (and so run) the held call and answer with
        what it answered; on no, it stays pending for someone else to decide."""
        runner = await runner_of()
        if not _accepted(answer, "approve"):
            waiting = {"status": "pending_approval", "approval_id": approval_id}
            data = runner.registry.get(tool).output_model.model_validate(waiting).model_dump(mode="json")
            return to_call_tool_result(CallResult(True, data, new_id("req")))
        decided = await runner.call(
            "approve_request", {"approval_id": approval_id}, credential=secret, client_address=address
        )
        if not decided.ok:
            return to_call_tool_result(decided)
        execution = decided.data["execution"]
        if execution["ok"]:
            return to_call_tool_result(CallResult(True, execution["result"], decided.request_id))
        return to_call_tool_result(CallResult(False, {"error": execution["error"]}, decided.request_id))

    skills = load_all()

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(
            resources=[
                types.Resource(uri=skill_uri(name), name=name, description=skill.description, mime_type="text/markdown")
                for name, skill in skills.items()
            ]
        )

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        name = str(params.uri).removeprefix("skill://").removesuffix("/SKILL.md")
        if name not in skills or skill_uri(name) != str(params.uri):
            raise MCPError(code=types.INVALID_PARAMS, message=f"No resource {params.uri}")
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=params.uri, mime_type="text/markdown", text=skills[name].text)]
        )

    async def list_prompts(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[skill_prompt(skill) for skill in skills.values()])

    async def get_prompt(
        ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        skill = skills.get(params.name)
        if skill is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"No prompt {params.name}; list_prompts names them")
        given = params.arguments or {}
        missing = [a.name for a in skill.arguments if a.required and not given.get(a.name)]
        unknown = sorted(set(given) - {a.name for a in skill.arguments})
        if missing or unknown:
            problem = f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(unknown)}"
            raise MCPError(code=types.INVALID_PARAMS, message=f"Prompt {skill.name}: {problem}")
        return types.GetPromptResult(
            description=skill.description,
            messages=[
                types.PromptMessage(role="user", content=types.TextContent(type="text", text=prompt_text(skill, given)))
            ],
        )

    server: Server[Any] = Server(
        "favmcp",
        version=__version__,
        title="favmcp",
        description="An agentic backend for service businesses.",
        instructions=INSTRUCTIONS,
        # Without this the SDK lists every tool on each HTTP call with arguments, to check Mcp-Param headers.
        get_tool_input_schema=listing.input_schemas.get,
        # The list changes only with a new release; clients may reuse it for a minute.
        cache_hints={"tools/list": CacheHint(ttl_ms=60_000)},
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )
    # Registered apart from the constructor, whose on_list_tools must build a model: this answers the dump.
    server.add_request_handler("tools/list", types.PaginatedRequestParams, list_tools)
    return server


def skill_prompt(skill: Skill) -> types.Prompt:
    return types.Prompt(
        name=skill.name,
        title=skill.name.replace("-", " ").capitalize(),
        description=skill.description,
        arguments=[
            types.PromptArgument(name=a.name, description=a.description, required=a.required) for a in skill.arguments
        ],
    )


def prompt_text(skill: Skill, arguments: dict[str, str]) -> str:
    """The playbook to follow, with the person's arguments stated first (the flow names them as $variables)."""
    given = "".join(f"- {name} = {value}\n" for name, value in arguments.items() if value)
    head = f"Follow this playbook. In it, these variables have the values given:\n{given}\n" if given else ""
    return f"{head}{skill.body.lstrip()}"


def _confirmation_token(result: CallResult) -> str | None:
    if result.ok or result.data["error"]["code"] != ErrorCode.confirmation_required:
        return None
    token = (result.data["error"].get("details") or {}).get("confirmation_token")
    return token if isinstance(token, str) else None


def _can_elicit(ctx: ServerRequestContext[Any, Any]) -> bool:
    """The client can show a form (an empty elicitation capability means form) and we can reach it."""
    caps = ctx.session.client_capabilities
    elicitation = caps.elicitation if caps else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS or ctx.session.can_send_request


def _accepted(answer: Any, field: str = "confirm") -> bool:
    return (
        isinstance(answer, types.ElicitResult) and answer.action == "accept" and bool((answer.content or {}).get(field))
    )


def _declined(request_id: str) -> types.CallToolResult:
    """The person said no: the same refusal shape as every other error, nothing changed."""
    body = ErrorBody(
        code=ErrorCode.declined,
        message="The person declined; nothing was changed.",
        hint="Ask the person what they want instead; call the tool again only if they change their mind.",
        request_id=request_id,
    )
    return to_call_tool_result(
        CallResult(False, {"error": body.model_dump(mode="json", exclude_none=True)}, request_id)
    )
