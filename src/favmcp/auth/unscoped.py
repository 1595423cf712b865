"""The few steps taken before a workspace is known: signup, invite lookup by token, one-time codes.

Every other data access is bound to one workspace (`db.scoped.WorkspaceDB`). This is the one named place where
a call reaches the database without a workspace, and each method says exactly what it looks up or creates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from favmcp.auth import codes, keys
from favmcp.auth.models import CodePurpose, OneTimeCode, User
from favmcp.config import Settings
from favmcp.core.clock import Random
from favmcp.db.scoped import WorkspaceDB
from favmcp.db.tenancy import Workspace


@dataclass
class Unscoped:
    session: AsyncSession
    settings: Settings
    random: Random
    now: datetime
    client_address: str

    async def issue_code(
        self, *, purpose: CodePurpose, email: str, workspace_id: str | None, payload: dict[str, Any]
    ) -> tuple[OneTimeCode, str]:
        """A new one-time code for `email`, counted against the email and the client address."""
        return await codes.issue(
            self.session,
            purpose=purpose,
            email=email,
            client_address=self.client_address,
            workspace_id=workspace_id,
            payload=payload,
            secret_key=self.settings.secret_key,
            random=self.random,
            now=self.now,
        )

    async def verify_code(self, *, request_id: str, code: str, purpose: CodePurpose) -> OneTimeCode:
        return await codes.verify(
            self.session,
            request_id=request_id,
            code=code,
            purpose=purpose,
            secret_key=self.settings.secret_key,
            now=self.now,
        )

    async def create_workspace(self, workspace: Workspace, owner: User) -> WorkspaceDB:
        """Signup: the new workspace and its first owner; returns access bound to the new workspace."""
        self.session.add(workspace)
        await self.session.flush()
        db = WorkspaceDB(self.session, workspace.id)
        db.add(owner)
        await db.flush()
        return db

    async def invite_by_token(self, invite_token: str, model: Any) -> Any:
        """The invite holding this token (looked up by its hash across workspaces), or None.

        `model` is the invite table of the team domain, passed in because auth/ imports nothing from domains/.
        """
        stmt = select(model).where(col(model.token_hash) == keys.key_hash(invite_token))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    def workspace(self, workspace_id: str) -> WorkspaceDB:
        """Access bound to a workspace named by a verified code (invite acceptance), not by the caller."""
        return WorkspaceDB(self.session, workspace_id)
