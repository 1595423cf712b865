"""What a tool call answers, apart from the runner that makes it: the MCP adapter reads it without loading the
database layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from favmcp.core.errors import ErrorBody


@dataclass(frozen=True)
class Image:
    """A picture a read tool returns beside its structured data (a report's chart), for clients that show images."""

    mime_type: str
    data: bytes


@dataclass
class CallResult:
    ok: bool
    data: dict[str, Any]
    request_id: str
    adopted_key: str | None = None
    # A held call the caller may approve themselves right now (approvals:decide, policy allows): (id, summary).
    self_approvable: tuple[str, str] | None = None
    # Pictures beside the data (a read tool's chart), shown by clients that show images.
    images: tuple[Image, ...] = ()

    @property
    def error(self) -> ErrorBody | None:
        return None if self.ok else ErrorBody.model_validate(self.data["error"])
