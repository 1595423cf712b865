from __future__ import annotations

from sqlmodel import col

from favmcp.core.errors import ErrorCode, FavError
from favmcp.domains.platform.schemas import (
    Annotations,
    AuditEventPage,
    AuditEventPublic,
    DescribeToolInput,
    ListAuditEventsInput,
    SearchToolsInput,
    SkillSummary,
    ToolDescription,
    ToolSearchResult,
    ToolSummary,
)
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain
from favmcp.registry.models import AuditEvent
from favmcp.registry.spec import ToolSpec, tool
from favmcp.skills import load_all, skill_uri

DOMAIN_NAME = "platform"


@tool(domain=DOMAIN_NAME, title="List audit events", hints="R I", scope="audit:read", route="GET /v1/audit-events")
async def list_audit_events(ctx: ToolContext, args: ListAuditEventsInput) -> AuditEventPage:
    """The audit trail, newest first: who called which mutating tool, with which credential, when, the outcome
    and what changed (ids and field names, never personal data)."""
    stmt = ctx.db.select(AuditEvent)
    if args.tool:
        stmt = stmt.where(col(AuditEvent.tool) == args.tool)
    if args.user_id:
        stmt = stmt.where(col(AuditEvent.user_id) == args.user_id)
    if args.since:
        stmt = stmt.where(col(AuditEvent.created_at) >= args.since)
    if args.until:
        stmt = stmt.where(col(AuditEvent.created_at) < args.until)
    rows, cursor = await ctx.db.page(stmt, col(AuditEvent.id), args)
    items = [AuditEventPublic.model_validate(r, from_attributes=True) for r in rows]
    return AuditEventPage(items=items, next_cursor=cursor, has_more=cursor is not None)


def _summary(spec: ToolSpec) -> dict[str, object]:
    e = spec.effect
    return {
        "name": spec.name,
        "title": spec.title,
        "domain": spec.domain,
        "scope": spec.scope,
        "gate": spec.gate,
        "annotations": Annotations(
            read_only=e.read_only, destructive=e.destructive, idempotent=e.idempotent, open_world=e.open_world
        ),
    }


# The words people use for what the tools call otherwise.
SYNONYMS = {
    "customer": "member",
    "customers": "member",
    "client": "member",
    "clients": "member",
    "add": "create",
    "new": "create",
    "make": "create",
    "remove": "delete",
    "appointment": "booking",
    "appointments": "booking",
    "book": "booking",
    "bill": "invoice",
    "staff": "team",
    "employee": "team",
    "points": "loyalty",
}


def _words(query: str) -> list[set[str]]:
    """Each word of the query (short words like "a" left out) with the word the tools use for it."""
    words = [w for w in query.lower().replace("_", " ").replace("-", " ").split() if len(w) > 2]
    return [{w, SYNONYMS[w]} if w in SYNONYMS else {w} for w in words]


def _matches(spec: ToolSpec, args: SearchToolsInput) -> int:
    """A relevance score; 0 means no match. A tool whose whole name the query says ranks first."""
    if args.domain and spec.domain != args.domain:
        return 0
    if args.effect == "read_only" and not spec.effect.read_only:
        return 0
    if args.effect == "write" and (spec.effect.read_only or spec.effect.destructive):
        return 0
    if args.effect == "destructive" and not spec.effect.destructive:
        return 0
    if not args.query:
        return 1
    words = _words(args.query)
    name, title, text = spec.name.replace("_", " "), spec.title.lower(), spec.description.lower()
    score = sum(max(3 * (w in name) + 2 * (w in title) + (w in text) for w in alternatives) for alternatives in words)
    said = set().union(*words) if words else set()
    return score + 5 * (bool(score) and set(spec.name.split("_")) <= said)


@tool(domain=DOMAIN_NAME, title="Search tools", hints="R I", scope="public", route="GET /v1/tools")
async def search_tools(ctx: ToolContext, args: SearchToolsInput) -> ToolSearchResult:
    """Find this server's tools by words, domain or effect, best first: names, titles, scopes, gates and
    annotations, and the skills (playbooks) for the job. describe_tool gives one tool's schemas. Needs no API key."""
    scored = [(score, spec) for spec in ctx.registry.listed() if (score := _matches(spec, args))]
    scored.sort(key=lambda pair: (-pair[0], pair[1].name))
    items = [ToolSummary.model_validate(_summary(spec)) for _, spec in scored[: args.limit]]
    return ToolSearchResult(items=items, total=len(scored), skills=_skills_for(args))


def _skills_for(args: SearchToolsInput) -> list[SkillSummary]:
    """The skills whose name or description holds the query's words (all of them for a search without words),
    best first, at most 3; a domain or effect filter narrows tools, not playbooks."""
    words = _words(args.query) if args.query else []
    scored = []
    for skill in load_all().values():
        text = f"{skill.name.replace('-', ' ')} {skill.description}".lower()
        score = sum(any(w in text for w in alternatives) for alternatives in words) if words else 1
        if score:
            scored.append((score, skill.name, skill))
    scored.sort(key=lambda found: (-found[0], found[1]))
    return [
        SkillSummary(name=skill.name, description=skill.description, uri=skill_uri(skill.name))
        for _, _, skill in scored[:3]
    ]


@tool(domain=DOMAIN_NAME, title="Describe tool", hints="R I", scope="public", route="GET /v1/tools/{name}")
async def describe_tool(ctx: ToolContext, args: DescribeToolInput) -> ToolDescription:
    """One tool's full description, input and output JSON Schema, annotations, scope and gate.
    Needs no API key. Find names with search_tools."""
    try:
        spec = ctx.registry.get(args.name)
    except FavError:
        raise FavError(
            ErrorCode.not_found, f"No tool named {args.name!r} on this server.", hint="Find tools with search_tools."
        ) from None
    return ToolDescription.model_validate(
        {
            **_summary(spec),
            "description": spec.description,
            "input_schema": spec.input_schema(),
            "output_schema": spec.output_schema(),
        }
    )


DOMAIN = Domain(name=DOMAIN_NAME, tools=[list_audit_events, search_tools, describe_tool])
