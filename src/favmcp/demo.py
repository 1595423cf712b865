"""`favmcp demo`: a small yoga studio with its team, hours and customers, created once in the embedded database."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from sqlalchemy.engine import make_url

from favmcp.app import App
from favmcp.auth.keys import key_hash, mint_api_key
from favmcp.auth.models import ApiKey, Role, User
from favmcp.config import Settings
from favmcp.core.ids import new_id
from favmcp.db.scoped import WorkspaceDB
from favmcp.db.tenancy import Workspace

HOURS = {day: [{"open": "07:00:00", "close": "21:00:00"}] for day in ("mon", "tue", "wed", "thu", "fri")} | {
    "sat": [{"open": "09:00:00", "close": "14:00:00"}]
}
TEAM = [
    ("Maya Jansen", "maya@lotus-studio.example", Role.owner),
    ("Daan de Vries", "daan@lotus-studio.example", Role.manager),
    ("Sofia Rossi", "sofia@lotus-studio.example", Role.staff),
    ("Liam Bakker", "liam@lotus-studio.example", Role.staff),
]


@dataclass
class DemoInfo:
    workspace_id: str
    name: str
    api_key: str


def _state_file(app: App) -> Path:
    return app.settings.home / "demo.json"


async def ensure_demo(app: App) -> DemoInfo:
    path = _state_file(app)
    if path.exists():
        saved = json.loads(path.read_text())
        async with app.db.transaction() as session:
            key = await session.get(ApiKey, saved["key_id"])
            if key is not None and key.revoked_at is None and key.key_hash == key_hash(saved["api_key"]):
                return DemoInfo(saved["workspace_id"], saved["name"], saved["api_key"])
    now = app.runner.clock.now()
    async with app.db.transaction() as session:
        ws = Workspace(
            id=new_id("ws"),
            name="Lotus Yoga Studio",
            industry="yoga studio",
            country="NL",
            timezone="Europe/Amsterdam",
            currency="EUR",
            locale="nl-NL",
            contact_email="hello@lotus-studio.example",
            contact_phone="+31201234567",
            business_hours=HOURS,
            closures=[{"date": "2026-12-25", "reason": "Christmas"}, {"date": "2027-01-01", "reason": "New Year"}],
            created_at=now,
            updated_at=now,
        )
        session.add(ws)
        await session.flush()
        users = [
            User(id=new_id("usr"), workspace_id=ws.id, email=email, name=name, role=role, created_at=now)
            for name, email, role in TEAM
        ]
        session.add_all(users)
        await session.flush()
        key, secret = mint_api_key(
            WorkspaceDB(session, ws.id), user=users[0], name="demo owner key", scopes=None,
            random=app.runner.random, now=now,
        )  # fmt: skip
    await _fill(app, secret, [u.id for u in users if u.role == Role.staff])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"workspace_id": ws.id, "name": ws.name, "key_id": key.id, "api_key": secret}, f)
    return DemoInfo(ws.id, ws.name, secret)


CUSTOMERS = [
    # name, email, phone, tags, lifecycle, note, opted in to
    ("Emma de Jong", "emma.dejong@mail.example", "+31612345001", ["vip", "morning"], "regular", None, ["email"]),
    ("Noah Visser", "noah.visser@mail.example", None, ["beginner"], "customer", "Lower back injury in 2025", []),
    ("Sophie Bakker", None, "+31612345003", ["prenatal"], "customer", "Due in March", ["sms", "whatsapp"]),
    ("Lucas Smit", "lucas@smit.example", "+31612345004", ["vip"], "regular", None, ["email", "sms"]),
    ("Julia Meijer", "julia.meijer@mail.example", None, ["evening"], "lapsed", None, []),
    ("Daan Mulder", "daan.mulder@mail.example", "+31612345006", [], "lead", "Asked about the 10-class card", []),
    ("Tess de Boer", "tess@deboer.example", None, ["beginner", "evening"], "customer", None, ["email"]),
    ("Sem Dekker", "sem.dekker@mail.example", "+31612345008", ["vip", "teacher-training"], "regular", None, []),
    ("Anna Brouwer", None, "+31612345009", ["morning"], "churned", "Moved to Utrecht", []),
    ("Finn van Dijk", "finn.vandijk@mail.example", None, ["beginner"], "lead", None, ["email"]),
]
STAFF_HOURS = {day: [{"open": "08:00", "close": "16:00"}] for day in ("mon", "tue", "wed", "thu")}


async def _fill(app: App, key: str, staff_ids: list[str]) -> None:
    """Customers and working hours, made through the tools themselves so every rule applies."""

    async def call(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        result = await app.runner.call(tool, args, credential=key)
        if not result.ok:
            raise RuntimeError(f"demo data: {tool} failed: {result.data['error']['message']}")
        return result.data

    for name, email, phone, tags, lifecycle, note, opted_in in CUSTOMERS:
        contact = {k: v for k, v in (("email", email), ("phone", phone)) if v}
        consent = [{"channel": channel, "granted": True} for channel in opted_in]
        made = await call(
            "create_member",
            {"name": name, **contact, "tags": tags, "lifecycle": lifecycle, "source": "demo", "consent": consent},
        )
        if note:
            await call("add_member_note", {"member_id": made["id"], "body": note})
    for user_id in staff_ids:
        await call("set_staff_working_hours", {"user_id": user_id, "weekly": STAFF_HOURS})


def server_env(info: DemoInfo, settings: Settings) -> dict[str, str]:
    """What a stdio client must set to reach this same database with this key."""
    env = {"FAVMCP_API_KEY": info.api_key, "FAVMCP_HOME": str(settings.home)}
    if not settings.database_url.startswith("sqlite"):
        env["FAVMCP_DATABASE_URL"] = settings.database_url
    return env


def stdio_command() -> list[str]:
    """How a client starts this favmcp over stdio, in a form that outlives this run.

    `uvx` runs a tool from a throwaway environment in uv's cache (and puts it first on PATH), whose path changes
    when the cache is cleaned or the source changes: a config naming it breaks later. So: an installed `favmcp`
    command, else this interpreter, else uvx again from the same source.
    """
    installed = shutil.which("favmcp")
    if installed and not _in_uv_cache(installed):
        return [installed, "serve"]
    if not _in_uv_cache(sys.prefix):  # the environment, not the interpreter: that is a link to a base Python
        return [sys.executable, "-m", "favmcp", "serve"]
    return [shutil.which("uvx") or "uvx", "--from", _installed_from(), "favmcp", "serve"]


def _in_uv_cache(path: str) -> bool:
    cache = os.environ.get("UV_CACHE_DIR") or (
        Path(os.environ.get("LOCALAPPDATA", "~")) / "uv" / "cache"
        if os.name == "nt"
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "uv"
    )
    return Path(path).resolve().is_relative_to(Path(cache).expanduser().resolve())


def _installed_from() -> str:
    """What `uvx --from` installs this same favmcp from: the checkout or the URL it was built from (PEP 610), or
    the package index."""
    try:
        direct = distribution("favmcp").read_text("direct_url.json")
    except PackageNotFoundError:
        direct = None
    if not direct:
        return "favmcp"
    origin = json.loads(direct)
    if "dir_info" in origin:
        return url2pathname(unquote(urlparse(origin["url"]).path))
    if "vcs_info" in origin:
        return f"{origin['vcs_info']['vcs']}+{origin['url']}@{origin['vcs_info']['commit_id']}"
    return str(origin["url"])


def banner(info: DemoInfo, settings: Settings, host: str, port: int, *, serving: bool) -> str:
    url = f"http://{host}:{port}/mcp"
    command, *args = stdio_command()
    claude = {"mcpServers": {"favmcp": {"command": command, "args": args, "env": server_env(info, settings)}}}
    cursor = {"mcpServers": {"favmcp": {"url": url, "headers": {"Authorization": f"Bearer {info.api_key}"}}}}
    return "\n".join(
        [
            f"Demo workspace: {info.name} ({info.workspace_id})",
            f"Owner API key:  {info.api_key}",
            f"Data:           {make_url(settings.database_url).render_as_string(hide_password=True)}",
            "",
            "Claude Desktop (claude_desktop_config.json), over stdio:",
            json.dumps(claude, indent=2),
            "",
            "Cursor (.cursor/mcp.json), over HTTP while this runs:",
            json.dumps(cursor, indent=2),
        ]
        + (["", f"Serving MCP at {url} (health: http://{host}:{port}/healthz). Ctrl-C to stop."] if serving else [])
    )
