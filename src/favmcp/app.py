"""Assembles one running favmcp: settings, database, registry, runner, outbox dispatcher."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import structlog

from favmcp import composition
from favmcp import logging as favlog
from favmcp.config import Settings
from favmcp.core.clock import Clock, Random
from favmcp.db import migrate
from favmcp.db.engine import Database
from favmcp.effects.channels.email import EmailChannel, LocalChannel, SmtpChannel
from favmcp.effects.channels.stripe import StripeChannel
from favmcp.effects.dispatcher import Dispatcher
from favmcp.registry.domain import Platform
from favmcp.registry.registry import Registry
from favmcp.registry.runner import Runner


class SchemaOutOfDate(RuntimeError):
    pass


@dataclass
class App:
    settings: Settings
    db: Database
    runner: Runner
    dispatcher: Dispatcher

    @property
    def registry(self) -> Registry:
        return self.runner.registry

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        random: Random | None = None,
        upgrade: bool = False,
        platform: Platform | None = None,
    ) -> App:
        """SQLite upgrades itself; Postgres must be upgraded explicitly (`favmcp db upgrade`) unless asked.

        platform: the domains to serve (default: the composition root's).
        """
        if not structlog.is_configured():
            favlog.configure()
        db = Database(settings.database_url)
        try:
            if not await migrate.is_current(db):
                if not (db.is_sqlite or upgrade):
                    raise SchemaOutOfDate("The database schema is not up to date: run `favmcp db upgrade`.")
                await migrate.upgrade(db)
        except BaseException:
            await db.dispose()  # close what did open while the loop runs, not at garbage collection after it
            raise
        platform = platform or composition.platform()
        registry = Registry(platform.specs, toolsets=settings.toolsets, read_only=settings.read_only)
        runner = Runner(platform, db, settings, registry=registry, clock=clock, random=random)
        channels = {"stripe": StripeChannel(db, settings), **platform.outbox_channels(runner)}
        dispatcher = Dispatcher(db, email_channel(settings), settings.secret_keys, clock=clock, channels=channels)
        return cls(settings, db, runner, dispatcher)

    async def run_background(self) -> None:
        """What runs beside the server (or alone, in `favmcp worker`): outbox delivery and the domains' jobs."""
        from favmcp.registry.jobs import Scheduler

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self.dispatcher.run_forever)
            tasks.start_soon(Scheduler(self.runner).run_forever)

    async def close(self) -> None:
        await self.db.dispose()


def email_channel(settings: Settings) -> EmailChannel:
    if settings.smtp_url:
        return SmtpChannel.from_url(settings.smtp_url, settings.mail_from)
    return LocalChannel()
