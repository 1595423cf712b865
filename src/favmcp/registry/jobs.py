"""Runs the domains' jobs (see `favmcp.registry.domain.Job`) for every workspace when they are due.

Several workers may run at once (against Postgres): a run is claimed by one conditional UPDATE of its `job_runs`
row, so each workspace's job runs once per period. A run that fails is tried again after RETRY_AFTER.
"""

from __future__ import annotations

from datetime import timedelta

import anyio
import structlog
from sqlalchemy import and_, or_, select, update
from sqlmodel import col

from favmcp.core.errors import FavError
from favmcp.db.scoped import insert_for
from favmcp.db.tenancy import Workspace
from favmcp.registry.domain import Job
from favmcp.registry.models import JobRun
from favmcp.registry.runner import Runner

log = structlog.get_logger("favmcp.jobs")

RETRY_AFTER = timedelta(minutes=1)


class Scheduler:
    def __init__(self, runner: Runner, jobs: list[Job] | None = None) -> None:
        self.runner = runner
        self.jobs = runner.platform.jobs if jobs is None else jobs

    async def run_due(self) -> int:
        """Run every job that is due for any workspace; returns how many runs this worker claimed."""
        ran = 0
        for job in self.jobs:
            for workspace_id in await self._due(job):
                if await self._claim(job, workspace_id):
                    await self._run(job, workspace_id)
                    ran += 1
        return ran

    async def run_forever(self, idle: float = 5.0) -> None:
        while True:
            try:
                await self.run_due()
            except Exception:
                log.exception("job_scheduler_error")
            await anyio.sleep(idle)

    async def _due(self, job: Job) -> list[str]:
        now = self.runner.clock.now()
        run = and_(col(JobRun.workspace_id) == col(Workspace.id), col(JobRun.job) == job.name)
        stmt = (
            select(col(Workspace.id))
            .outerjoin(JobRun, run)
            .where(or_(col(JobRun.next_run_at).is_(None), col(JobRun.next_run_at) <= now))
            .order_by(col(Workspace.id))
        )
        async with self.runner.db.read_sessions() as session:
            return list((await session.execute(stmt)).scalars())

    async def _claim(self, job: Job, workspace_id: str) -> bool:
        now = self.runner.clock.now()
        async with self.runner.db.transaction() as session:
            first = insert_for(session, JobRun.__table__).values(  # type: ignore[attr-defined]
                workspace_id=workspace_id, job=job.name, next_run_at=now
            )
            await session.execute(first.on_conflict_do_nothing())
            claimed = await session.execute(
                update(JobRun)
                .where(
                    col(JobRun.workspace_id) == workspace_id,
                    col(JobRun.job) == job.name,
                    col(JobRun.next_run_at) <= now,
                )
                .values(next_run_at=now + job.every, last_started_at=now)
                .returning(col(JobRun.job))
            )
            return claimed.first() is not None

    async def _run(self, job: Job, workspace_id: str) -> None:
        outcome = "ok"
        try:
            name = f"job:{job.name}"
            fetched = await self.runner.read_system(workspace_id, name, job.fetch) if job.fetch else None
            await self.runner.run_system(workspace_id, name, job.run, fetched)
        except FavError as exc:
            outcome = exc.code.value
            log.warning("job_refused", job=job.name, workspace=workspace_id, code=outcome, message=exc.body.message)
        except Exception:
            outcome = "internal_error"
            log.exception("job_failed", job=job.name, workspace=workspace_id)
        values: dict[str, object] = {"last_outcome": outcome}
        if outcome != "ok":
            values["next_run_at"] = self.runner.clock.now() + RETRY_AFTER
        async with self.runner.db.transaction() as session:
            await session.execute(
                update(JobRun)
                .where(col(JobRun.workspace_id) == workspace_id, col(JobRun.job) == job.name)
                .values(**values)
            )
