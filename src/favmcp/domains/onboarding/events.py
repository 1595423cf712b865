from __future__ import annotations

from favmcp.core.events import DomainEvent


class WorkspaceCreated(DomainEvent):
    name = "workspace.created"

    workspace_id: str
    owner_user_id: str
