"""kill -9 `favmcp worker` again and again while it delivers customer messages; count what reached the providers.

    uv run python tools/kill_messaging.py [--messages 1000] [--kills 100] [--engine sqlite|postgres|both]

The local WhatsApp Cloud, Twilio and SMTP servers of tests/messaging_servers.py run on loopback, each taking
--delay seconds between accepting a message and answering (a real provider's latency: the window in which a
killed worker has sent a message without learning it). A workspace gets the three channels configured with
configure_channel, customers with consent, and --messages messages queued through send_message, spread over the
three channels (the WhatsApp ones as an approved template). Then `favmcp worker` runs as a subprocess and is
killed with SIGKILL --kills times, each time at a random moment after a provider received something, and started
again at once; the last one delivers what is left.

Reported, per engine: messages; kills; lost (never reached its provider: must be 0); duplicated (reached it more
than once, counted by our message id: WhatsApp's biz_opaque_callback_data, Twilio's StatusCallback `m=`, the
mail's Message-ID; providers take no idempotency key, so only a message in flight when its worker died can be
sent twice); and what the database says at the end (every message `sent`, none queued or failed).

With --callbacks SECONDS the app also serves HTTP (`favmcp serve --http`, never killed, no dispatcher) and the local
WhatsApp and Twilio report every accepted message `sent` that long after, signed, as the real ones do. A message
whose worker died after the provider accepted it is then marked sent by the callback, and the outbox, taking the
row again once the dead worker's lease is over, finds it sent and does not send it again: duplicates remain only
where the callback came later than the retry, and on SMTP, which reports nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlmodel import col

from kill_worker import Workers, engines, free_port, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.messaging_servers: the local providers

from tests.messaging_servers import Providers, configure_channels, running_providers

from favmcp import logging as favlog
from favmcp.app import App
from favmcp.config import Settings
from favmcp.demo import ensure_demo
from favmcp.domains.messaging.models import Message, MessageTemplate, TemplateStatus

SECRET = "kill-messaging-secret"
CHANNELS = ("whatsapp", "sms", "email")
DELIVERY_TIMEOUT = 60.0  # seconds a worker may take to deliver something (a dead worker's lease is far shorter)
NO_APPROVALS = {
    "rules": [{"channel": c, "kind": k, "needs_approval": False} for c in CHANNELS for k in ("marketing", "free_text")]
}


def environment(home: Path, url: str, providers: Providers, public_url: str) -> dict[str, str]:
    return {
        "FAVMCP_HOME": str(home),
        "FAVMCP_DATABASE_URL": url,
        "FAVMCP_SECRET_KEY": SECRET,
        "FAVMCP_PUBLIC_URL": public_url,
        "FAVMCP_WHATSAPP_API_BASE": providers.whatsapp.base,
        "FAVMCP_TWILIO_API_BASE": providers.twilio.base,
        "FAVMCP_ALLOW_PRIVATE_TARGETS": "1",
        "FAVMCP_LOG_LEVEL": "WARNING",
    }


async def call(app: App, key: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await app.runner.call(tool, args, credential=key)
    if not result.ok:
        raise RuntimeError(f"{tool} failed: {result.data}")
    return dict(result.data)


async def fill(env: dict[str, str], providers: Providers, count: int) -> tuple[set[str], str]:
    """Channels, customers, templates, and `count` queued messages; returns their ids and the WhatsApp channel's."""
    favlog.configure("WARNING")  # the set-up's own tool calls are not part of the figures
    app = await App.open(Settings.from_env(env), upgrade=True)
    try:
        key = (await ensure_demo(app)).api_key
        await call(app, key, "set_approval_policy", NO_APPROVALS)
        whatsapp_channel = (await configure_channels(app, key, providers))["whatsapp"]["id"]
        templates = {}
        for channel in CHANNELS:
            args: dict[str, Any] = {"channel": channel, "name": f"visit_{channel}", "kind": "transactional"}
            args |= {"body": "Hi {{first_name}}, see you on {{day}}.", "variables": ["first_name", "day"]}
            if channel == "email":
                args["subject"] = "Your visit"
            templates[channel] = (await call(app, key, "create_message_template", args))["id"]
        async with app.db.transaction() as session:  # Meta's review, approved (its webhook is tested elsewhere)
            await session.execute(
                update(MessageTemplate)
                .where(col(MessageTemplate.id) == templates["whatsapp"])
                .values(status=TemplateStatus.approved)
            )
        ids: set[str] = set()
        members = (count + len(CHANNELS) - 1) // len(CHANNELS)
        for n in range(members):
            tag = uuid.uuid4().hex[:8]
            member = await call(
                app,
                key,
                "create_member",
                {"name": f"Customer {n}", "email": f"c{n}.{tag}@example.com", "phone": f"+3161{n:07d}"},
            )
            for channel in CHANNELS:
                if len(ids) >= count:
                    break
                consent = {"member_id": member["id"], "channel": channel, "granted": True, "source": "kill test"}
                await call(app, key, "set_marketing_consent", consent)
                args = {"member_id": member["id"], "channel": channel, "template_id": templates[channel]}
                sent = await call(app, key, "send_message", {**args, "variables": {"day": f"day {n}"}})
                ids.add(sent["message"]["id"])
            if n % 100 == 99:
                print(f"  queued {len(ids)} messages", flush=True)
        return ids, whatsapp_channel
    finally:
        await app.close()


async def final_states(env: dict[str, str]) -> dict[str, int]:
    app = await App.open(Settings.from_env(env))
    try:
        async with app.db.transaction() as session:
            stmt = select(col(Message.status), func.count()).where(col(Message.direction) == "outbound")
            rows = (await session.execute(stmt.group_by(col(Message.status)))).all()
        return {str(status.value if hasattr(status, "value") else status): int(n) for status, n in rows}
    finally:
        await app.close()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def arrivals(providers: Providers) -> Counter[str]:
    """How many copies of each of our messages the providers accepted."""
    copies: Counter[str] = Counter()
    for found in by_channel(providers).values():
        copies.update(found)
    return copies


def by_channel(providers: Providers) -> dict[str, Counter[str]]:
    found = zip(
        CHANNELS,
        (providers.whatsapp.by_message_id(), providers.twilio.by_message_id(), providers.mail.by_our_id()),
        strict=True,
    )
    return {channel: Counter({m: len(requests) for m, requests in got.items()}) for channel, got in found}


@dataclass
class Report:
    engine: str
    messages: int
    kills: int
    lost: int
    duplicated: int
    extra_copies: int
    states: dict[str, int]
    seconds: float
    duplicated_by_channel: dict[str, int]


def run(engine: str, url: str, home: Path, args: argparse.Namespace, rng: random.Random) -> Report:
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    with running_providers() as providers:
        for server in (providers.whatsapp, providers.twilio):
            server.delay = args.delay
        providers.mail.slow(args.delay)
        env = environment(home, url, providers, public_url)
        print(f"{engine}: queueing {args.messages} messages", flush=True)
        expected, whatsapp_channel = asyncio.run(fill(env, providers, args.messages))
        server_process = None
        if args.callbacks is not None:  # the app's HTTP face takes the providers' status callbacks; never killed
            server_env = os.environ | env | {"FAVMCP_NO_DISPATCHER": "1"}
            command = [sys.executable, "-m", "favmcp", "serve", "--http", "--port", str(port)]
            with (home / "server.log").open("ab") as out:
                server_process = subprocess.Popen(command, env=server_env, stdout=out, stderr=out)
            if not wait_for(lambda: _healthy(public_url), 30):
                raise RuntimeError(f"the HTTP server did not start; see {home / 'server.log'}")
            providers.whatsapp.webhook_url = f"{public_url}/hooks/whatsapp/{whatsapp_channel}"
            for server in (providers.whatsapp, providers.twilio):
                server.report_after = args.callbacks
        workers = Workers({k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")} | env, home / "w.log")
        kills = 0
        started = time.monotonic()
        try:
            workers.start()
            while kills < args.kills and len(set(arrivals(providers)) & expected) < len(expected):
                before = sum(arrivals(providers).values())
                if not wait_for(lambda: sum(arrivals(providers).values()) > before, DELIVERY_TIMEOUT):  # noqa: B023
                    raise RuntimeError(f"a worker delivered nothing in {DELIVERY_TIMEOUT} s; see {workers.log}")
                time.sleep(rng.uniform(0, args.max_life))
                workers.kill()
                kills += 1
                workers.start()  # at once, as a supervisor would
                if kills % 10 == 0:
                    print(f"  {kills} kills, {len(set(arrivals(providers)) & expected)} delivered", flush=True)
            done = wait_for(
                lambda: len(set(arrivals(providers)) & expected) >= len(expected),
                DELIVERY_TIMEOUT + len(expected) * 0.2,
            )
            if not done:
                print(f"  gave up waiting: {len(expected - set(arrivals(providers)))} messages not delivered")
            # Let the last worker settle what it sent (statuses are written after the provider answers).
            wait_for(lambda: asyncio.run(final_states(env)).get("queued", 0) == 0, 30)
        finally:
            workers.stop()
            if server_process is not None:
                server_process.terminate()
                server_process.wait(timeout=30)
        copies = arrivals(providers)
        return Report(
            engine=engine,
            messages=len(expected),
            kills=kills,
            lost=len(expected - set(copies)),
            duplicated=sum(1 for m in expected if copies[m] > 1),
            extra_copies=sum(copies[m] - 1 for m in expected if copies[m] > 1),
            states=asyncio.run(final_states(env)),
            seconds=time.monotonic() - started,
            duplicated_by_channel={
                channel: sum(1 for m, n in found.items() if m in expected and n > 1)
                for channel, found in by_channel(providers).items()
            },
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="sqlite")
    ap.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--delay", type=float, default=0.02, help="seconds a provider takes to answer")
    ap.add_argument("--max-life", type=float, default=0.5, help="longest time a worker lives after a delivery")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument(
        "--callbacks",
        type=float,
        default=None,
        metavar="SECONDS",
        help="serve the app over HTTP and have WhatsApp and Twilio report each message `sent` this long after",
    )
    args = ap.parse_args()
    rng = random.Random(args.seed)
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for engine, url, home in engines(args.engine, args.postgres, Path(tmp), "favmcp_killmsg"):
            home.mkdir(exist_ok=True)
            reports.append(run(engine, url, home, args, rng))
    print(f"{'engine':10} {'messages':>8} {'kills':>6} {'lost':>5} {'duplicated':>16} {'seconds':>8}  final states")
    for r in reports:
        duplicated = f"{r.duplicated} ({r.extra_copies} extra)"
        print(f"{r.engine:10} {r.messages:8} {r.kills:6} {r.lost:5} {duplicated:>16} {r.seconds:8.1f}  {r.states}")
    for r in reports:
        print(f"{r.engine}: duplicated by channel {r.duplicated_by_channel}")


if __name__ == "__main__":
    main()
