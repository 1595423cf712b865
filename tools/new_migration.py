"""Write the next migration by comparing the models with a database upgraded to the current head.

uv run python tools/new_migration.py "add members"
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command

from favmcp.db.engine import Database
from favmcp.db.migrate import alembic_config, upgrade


async def main(message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'm.db'}")
        await upgrade(db)
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.revision(alembic_config(c), message=message, autogenerate=True))
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
