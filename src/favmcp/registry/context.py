"""What a handler receives: one transaction, the caller, injected time and randomness, and the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from favmcp.auth.credentials import Caller
from favmcp.config import Settings
from favmcp.core.clock import Random
from favmcp.core.errors import unauthenticated
from favmcp.db.scoped import WorkspaceDB
from favmcp.effects.models import OutboxMessage
from favmcp.effects.outbox import queue_email
from favmcp.registry.registry import Registry


@dataclass
class ToolContext:
    session: AsyncSession
    caller: Caller
    settings: Settings
    random: Random
    now: datetime
    request_id: str
    client_address: str
    tool: str
    registry: Registry
    changes: dict[str, Any] = field(default_factory=dict)
    adopted_key: str | None = None

    @property
    def workspace_id(self) -> str:
        if self.caller.workspace_id is None:
            raise unauthenticated()
        return self.caller.workspace_id

    @property
    def db(self) -> WorkspaceDB:
        """Data access limited to the caller's workspace."""
        return WorkspaceDB(self.session, self.workspace_id)

    def db_of(self, workspace_id: str) -> WorkspaceDB:
        """Data access for a workspace known from the arguments (signup, invite acceptance), not the caller."""
        return WorkspaceDB(self.session, workspace_id)

    def record_change(self, **what: Any) -> None:
        """Say what changed, for the audit row (ids and field names, never personal data)."""
        self.changes.update(what)

    def send_email(self, *, to: str, subject: str, body: str, workspace_id: str | None = None) -> OutboxMessage:
        """Queue an email in this transaction; the dispatcher delivers it after commit."""
        return queue_email(
            self.session, self.settings, to=to, subject=subject, body=body, workspace_id=workspace_id, now=self.now
        )

    def adopt_key(self, secret: str) -> None:
        """Ask the transport to continue this session with a new key (stdio after signup)."""
        self.adopted_key = secret
