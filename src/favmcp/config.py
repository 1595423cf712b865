"""Configuration from the environment. Zero configuration works: SQLite in the user's data directory."""

from __future__ import annotations

import importlib
import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_data_dir

# The Host values an HTTP server always accepts (its own loopback names); FAVMCP_ALLOWED_HOSTS adds more.
LOCAL_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Settings:
    home: Path
    database_url: str
    secret_key: bytes  # the newest secret: what is sealed and signed now
    smtp_url: str | None = None
    mail_from: str = "favmcp <no-reply@favmcp.local>"
    toolsets: frozenset[str] | None = None
    read_only: bool = False
    api_key: str | None = None
    allowed_hosts: list[str] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)
    run_dispatcher: bool = True
    trusted_proxies: list[str] = field(default_factory=list)
    # Every secret still in use, newest first: stored values sealed before a rotation open with an older one.
    secret_keys: tuple[bytes, ...] = ()
    # Stripe for a single-business install (a workspace's own keys, set through update_workspace, come first).
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None  # Stripe's API unless set (tests point it at a local server)
    # Where people reach this server from outside (payment pages send them back here); None: not reachable.
    public_url: str | None = None
    # Messaging providers' API addresses (tests point them at local servers that speak the same protocol).
    whatsapp_api_base: str = "https://graph.facebook.com"
    twilio_api_base: str = "https://api.twilio.com"
    # Whether webhook URLs and SMTP hosts may be loopback or private addresses (an operator's choice, and tests').
    allow_private_targets: bool = False
    # Tool calls per minute per credential (or client address, without one), per class: read-only tools, other
    # tools, and open-world tools (they reach customers). 0: no limit.
    rate_limit_reads: int = 1200
    rate_limit_writes: int = 300
    rate_limit_sends: int = 60
    # /metrics: None is off; "1" serves it to loopback requests only; any other value is the scraper's bearer token.
    metrics: str | None = None
    # OpenTelemetry traces (FAVMCP_OTEL=1, the otel extra): a span per tool call, exported as the OTEL_* variables say.
    otel: bool = False
    # FAVMCP_CACHE_DIR, for what a server keeps between starts (see cache_dir).
    cache: Path | None = None

    def __post_init__(self) -> None:
        if not self.secret_keys:
            self.secret_keys = (self.secret_key,)

    @property
    def cache_dir(self) -> Path:
        """Where a server keeps its tool listing between starts: home/cache unless FAVMCP_CACHE_DIR says. Entries are
        keyed by everything they are made from (transports/listing.py), so servers of different homes may share one."""
        return self.cache or self.home / "cache"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = _private_home(Path(env.get("FAVMCP_HOME") or user_data_dir("favmcp", appauthor=False)))
        url = async_driver(env.get("FAVMCP_DATABASE_URL") or f"sqlite+aiosqlite:///{home / 'favmcp.db'}")
        toolsets = env.get("FAVMCP_TOOLSETS")
        keys = _secret_keys(env, home)
        return cls(
            home=home,
            database_url=url,
            secret_key=keys[0],
            secret_keys=keys,
            smtp_url=env.get("FAVMCP_SMTP_URL") or None,
            mail_from=env.get("FAVMCP_MAIL_FROM") or cls.mail_from,
            toolsets=parse_toolsets(toolsets),
            read_only=_flag(env.get("FAVMCP_READ_ONLY")),
            api_key=env.get("FAVMCP_API_KEY") or None,
            allowed_hosts=_list(env.get("FAVMCP_ALLOWED_HOSTS")),
            allowed_origins=_list(env.get("FAVMCP_ALLOWED_ORIGINS")),
            run_dispatcher=not _flag(env.get("FAVMCP_NO_DISPATCHER")),
            trusted_proxies=_proxies(env.get("FAVMCP_TRUSTED_PROXIES")),
            stripe_secret_key=env.get("FAVMCP_STRIPE_SECRET_KEY") or None,
            stripe_webhook_secret=env.get("FAVMCP_STRIPE_WEBHOOK_SECRET") or None,
            stripe_api_base=(env.get("FAVMCP_STRIPE_API_BASE") or "").rstrip("/") or None,
            public_url=(env.get("FAVMCP_PUBLIC_URL") or "").rstrip("/") or None,
            whatsapp_api_base=(env.get("FAVMCP_WHATSAPP_API_BASE") or cls.whatsapp_api_base).rstrip("/"),
            twilio_api_base=(env.get("FAVMCP_TWILIO_API_BASE") or cls.twilio_api_base).rstrip("/"),
            allow_private_targets=_flag(env.get("FAVMCP_ALLOW_PRIVATE_TARGETS")),
            rate_limit_reads=_per_minute(env, "FAVMCP_RATE_LIMIT_READS", cls.rate_limit_reads),
            rate_limit_writes=_per_minute(env, "FAVMCP_RATE_LIMIT_WRITES", cls.rate_limit_writes),
            rate_limit_sends=_per_minute(env, "FAVMCP_RATE_LIMIT_SENDS", cls.rate_limit_sends),
            metrics=env.get("FAVMCP_METRICS") or None,
            otel=_otel(env.get("FAVMCP_OTEL")),
            cache=Path(env["FAVMCP_CACHE_DIR"]) if env.get("FAVMCP_CACHE_DIR") else None,
        )


# URLs as hosting providers and other tools write them, mapped to the async drivers favmcp runs on.
DRIVERS = {"postgres": "postgresql+asyncpg", "postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}


def async_driver(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{DRIVERS.get(scheme, scheme)}{sep}{rest}"


def parse_toolsets(value: str | None) -> frozenset[str] | None:
    names = _list(value)
    return frozenset(names) if names else None


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _per_minute(env: dict[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise ValueError(f"{name}: {value!r} is not a number of calls per minute (0 for no limit)")
    return int(value)


def _otel(value: str | None) -> bool:
    """FAVMCP_OTEL=1 needs the otel extra: checked here, so that a server without it stops before opening anything."""
    if not _flag(value):
        return False
    for module in ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise ValueError(
                f'FAVMCP_OTEL=1 needs OpenTelemetry, which is not installed ({module}): pip install "favmcp[otel]"'
            ) from None
    return True


def _private_home(home: Path) -> Path:
    """FAVMCP_HOME holds the database, the secret key and the saved key: only its owner may look inside."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = home.stat()
    if os.name == "posix" and info.st_uid == os.getuid() and info.st_mode & 0o077:
        home.chmod(0o700)
    return home


def _proxies(value: str | None) -> list[str]:
    """Addresses or networks of the reverse proxies whose X-Forwarded-For names the client."""
    proxies = _list(value)
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ValueError(f"FAVMCP_TRUSTED_PROXIES: {proxy!r} is not an IP address or network") from None
    return proxies


def _secret_keys(env: dict[str, str], home: Path) -> tuple[bytes, ...]:
    """FAVMCP_SECRET_KEYS (newest first) and FAVMCP_SECRET_KEY (the oldest when both are set); replicas must
    share them. Without either, one generated once and kept in home."""
    keys = _list(env.get("FAVMCP_SECRET_KEYS"))
    single = env.get("FAVMCP_SECRET_KEY") or ""  # used exactly as given, as it always was
    if single and single not in keys:
        keys.append(single)
    if keys:
        return tuple(key.encode() for key in keys)
    return (_generated_secret_key(home),)


def _generated_secret_key(home: Path) -> bytes:
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
