"""Schema migrations (Alembic) shipped in the package; applied by `favmcp db upgrade` or at SQLite start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from favmcp.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_ID = 0x6661766D6370  # "favmcp": one upgrade at a time across replicas


def alembic_config(connection: Any = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    async with db.engine.begin() as conn:
        if not db.is_sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(sync_conn), revision))


async def is_current(db: Database) -> bool:
    """Whether the database is at the newest migration this package ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with db.engine.connect() as conn:
        try:
            found = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
        except DBAPIError:
            return False
    return bool(found == head)
