"""The favmcp command: serve, worker, demo, signup, invite, tools, call, keys, db, outbox, secrets.

A command imports what it uses when it runs: `favmcp tools list` and `--help` never load the database layer or
the domains, and no command loads the HTTP server unless it serves HTTP.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from favmcp import __version__
from favmcp.config import Settings, parse_toolsets

if TYPE_CHECKING:
    from favmcp.app import App
    from favmcp.registry.spec import ToolSpec

T = TypeVar("T")

# Plain help (no rich markup mode): typer's rich panels print `<bool>` beside every flag, as if it took a value.
cli = typer.Typer(
    name="favmcp",
    help="favmcp: the agentic backend for service businesses, served over MCP (stdio or HTTP).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def command_group(name: str, help: str) -> typer.Typer:
    group = typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)
    cli.add_typer(group, name=name)
    return group


signup_cli = command_group("signup", "Sign up a new business from the terminal (email code).")
invite_cli = command_group("invite", "Join a team you were invited to (email code).")
tools_cli = command_group("tools", "Inspect the tools this server offers.")
keys_cli = command_group("keys", "API keys, for a local operator with access to the database.")
db_cli = command_group("db", "Database schema.")
outbox_cli = command_group("outbox", "Messages waiting in or sent from the outbox.")
secrets_cli = command_group("secrets", "Stored secrets, sealed with the server secret.")


def fail(message: str) -> None:
    typer.echo(f"favmcp: {message}", err=True)
    raise typer.Exit(1)


def settings(toolsets: str | None = None, read_only: bool = False) -> Settings:
    try:
        s = Settings.from_env()
    except ValueError as exc:
        fail(str(exc))
    if toolsets:
        s.toolsets = parse_toolsets(toolsets)
    if read_only:
        s.read_only = True
    return s


def run(fn: Callable[[], Awaitable[T]], *, log_level: str = "WARNING") -> T:
    """Run a command; long-running ones log every call (INFO), one-shot ones only problems."""
    import importlib.util

    import anyio

    from favmcp import logging as favlog

    favlog.configure(os.environ.get("FAVMCP_LOG_LEVEL", log_level))
    try:
        return anyio.run(_settled, fn, backend_options={"use_uvloop": importlib.util.find_spec("uvloop") is not None})
    except Exception as exc:
        message = failure_message(exc)
        if message is None:
            raise
        fail(message)
    raise AssertionError("unreachable")


def failure_message(exc: Exception) -> str | None:
    """What a command says when it cannot run for a reason the person can fix (None: a bug, shown whole)."""
    if isinstance(exc, OSError):  # the database server could not be reached
        return (
            f"cannot reach the database at {_database_named()}: {exc}; is it running, and is FAVMCP_DATABASE_URL right?"
        )
    if isinstance(exc, (ValueError, RuntimeError)):
        return str(exc)
    # SQLAlchemy is imported here rather than up front: a stdio server answers its tool list before loading it.
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        reason = str(exc.orig if isinstance(exc, DBAPIError) else exc).splitlines()[0]
        return f"database error at {_database_named()}: {reason}"
    return None


def _database_named() -> str:
    """The database the command used, as the person configured it, with any password masked."""
    from sqlalchemy.engine import make_url

    url = os.environ.get("FAVMCP_DATABASE_URL")
    if not url:
        return "the SQLite file in FAVMCP_HOME"
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ValueError:
        return "FAVMCP_DATABASE_URL (not a database URL)"


async def _settled(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a command, then let SQLite's worker threads finish while the event loop still runs.

    aiosqlite runs each connection on a thread that reports back to the loop. When a connection fails to open
    (no such directory, no permission), it queues the thread's stop without waiting for it; if the loop closed
    first, that thread printed `RuntimeError: Event loop is closed` under the command's one error line.
    """
    import anyio

    try:
        return await fn()
    finally:
        await anyio.to_thread.run_sync(_join_sqlite_workers, abandon_on_cancel=True)


def _join_sqlite_workers(timeout: float = 5.0) -> None:
    import threading
    import time

    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):  # aiosqlite's, named after its target
            thread.join(max(0.0, deadline - time.monotonic()))


async def open_app(s: Settings, *, upgrade: bool = False) -> App:
    from favmcp.app import App

    app = await App.open(s, upgrade=upgrade)
    settle()
    return app


def settle() -> None:
    """Start-up is over: what it made (modules, models, schemas) lives as long as the process. Frozen, it is never
    scanned again, so the collector, off until now (see main), costs the rest of the command next to nothing."""
    gc.freeze()
    gc.enable()


# -- saved credential ---------------------------------------------------------------------------------


def config_path(s: Settings) -> Path:
    return s.home / "config.json"


def save_key(s: Settings, key: str, workspace_id: str) -> Path:
    path = config_path(s)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"api_key": key, "workspace_id": workspace_id}, f)
    os.chmod(path, 0o600)
    return path


def saved_key(s: Settings) -> str | None:
    if s.api_key:
        return s.api_key
    path = config_path(s)
    if path.exists():
        return str(json.loads(path.read_text()).get("api_key") or "") or None
    return None


def print_result(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


# -- serve, worker, db ----------------------------------------------------------------------------------

Toolsets = Annotated[
    str | None,
    typer.Option(help="Domains to serve, e.g. members,bookings; or core: list the core tools, all stay callable."),
]
ReadOnly = Annotated[bool, typer.Option("--read-only", help="List only read-only tools; refuse the rest.")]


@cli.command()
def serve(
    http: Annotated[bool, typer.Option("--http", help="Streamable HTTP at /mcp instead of stdio.")] = False,
    host: Annotated[str, typer.Option(help="HTTP bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8765,
    workers: Annotated[int, typer.Option(min=1, help="HTTP worker processes, one core each (Postgres only).")] = 1,
    toolsets: Toolsets = None,
    read_only: ReadOnly = False,
) -> None:
    """Serve MCP over stdio, or over streamable HTTP with --http. Each server also delivers the outbox unless
    FAVMCP_NO_DISPATCHER=1."""
    s = settings(toolsets, read_only)
    if workers > 1:
        if not http:
            fail("--workers is for --http: a stdio server has one client.")
        if s.database_url.startswith("sqlite"):
            fail(
                f"--workers {workers} needs Postgres (FAVMCP_DATABASE_URL). Processes sharing one SQLite file would "
                "each have their own write queue and race for the file's lock again; serve SQLite with one worker."
            )
    if http:
        ensure_port_free(host, port)
    if workers > 1:
        serve_http_workers(s, host, port, workers)
        return

    async def main() -> None:
        if not http:
            from favmcp.transports.stdio import serve_stdio

            await serve_stdio(s, saved_key(s))
            return
        app = await open_app(s)
        try:
            announce(host, port)
            await serve_http(app, host, port)
        finally:
            await app.close()

    run(main, log_level="INFO")


def announce(host: str, port: int, workers: int = 1) -> None:
    processes = f" in {workers} worker processes" if workers > 1 else ""
    typer.echo(
        f"favmcp: serving MCP at http://{host}:{port}/mcp{processes} (health: /healthz). Ctrl-C to stop.", err=True
    )


def ensure_port_free(host: str, port: int) -> None:
    """Say so before anything else when the port is taken, rather than announce a server that cannot start."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port} ({exc.strerror}); is another server running? Pick one with --port.")


def uvicorn_options(s: Settings, host: str, port: int) -> dict[str, Any]:
    # Proxy headers are believed only from the proxies the operator named; otherwise anyone could pick the client
    # address that rate limits count against.
    trusted = ",".join(s.trusted_proxies)
    return {
        "host": host,
        "port": port,
        "log_level": "warning",
        "log_config": None,  # uvicorn's own handlers would print plain lines beside favmcp's structured ones
        "lifespan": "on",
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or "",
    }


async def serve_http(app: App, host: str, port: int) -> None:
    import uvicorn

    from favmcp.transports.http import build_http_app

    server = uvicorn.Server(uvicorn.Config(build_http_app(app), **uvicorn_options(app.settings, host, port)))
    settle()  # the HTTP stack too
    await server.serve()


def serve_http_workers(s: Settings, host: str, port: int, workers: int) -> None:
    """uvicorn's worker processes, each calling the app factory and opening its own pool and dispatcher."""
    import uvicorn

    async def check() -> None:  # an unreachable database or an old schema, said once and clearly, before any worker
        await (await open_app(s)).close()

    run(check)
    # Workers read their settings from the environment, as any replica does: hand on what the command line chose.
    if s.toolsets is not None:
        os.environ["FAVMCP_TOOLSETS"] = ",".join(sorted(s.toolsets))
    if s.read_only:
        os.environ["FAVMCP_READ_ONLY"] = "1"
    announce(host, port, workers)
    uvicorn.run("favmcp.transports.http:create_app", factory=True, workers=workers, **uvicorn_options(s, host, port))


@cli.command()
def worker() -> None:
    """Deliver the outbox and run scheduled jobs.

    Jobs are renewals and reconciliation; no tools are served. Several workers may run against one Postgres."""
    s = settings()

    async def main() -> None:
        app = await open_app(s)
        try:
            await app.run_background()
        finally:
            await app.close()

    run(main, log_level="INFO")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations shipped with this version."""
    s = settings()

    async def main() -> None:
        app = await open_app(s, upgrade=True)
        await app.close()
        typer.echo("database schema is up to date")

    run(main)


# -- tools and calls ------------------------------------------------------------------------------------


@tools_cli.command("list")
def tools_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    toolsets: Toolsets = None,
    read_only: ReadOnly = False,
    profile: Annotated[
        str | None,
        typer.Option(help="Only a profile's tools: readonly, front_desk, marketing, finance or owner."),
    ] = None,
) -> None:
    """List the tools with their hints, scope and gate."""
    s = settings(toolsets, read_only)
    if s.toolsets is None and not s.read_only and profile is None:
        tools = exported_tools()
    else:  # the server's own filters, so that the listing is exactly what `serve` with them lists
        from favmcp.composition import all_specs
        from favmcp.registry import profiles
        from favmcp.registry.registry import Registry

        try:
            registry = Registry(all_specs(), toolsets=s.toolsets, read_only=s.read_only)
            if profile is not None:
                registry = registry.narrowed(profiles.profile(profile))
        except ValueError as exc:
            fail(str(exc))
        tools = [_tool_row(spec) for spec in registry.tools_list()]
    tools.sort(key=lambda t: (t["domain"], t["name"]))
    if as_json:
        print_result({"tools": tools})
        return
    typer.echo(f"{'TOOL':34} {'HINTS':6} {'SCOPE':20} {'GATE':8} TITLE")
    for t in tools:
        typer.echo(f"{t['name']:34} {t['hints']:6} {t['scope']:20} {t['gate'] or '-':8} {t['title']}")
    typer.echo(
        "\nHINTS: R read-only, W writes, D destructive, I idempotent (a repeat changes nothing more), "
        "O reaches the outside world.\nGATE: confirm = a preview and a token first; approval = may wait for a "
        "person, as the approval policy says."
    )


def exported_tools() -> list[dict[str, Any]]:
    """Every tool as schemas/ describes it. Those files are generated from the registry, shipped in the package
    and kept fresh by a test; reading them spares loading the domains and the database layer (a second or so)."""
    from favmcp.resources import data_dir

    root = data_dir("schemas")
    tools = []
    for entry in json.loads((root / "index.json").read_text())["tools"]:
        title = json.loads((root / entry["domain"] / f"{entry['name']}.json").read_text())["title"]
        hints = _hints(entry["readOnlyHint"], entry["destructiveHint"], entry["idempotentHint"], entry["openWorldHint"])
        tools.append(
            {"name": entry["name"], "domain": entry["domain"], "title": title, "scope": entry["scope"],
             "gate": entry["gate"], "hints": hints}
        )  # fmt: skip
    return tools


def _tool_row(spec: ToolSpec) -> dict[str, Any]:
    e = spec.effect
    hints = _hints(e.read_only, e.destructive, e.idempotent, e.open_world)
    return {"name": spec.name, "domain": spec.domain, "title": spec.title, "scope": spec.scope, "gate": spec.gate,
            "hints": hints}  # fmt: skip


def _hints(read_only: bool, destructive: bool, idempotent: bool, open_world: bool) -> str:
    letters = ["R" if read_only else ("D" if destructive else "W")]
    letters += ["I"] * idempotent + ["O"] * open_world
    return " ".join(letters)


@tools_cli.command("describe")
def tools_describe(name: str) -> None:
    """One tool's description, schemas, hints, scope and gate."""
    call_and_print("describe_tool", {"name": name}, anonymous=True)


@cli.command("call")
def call(
    tool: str,
    arguments: Annotated[
        str, typer.Argument(help="The arguments as a JSON object; - reads them from standard input, @FILE from a file.")
    ] = "{}",
    anonymous: Annotated[bool, typer.Option("--anonymous", help="Call without a key (public tools).")] = False,
) -> None:
    """Call a tool with JSON arguments. Runs as the saved key, or FAVMCP_API_KEY, or --anonymous."""
    if arguments == "-":
        arguments = sys.stdin.read()
    elif arguments.startswith("@"):
        try:
            arguments = Path(arguments[1:]).read_text()
        except OSError as exc:
            fail(f"cannot read the arguments from {arguments[1:]}: {exc.strerror}")
    try:
        args = json.loads(arguments)
    except json.JSONDecodeError as exc:
        fail(f"the arguments are not JSON: {exc}")
    if not isinstance(args, dict):
        fail("the arguments must be a JSON object")
    call_and_print(tool, args, anonymous=anonymous)


def call_and_print(tool: str, args: dict[str, Any], *, anonymous: bool = False) -> dict[str, Any]:
    s = settings()

    async def main() -> Any:
        app = await open_app(s)
        try:
            result = await app.runner.call(tool, args, credential=None if anonymous else saved_key(s))
            if result.ok and not app.registry.specs[tool].effect.read_only:  # a read queues no mail to deliver
                await app.dispatcher.run_once()
            return result
        finally:
            await app.close()

    result = run(main)
    if not result.ok:
        err = result.data["error"]
        hint = f" ({err['hint']})" if err.get("hint") else ""
        fields = "".join(f"; {f['field']}: {f['message']}" for f in err.get("field_errors", []))
        if err["code"] == "confirmation_required":
            print_result(err)
        fail(f"{err['code']}: {err['message']}{fields}{hint}")
    print_result(result.data)
    return dict(result.data)


# -- signup and invites ---------------------------------------------------------------------------------


@signup_cli.command("request")
def signup_request(
    email: Annotated[str, typer.Option(help="Owner's email; the code goes there.")],
    organisation: Annotated[str, typer.Option(help="Name of the business.")],
    owner_name: Annotated[str, typer.Option(help="Owner's name.")],
    country: Annotated[
        str | None, typer.Option(help="ISO 3166 country, e.g. NL: phone numbers may then be written as at home.")
    ] = None,
    timezone: Annotated[str, typer.Option(help="IANA timezone.")] = "UTC",
    currency: Annotated[str, typer.Option(help="ISO 4217 currency.")] = "EUR",
) -> None:
    """Email a 6-digit signup code; then run `favmcp signup verify`."""
    args = {"email": email, "organisation_name": organisation, "owner_name": owner_name, "timezone": timezone,
            "currency": currency}  # fmt: skip
    if country is not None:
        args["country"] = country
    call_and_print("register_organisation_request", args, anonymous=True)


@signup_cli.command("verify")
def signup_verify(
    request_id: Annotated[str, typer.Option(help="request_id from `signup request`.")],
    code: Annotated[str, typer.Option(help="The 6-digit code from the email.")],
    show_key: Annotated[bool, typer.Option("--show-key", help="Print the key in full.")] = False,
) -> None:
    """Verify the code and create the workspace. Saves the owner key to a file only you can read."""
    verify_and_keep_key("register_organisation_verify", request_id, code, show_key, "workspace {workspace_id} created")


@invite_cli.command("accept")
def invite_accept(token: Annotated[str, typer.Argument(help="The invite token from the invite email.")]) -> None:
    """Email a code to the invited address. Then run `favmcp invite verify`."""
    call_and_print("accept_team_invite_request", {"invite_token": token}, anonymous=True)


@invite_cli.command("verify")
def invite_verify(
    request_id: Annotated[str, typer.Option(help="request_id from `invite accept`.")],
    code: Annotated[str, typer.Option(help="The 6-digit code from the email.")],
    show_key: Annotated[bool, typer.Option("--show-key", help="Print the key in full.")] = False,
) -> None:
    """Verify the code and join the team. Saves your own key to a file only you can read."""
    verify_and_keep_key(
        "accept_team_invite_verify", request_id, code, show_key, "joined workspace {workspace_id} as {role}"
    )


def verify_and_keep_key(tool: str, request_id: str, code: str, show_key: bool, done: str) -> None:
    """Call a *_verify tool, say what it did (`done`, formatted with its answer) and save the key it returns,
    unless another key is saved: that one is kept (a key is shown once, so replacing it would lose it) and the
    new one printed in full instead."""
    from favmcp.auth.keys import mask

    s = settings()

    async def main() -> Any:
        app = await open_app(s)
        try:
            return await app.runner.call(tool, {"request_id": request_id, "code": code}, credential=None)
        finally:
            await app.close()

    result = run(main)
    if not result.ok:
        fail(f"{result.data['error']['code']}: {result.data['error']['message']}")
    made = dict(result.data)
    typer.echo(done.format(**made))
    key = made["api_key"]
    path = config_path(s)
    saved = json.loads(path.read_text()) if path.exists() else {}
    if saved.get("api_key") and saved["api_key"] != key:
        typer.echo(f"key {key} (shown this once: store it; FAVMCP_API_KEY uses it)")
        typer.echo(f"not saved: {path} already holds the key of workspace {saved.get('workspace_id')}, and keeps it")
    else:
        save_key(s, key, made["workspace_id"])
        typer.echo(f"key {key if show_key else mask(key)} saved to {path}")


# -- keys -----------------------------------------------------------------------------------------------


@keys_cli.command("create")
def keys_create(
    workspace: Annotated[str, typer.Option(help="Workspace id (ws_...).")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "operator key",
    scopes: Annotated[str | None, typer.Option(help="Comma-separated scopes; default: the owner's.")] = None,
    expires_at: Annotated[datetime | None, typer.Option(help="Expiry, ISO 8601.")] = None,
) -> None:
    """Mint a key for the workspace's first owner. Prints the secret once."""
    from favmcp import operator

    s = settings()

    async def main() -> str:
        app = await open_app(s)
        try:
            wanted = [x.strip() for x in scopes.split(",")] if scopes else None
            return await operator.create_key(app, workspace, name, wanted, expires_at)
        finally:
            await app.close()

    typer.echo(run(main))


@keys_cli.command("list")
def keys_list(workspace: Annotated[str, typer.Option(help="Workspace id (ws_...).")]) -> None:
    """Keys of a workspace (never the secrets)."""
    from favmcp import operator

    s = settings()

    async def main() -> list[dict[str, Any]]:
        app = await open_app(s)
        try:
            return await operator.list_keys(app, workspace)
        finally:
            await app.close()

    from favmcp.core.times import format_utc

    typer.echo(f"{'KEY':30} {'PREFIX':14} {'STATUS':8} {'LAST USED':21} {'SCOPES':24} NAME")
    for row in run(main):
        scopes = "(follows the role)" if row["follows_role"] else ",".join(row["scopes"])
        used = format_utc(row["last_used_at"]) if row["last_used_at"] else "never"
        typer.echo(f"{row['id']:30} {row['display_prefix']:14} {row['status']:8} {used:21} {scopes:24} {row['name']}")


@keys_cli.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key at once."""
    from favmcp import operator

    s = settings()

    async def main() -> None:
        app = await open_app(s)
        try:
            await operator.revoke_key(app, key_id)
        finally:
            await app.close()

    run(main)
    typer.echo(f"{key_id} revoked")


# -- outbox ---------------------------------------------------------------------------------------------


@outbox_cli.command("list")
def outbox_list(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Messages in the outbox, newest first. Bodies are opened: with the local channel, emails land here."""
    from cryptography.exceptions import InvalidTag
    from sqlalchemy import select
    from sqlmodel import col

    from favmcp.effects.models import OutboxMessage
    from favmcp.effects.outbox import open_body

    s = settings()

    def opened(message: OutboxMessage) -> str | None:
        """None when no configured key opens the body: it was sealed with a key dropped before `secrets reseal`."""
        try:
            return open_body(s, message)
        except InvalidTag:
            return None

    async def main() -> list[dict[str, Any]]:
        app = await open_app(s)
        try:
            async with app.db.transaction() as session:
                stmt = select(OutboxMessage).order_by(col(OutboxMessage.id).desc()).limit(limit)
                messages = list((await session.execute(stmt)).scalars())
        finally:
            await app.close()
        return [m.model_dump(mode="json") | {"body": opened(m)} for m in messages]

    rows = run(main)
    if as_json:
        print_result({"messages": rows})
        return
    for m in rows:
        typer.echo(f"{m['created_at']}  {m['status']:8} {m['channel']:6} {m['recipient']}  {m['subject']}")
        if m["body"] is None:
            body = "(sealed with a secret key no longer configured)"
        else:
            body = m["body"] or "(body purged after delivery)"
        typer.echo("    " + body.replace("\n", "\n    "))


# -- secrets --------------------------------------------------------------------------------------------


@secrets_cli.command("reseal")
def secrets_reseal(
    batch: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 500,
) -> None:
    """Seal stored secrets with the newest key. That is the first of FAVMCP_SECRET_KEYS; then the older ones can go."""
    from favmcp.db.maintenance import reseal_secrets

    s = settings()

    async def main() -> dict[str, dict[str, int]]:
        app = await open_app(s)
        try:
            return await reseal_secrets(
                app.db, s.secret_keys, batch=batch, sealed_columns=app.runner.platform.sealed_columns
            )
        finally:
            await app.close()

    counts = run(main)
    for table, found in counts.items():
        typer.echo(f"{table}: " + ", ".join(f"{n} {what}" for what, n in found.items()))
    unreadable = sum(found["unreadable"] for found in counts.values())
    if unreadable:
        fail(f"{unreadable} sealed values open with none of the keys; add the key that sealed them to the list")


# -- demo -----------------------------------------------------------------------------------------------


@cli.command()
def demo(
    host: Annotated[str, typer.Option(help="HTTP bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8765,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Set up and print, then exit.")] = False,
) -> None:
    """Create a demo studio once and serve it over HTTP. Prints its owner key and client configs first."""
    from favmcp import demo as demo_data
    from favmcp import logging as favlog

    s = settings()
    if not no_serve:
        ensure_port_free(host, port)

    async def main() -> None:
        app = await open_app(s)
        try:
            info = await demo_data.ensure_demo(app)
            typer.echo(demo_data.banner(info, s, host, port, serving=not no_serve))
            if not no_serve:
                # Calls are logged from here on; the setup's own calls would have buried the banner.
                favlog.configure(os.environ.get("FAVMCP_LOG_LEVEL", "INFO"))
                await serve_http(app, host, port)
        finally:
            await app.close()

    run(main)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"favmcp {__version__}")
        raise typer.Exit()


@cli.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """favmcp: the agentic backend for service businesses, served over MCP (stdio or HTTP)."""


def main() -> None:
    # Importing the database layer and the domains makes some 160,000 objects that live as long as the process;
    # the collector would scan them again and again while they are made (about a sixth of a one-shot command's
    # time). It stays off until start-up is over (settle).
    gc.disable()
    cli(prog_name="favmcp")


if __name__ == "__main__":
    main()
