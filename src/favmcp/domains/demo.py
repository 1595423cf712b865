"""`favmcp demo`: a small yoga studio with a team and opening hours, created once in the embedded database."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from favmcp.app import App
from favmcp.auth.keys import key_hash
from favmcp.auth.models import ApiKey, Role, User
from favmcp.config import Settings
from favmcp.core.ids import new_id
from favmcp.domains.access.service import mint_api_key
from favmcp.domains.workspace.models import Workspace

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
            session, user=users[0], name="demo owner key", scopes=None,
            random=app.runner.random, now=now,
        )  # fmt: skip
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"workspace_id": ws.id, "name": ws.name, "key_id": key.id, "api_key": secret}, f)
    return DemoInfo(ws.id, ws.name, secret)


def server_env(info: DemoInfo, settings: Settings) -> dict[str, str]:
    """What a stdio client must set to reach this same database with this key."""
    env = {"FAVMCP_API_KEY": info.api_key, "FAVMCP_HOME": str(settings.home)}
    if not settings.database_url.startswith("sqlite"):
        env["FAVMCP_DATABASE_URL"] = settings.database_url
    return env


def banner(info: DemoInfo, settings: Settings, host: str, port: int, *, serving: bool) -> str:
    url = f"http://{host}:{port}/mcp"
    claude = {
        "mcpServers": {
            "favmcp": {
                # This very installation, so the config works whether favmcp came from uvx, pip or a checkout.
                "command": sys.executable,
                "args": ["-m", "favmcp", "serve"],
                "env": server_env(info, settings),
            }
        }
    }
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
