from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.core.times import UtcDateTime
from favmcp.registry.spec import ToolInput


class ListAuditEventsInput(ToolInput, PageParams):
    tool: str | None = Field(default=None, max_length=80, description="Only calls of this tool.")
    user_id: str | None = Field(default=None, max_length=40, description="Only calls by this user.")
    since: UtcDateTime | None = Field(default=None, description="From this time (inclusive).")
    until: UtcDateTime | None = Field(default=None, description="Before this time (exclusive).")


class AuditEventPublic(Schema):
    id: str
    tool: str
    user_id: str | None
    credential_id: str | None
    outcome: str = Field(description="ok, or the error code the call answered")
    args_hash: str = Field(description="SHA-256 of the arguments, to match retries without storing them")
    changes: dict[str, Any]
    request_id: str
    created_at: datetime


class AuditEventPage(Page[AuditEventPublic]):
    pass


class Annotations(Schema):
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool


class ToolSummary(Schema):
    name: str
    title: str
    domain: str
    scope: str
    gate: str | None
    annotations: Annotations


class SearchToolsInput(ToolInput):
    query: str | None = Field(default=None, max_length=200, description="Words to look for in names and titles.")
    domain: str | None = Field(default=None, max_length=40, description="Only this domain, e.g. members.")
    effect: Literal["read_only", "write", "destructive"] | None = Field(
        default=None, description="Only tools that read, write (non-destructively) or destroy."
    )
    limit: int = Field(default=20, ge=1, le=100)


class SkillSummary(Schema):
    name: str = Field(description="Also the name of its MCP prompt.")
    description: str
    uri: str = Field(description="The SKILL.md as an MCP resource.")


class ToolSearchResult(Schema):
    items: list[ToolSummary]
    total: int = Field(description="How many tools matched; items holds the best `limit` of them.")
    skills: list[SkillSummary] = Field(description="Playbooks (SKILL.md) for the job the words name, best first.")


class DescribeToolInput(ToolInput):
    name: str = Field(min_length=1, max_length=80)


class ToolDescription(ToolSummary):
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
