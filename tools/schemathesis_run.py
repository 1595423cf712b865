"""Run schemathesis against a live `favmcp serve --http`: every REST operation from /openapi.json, as an owner,
checking that no answer is a server error and that every answer matches its documented schema.

uv run python tools/schemathesis_run.py                         # a fuller run on a fresh SQLite database
uv run python tools/schemathesis_run.py --examples 5 --phases fuzzing
uv run python tools/schemathesis_run.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/some_fresh_db

tests/test_rest.py runs a bounded version of the same command in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlmodel import col

from favmcp.app import App
from favmcp.config import Settings
from favmcp.effects.models import OutboxMessage
from favmcp.effects.outbox import open_body

CHECKS = "not_a_server_error,response_schema_conformance"


def command(base: str, key: str, *, examples: int, seed: int, phases: str, workers: int = 1) -> list[str]:
    """The schemathesis command line. One worker: hypothesis's lambda descriptions are not thread-safe (with more,
    schemathesis reports an "AST constructor recursion depth mismatch" of its own)."""
    return [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{base}/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(examples),
        "--seed",
        str(seed),
        "--phases",
        phases,
        "--workers",
        str(workers),
        "--no-shrink",
    ]


async def owner_key(settings: Settings) -> str:
    """Sign a business up through the runner, reading the emailed code from the outbox."""
    app = await App.open(settings, upgrade=True)
    try:
        email = f"owner.{secrets.token_hex(6)}@example.com"
        request = await app.runner.call(
            "register_organisation_request",
            {"email": email, "organisation_name": "Fuzz Studio", "owner_name": "Ann Owner"},
            credential=None,
        )
        assert request.ok, request.data
        async with app.db.transaction() as session:
            stmt = select(OutboxMessage).where(col(OutboxMessage.recipient) == email)
            message = (await session.execute(stmt)).scalars().one()
        found = re.search(r"\b(\d{6})\b", open_body(settings, message))
        assert found, "no code in the signup email"
        verify = {"request_id": request.data["request_id"], "code": found.group(1)}
        verified = await app.runner.call("register_organisation_verify", verify, credential=None)
        assert verified.ok, verified.data
        return str(verified.data["api_key"])
    finally:
        await app.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--examples", type=int, default=25, help="examples per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phases", default="coverage,fuzzing")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="favmcp-schemathesis-"))
    env = {
        "FAVMCP_HOME": str(home),
        "FAVMCP_DATABASE_URL": args.database_url or f"sqlite+aiosqlite:///{home / 'favmcp.db'}",
        "FAVMCP_SECRET_KEY": secrets.token_urlsafe(32),
        "FAVMCP_LOG_LEVEL": "WARNING",
    }
    key = asyncio.run(owner_key(Settings.from_env(env)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "favmcp", "serve", "--http", "--port", str(port)], env={**clean, **env}
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)
        argv = command(base, key, examples=args.examples, seed=args.seed, phases=args.phases)
        return subprocess.run(argv, check=False).returncode
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    sys.exit(main())
