"""Configuration from the environment. Zero configuration works: SQLite in the user's data directory."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_data_dir


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Settings:
    home: Path
    database_url: str
    secret_key: bytes
    smtp_url: str | None = None
    mail_from: str = "favmcp <no-reply@favmcp.local>"
    toolsets: frozenset[str] | None = None
    read_only: bool = False
    api_key: str | None = None
    allowed_hosts: list[str] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)
    run_dispatcher: bool = True

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("FAVMCP_HOME") or user_data_dir("favmcp", appauthor=False))
        home.mkdir(parents=True, exist_ok=True)
        url = env.get("FAVMCP_DATABASE_URL") or f"sqlite+aiosqlite:///{home / 'favmcp.db'}"
        toolsets = env.get("FAVMCP_TOOLSETS")
        return cls(
            home=home,
            database_url=url,
            secret_key=_secret_key(env, home),
            smtp_url=env.get("FAVMCP_SMTP_URL") or None,
            mail_from=env.get("FAVMCP_MAIL_FROM") or cls.mail_from,
            toolsets=parse_toolsets(toolsets),
            read_only=_flag(env.get("FAVMCP_READ_ONLY")),
            api_key=env.get("FAVMCP_API_KEY") or None,
            allowed_hosts=_list(env.get("FAVMCP_ALLOWED_HOSTS")),
            allowed_origins=_list(env.get("FAVMCP_ALLOWED_ORIGINS")),
            run_dispatcher=not _flag(env.get("FAVMCP_NO_DISPATCHER")),
        )


def parse_toolsets(value: str | None) -> frozenset[str] | None:
    names = _list(value)
    return frozenset(names) if names else None


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _secret_key(env: dict[str, str], home: Path) -> bytes:
    """FAVMCP_SECRET_KEY when set (replicas must share it); otherwise one generated once and kept in home."""
    if env.get("FAVMCP_SECRET_KEY"):
        return env["FAVMCP_SECRET_KEY"].encode()
    path = home / "secret_key"
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first; use theirs
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()
