"""Schema migrations (Alembic) shipped in the package; applied by `favmcp db upgrade` or at SQLite start.

Alembic is imported only when there is something to apply: a server on a current database starts faster.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from favmcp.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_ID = 0x6661766D6370  # "favmcp": one upgrade at a time across replicas
_REVISION = re.compile(r"^(revision|down_revision)\s*=\s*['\"]?([0-9a-f]+|None)['\"]?", re.MULTILINE)


def alembic_config(connection: Any = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration: the one no other migration revises (read from the files, without Alembic)."""
    revisions, revised = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION.findall(path.read_text()))
        revisions.add(found["revision"])
        revised.add(found.get("down_revision"))
    heads = revisions - revised
    if len(heads) != 1:
        raise RuntimeError(f"expected one migration head, found {sorted(heads)}")
    return heads.pop()


async def upgrade(db: Database, revision: str = "head") -> None:
    from alembic import command

    async with db.engine.begin() as conn:
        if not db.is_sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(sync_conn), revision))


async def is_current(db: Database) -> bool:
    """Whether the database is at the newest migration this package ships."""
    async with db.reader.connect() as conn:
        try:
            found = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
        except DBAPIError:
            return False
    return bool(found == head_revision())
