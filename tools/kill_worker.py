"""kill -9 `favmcp worker` again and again while it delivers the outbox; count what reached the SMTP server.

    uv run python tools/kill_worker.py [--messages 300] [--kills 20] [--engine sqlite|postgres|both] [--postgres URL]

A loopback SMTP server (aiosmtpd) records each message's Message-ID and when it arrived, taking --smtp-delay
seconds per message as a real provider does. N messages are queued, sealed, as the tools queue them. Then
`favmcp worker` runs as a subprocess and is killed with SIGKILL --kills times, each time at a random moment
after it has delivered something, and started again at once; the last one delivers what is left. Meanwhile
the outbox is polled to see which worker process holds which message.

Reported: messages; kills; lost (never delivered); duplicated (delivered more than once, by Message-ID: a kill
between the SMTP send and marking the row sent, at-least-once delivery, for receivers to drop by the Message-ID;
the report says how close to a kill each first copy came); the longest stall (the longest time without a
delivery, from the first start to the last delivery, restarts included); how many messages killed workers held,
and the longest time from a kill until another worker took one of them over (the lease bound).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import asyncpg
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlmodel import col

from favmcp.app import App
from favmcp.config import Settings
from favmcp.db.engine import Database
from favmcp.effects.models import OutboxMessage, OutboxStatus
from favmcp.effects.outbox import queue_email

SECRET = "kill-worker-secret"
DELIVERY_TIMEOUT = 60.0  # seconds a worker may take to deliver something (a dead worker's lease is far shorter)
POLL = 0.05  # seconds between two looks at the outbox


class Recorder:
    """The SMTP server's handler: (arrival time, Message-ID) of every message it accepts."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.lock:
            self.arrivals.append((time.monotonic(), str(message["Message-ID"])))
        return "250 Message accepted for delivery"

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def unique(self) -> int:
        with self.lock:
            return len({mid for _, mid in self.arrivals})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def fill(url: str, home: Path, count: int) -> set[str]:
    """Migrate the database and queue `count` emails; returns their Message-IDs."""
    settings = Settings.from_env({"FAVMCP_HOME": str(home), "FAVMCP_DATABASE_URL": url, "FAVMCP_SECRET_KEY": SECRET})
    app = await App.open(settings, upgrade=True)
    try:
        async with app.db.transaction() as session:
            now = datetime.now(UTC)
            messages = [
                queue_email(
                    session, settings, to=f"member{i}@example.com", subject=f"Reminder {i}",
                    body=f"See you at class {i}.", workspace_id=None, now=now,
                )
                for i in range(count)
            ]  # fmt: skip
    finally:
        await app.close()
    return {f"<{m.id}@favmcp>" for m in messages}


class Watcher:
    """Polls the outbox from a thread of its own: which worker process held each message, and from when."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.holders: dict[str, list[tuple[float, int | None]]] = {}  # Message-ID: (seen at, worker pid or None)
        self.done = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._poll()), daemon=True)

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    async def _poll(self) -> None:
        db = Database(self.url)
        stmt = select(col(OutboxMessage.id), col(OutboxMessage.status), col(OutboxMessage.locked_by))
        try:
            while not self.done.is_set():
                async with db.reader.connect() as conn:  # no write lock on SQLite: the worker never waits for us
                    rows = (await conn.execute(stmt)).all()
                seen_at = time.monotonic()
                for message_id, status, locked_by in rows:
                    held = status == OutboxStatus.pending and locked_by is not None
                    holder = int(locked_by.rsplit(":", 2)[1]) if held else None  # worker ids are host:pid:object
                    changes = self.holders.setdefault(f"<{message_id}@favmcp>", [])
                    if not changes or changes[-1][1] != holder:
                        changes.append((seen_at, holder))
                await asyncio.sleep(POLL)
        finally:
            await db.dispose()

    def held_by_the_dead(self, kills: list[tuple[float, int]]) -> list[float]:
        """For every message a killed worker held when it died: seconds from the kill until another worker took
        it (or it was found sent: the dead worker had sent and marked it just before)."""
        killed_at = {pid: at for at, pid in kills}
        waits = []
        for changes in self.holders.values():
            for (_, holder), (taken_at, _) in itertools.pairwise(changes):
                if holder in killed_at and taken_at > killed_at[holder]:
                    waits.append(taken_at - killed_at[holder])
        return waits


async def admin(server_url: str, sql: str) -> None:
    base = make_url(server_url)
    conn = await asyncpg.connect(
        host=base.host, port=base.port or 5432, user=base.username, password=base.password, database="postgres"
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class Report:
    engine: str
    messages: int
    kills: int
    lost: int
    duplicated: int
    extra_copies: int
    longest_stall: float
    held_by_the_dead: int  # messages a worker held under its lease when it was killed (counted per kill)
    longest_held: float  # the longest time from such a kill until another worker took the message
    kill_to_copy: float  # the longest time between a duplicated message's first copy and the nearest kill


class Workers:
    """`favmcp worker` subprocesses, one at a time, their output appended to one log."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.current: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            self.current = subprocess.Popen(
                [sys.executable, "-m", "favmcp", "worker"], env=self.env, stdout=out, stderr=out
            )
        return self.current

    def current_pid(self) -> int:
        assert self.current is not None
        return self.current.pid

    def kill(self) -> float:
        assert self.current is not None
        os.kill(self.current.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        self.current.wait()
        return killed_at

    def stop(self) -> None:
        if self.current is not None and self.current.poll() is None:
            self.current.terminate()
            self.current.wait(timeout=30)


def wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def run(engine: str, url: str, home: Path, args: argparse.Namespace, rng: random.Random) -> Report:
    expected = asyncio.run(fill(url, home, args.messages))
    recorder = Recorder(args.smtp_delay)
    port = free_port()
    smtp = Controller(recorder, hostname="127.0.0.1", port=port)
    smtp.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")} | {
        "FAVMCP_HOME": str(home),
        "FAVMCP_DATABASE_URL": url,
        "FAVMCP_SECRET_KEY": SECRET,
        "FAVMCP_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "FAVMCP_LOG_LEVEL": "WARNING",
    }
    workers = Workers(env, home / "workers.log")
    kills: list[tuple[float, int]] = []  # (when, which worker process)
    started = time.monotonic()
    try:
        with Watcher(url) as watcher:
            workers.start()
            while len(kills) < args.kills and recorder.unique() < len(expected):
                before = recorder.count()
                if not wait_for(lambda: recorder.count() > before, DELIVERY_TIMEOUT):  # noqa: B023 - called at once
                    raise RuntimeError(f"a worker delivered nothing in {DELIVERY_TIMEOUT} s; see {workers.log}")
                time.sleep(rng.uniform(0, args.max_life))
                pid = workers.current_pid()
                kills.append((workers.kill(), pid))
                workers.start()  # at once, as a supervisor would
            if not wait_for(lambda: recorder.unique() >= len(expected), DELIVERY_TIMEOUT + len(expected) * 0.2):
                print(f"  gave up waiting: {len(expected) - recorder.unique()} messages not delivered")
            time.sleep(2 * POLL)  # the last changes seen
    finally:
        workers.stop()
        smtp.stop()

    with recorder.lock:
        arrivals = sorted(recorder.arrivals)
    copies = Counter(mid for _, mid in arrivals)
    first: dict[str, float] = {}
    for arrived, mid in arrivals:
        first.setdefault(mid, arrived)
    times = [started, *(t for t, _ in arrivals)]
    kill_times = [at for at, _ in kills]
    waits = watcher.held_by_the_dead(kills)
    return Report(
        engine=engine,
        messages=len(expected),
        kills=len(kills),
        lost=len(expected - set(copies)),
        duplicated=sum(1 for n in copies.values() if n > 1),
        extra_copies=sum(n - 1 for n in copies.values()),
        longest_stall=max(later - earlier for earlier, later in itertools.pairwise(times)),
        held_by_the_dead=len(waits),
        longest_held=max(waits, default=0.0),
        kill_to_copy=max((_nearest(kill_times, first[mid]) for mid, n in copies.items() if n > 1), default=0.0),
    )


def _nearest(kill_times: list[float], moment: float) -> float:
    """Seconds between `moment` and the nearest kill. A copy may arrive just after the kill that interrupted its
    worker: the server had the whole message, the worker died before reading the server's answer."""
    return min((abs(kill - moment) for kill in kill_times), default=float("inf"))


def engines(choice: str, postgres: str, tmp: Path, prefix: str) -> Iterator[tuple[str, str, Path]]:
    """(engine, database URL, home) for each engine chosen: SQLite in `tmp`, and a fresh Postgres database beside
    `postgres`, dropped afterwards."""
    if choice in ("sqlite", "both"):
        home = tmp / "sqlite"
        yield "sqlite", f"sqlite+aiosqlite:///{home / 'favmcp.db'}", home
    if choice in ("postgres", "both"):
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        asyncio.run(admin(postgres, f'CREATE DATABASE "{name}"'))
        try:
            yield (
                "postgres",
                make_url(postgres).set(database=name).render_as_string(hide_password=False),
                tmp / "postgres",
            )
        finally:
            asyncio.run(admin(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--smtp-delay", type=float, default=0.03, help="seconds the SMTP server takes per message")
    ap.add_argument("--max-life", type=float, default=1.0, help="longest time a worker lives after its first send")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for engine, url, home in engines(args.engine, args.postgres, Path(tmp), "favmcp_kill"):
            reports.append(run(engine, url, home, args, rng))
    print(
        f"{'engine':10} {'messages':>8} {'kills':>6} {'lost':>5} {'duplicated':>11} {'longest stall':>14}"
        f" {'held by the dead':>17} {'until taken over':>17}"
    )
    for r in reports:
        duplicated = f"{r.duplicated} ({r.extra_copies} extra)" if r.extra_copies != r.duplicated else str(r.duplicated)
        print(
            f"{r.engine:10} {r.messages:8} {r.kills:6} {r.lost:5} {duplicated:>11} {r.longest_stall:13.2f}s"
            f" {r.held_by_the_dead:17} {r.longest_held:16.2f}s"
        )
    for r in reports:
        if r.duplicated:
            within = f"{r.kill_to_copy * 1000:.0f} ms"
            print(f"{r.engine}: the first copy of every duplicated message arrived within {within} of a kill")


if __name__ == "__main__":
    main()
