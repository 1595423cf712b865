"""The favmcp command: serve, worker, demo, signup, tools, call, keys, db, outbox, secrets."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import typer
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlmodel import col

from favmcp import __version__
from favmcp.app import App
from favmcp.config import Settings, parse_toolsets

T = TypeVar("T")

cli = typer.Typer(
    name="favmcp",
    help="favmcp: the agentic backend for service businesses, served over MCP (stdio or HTTP).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
signup_cli = typer.Typer(help="Sign up a new business from the terminal (email code).", no_args_is_help=True)
tools_cli = typer.Typer(help="Inspect the tools this server offers.", no_args_is_help=True)
keys_cli = typer.Typer(help="API keys, for a local operator with access to the database.", no_args_is_help=True)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
outbox_cli = typer.Typer(help="Messages waiting in or sent from the outbox.", no_args_is_help=True)
secrets_cli = typer.Typer(help="Stored secrets, sealed with the server secret.", no_args_is_help=True)
for sub, name in (
    (signup_cli, "signup"), (tools_cli, "tools"), (keys_cli, "keys"), (db_cli, "db"), (outbox_cli, "outbox"),
    (secrets_cli, "secrets"),
):  # fmt: skip
    cli.add_typer(sub, name=name)


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
    from favmcp import logging as favlog

    favlog.configure(os.environ.get("FAVMCP_LOG_LEVEL", log_level))
    try:
        return anyio.run(_settled, fn, backend_options={"use_uvloop": importlib.util.find_spec("uvloop") is not None})
    except SQLAlchemyError as exc:
        reason = str(exc.orig if isinstance(exc, DBAPIError) else exc).splitlines()[0]
        fail(f"database error at {_database_named()}: {reason}")
    except OSError as exc:  # the database server could not be reached
        fail(
            f"cannot reach the database at {_database_named()}: {exc}; is it running, and is FAVMCP_DATABASE_URL right?"
        )
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


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
    try:
        return await fn()
    finally:
        await anyio.to_thread.run_sync(_join_sqlite_workers, abandon_on_cancel=True)


def _join_sqlite_workers(timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):  # aiosqlite's, named after its target
            thread.join(max(0.0, deadline - time.monotonic()))


async def open_app(s: Settings, *, upgrade: bool = False) -> App:
    return await App.open(s, upgrade=upgrade)


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
    toolsets: Toolsets = None,
    read_only: ReadOnly = False,
) -> None:
    """Serve MCP over stdio (default) or streamable HTTP; also delivers the outbox unless FAVMCP_NO_DISPATCHER=1."""
    s = settings(toolsets, read_only)
    if http:
        ensure_port_free(host, port)

    async def main() -> None:
        app = await open_app(s)
        try:
            if http:
                typer.echo(
                    f"favmcp: serving MCP at http://{host}:{port}/mcp (health: /healthz). Ctrl-C to stop.", err=True
                )
                await serve_http(app, host, port)
            else:
                from favmcp.transports.stdio import serve_stdio

                await serve_stdio(app, saved_key(s))
        finally:
            await app.close()

    run(main, log_level="INFO")


def ensure_port_free(host: str, port: int) -> None:
    """Say so before anything else when the port is taken, rather than announce a server that cannot start."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port} ({exc.strerror}); is another server running? Pick one with --port.")


async def serve_http(app: App, host: str, port: int) -> None:
    import uvicorn

    from favmcp.transports.http import build_http_app

    # Proxy headers are believed only from the proxies the operator named; otherwise anyone could pick the client
    # address that rate limits count against.
    trusted = ",".join(app.settings.trusted_proxies)
    config = uvicorn.Config(
        build_http_app(app),
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or "",
    )
    await uvicorn.Server(config).serve()


@cli.command()
def worker() -> None:
    """Deliver the outbox only (several workers may run against one Postgres)."""
    s = settings()

    async def main() -> None:
        app = await open_app(s)
        try:
            await app.dispatcher.run_forever()
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
) -> None:
    """List the tools with their hints, scope and gate."""
    from favmcp.composition import all_specs
    from favmcp.registry.registry import Registry

    s = settings(toolsets, read_only)
    try:
        registry = Registry(all_specs(), toolsets=s.toolsets, read_only=s.read_only)
    except ValueError as exc:
        fail(str(exc))
    specs = registry.listed()
    if as_json:
        print_result({"tools": [{"name": t.name, "domain": t.domain, "title": t.title, "scope": t.scope,
                                  "gate": t.gate, "hints": _hints(t)} for t in specs]})  # fmt: skip
        return
    typer.echo(f"{'TOOL':34} {'HINTS':6} {'SCOPE':20} {'GATE':8} TITLE")
    for t in specs:
        typer.echo(f"{t.name:34} {_hints(t):6} {t.scope:20} {t.gate or '-':8} {t.title}")
    typer.echo(
        "\nHINTS: R read-only, W writes, D destructive, I idempotent (a repeat changes nothing more), "
        "O reaches the outside world.\nGATE: confirm = a preview and a token first; approval = may wait for a "
        "person, as the approval policy says."
    )


def _hints(spec: Any) -> str:
    e = spec.effect
    letters = ["R" if e.read_only else ("D" if e.destructive else "W")]
    letters += ["I"] * e.idempotent + ["O"] * e.open_world
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
    """Call a tool with JSON arguments, as the saved key (or FAVMCP_API_KEY)."""
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
            if result.ok:
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


# -- signup ---------------------------------------------------------------------------------------------


@signup_cli.command("request")
def signup_request(
    email: Annotated[str, typer.Option(help="Owner's email; the code goes there.")],
    organisation: Annotated[str, typer.Option(help="Name of the business.")],
    owner_name: Annotated[str, typer.Option(help="Owner's name.")],
    timezone: Annotated[str, typer.Option(help="IANA timezone.")] = "UTC",
    currency: Annotated[str, typer.Option(help="ISO 4217 currency.")] = "EUR",
) -> None:
    """Email a 6-digit signup code; then run `favmcp signup verify`."""
    call_and_print(
        "register_organisation_request",
        {"email": email, "organisation_name": organisation, "owner_name": owner_name,
         "timezone": timezone, "currency": currency},
        anonymous=True,
    )  # fmt: skip


@signup_cli.command("verify")
def signup_verify(
    request_id: Annotated[str, typer.Option(help="request_id from `signup request`.")],
    code: Annotated[str, typer.Option(help="The 6-digit code from the email.")],
    show_key: Annotated[bool, typer.Option("--show-key", help="Print the key in full.")] = False,
) -> None:
    """Verify the code: creates the workspace and saves the owner key to a file only you can read."""
    from favmcp.auth.keys import mask

    s = settings()

    async def main() -> Any:
        app = await open_app(s)
        try:
            return await app.runner.call(
                "register_organisation_verify", {"request_id": request_id, "code": code}, credential=None
            )
        finally:
            await app.close()

    result = run(main)
    if not result.ok:
        fail(f"{result.data['error']['code']}: {result.data['error']['message']}")
    key = result.data["api_key"]
    path = save_key(s, key, result.data["workspace_id"])
    typer.echo(f"workspace {result.data['workspace_id']} created")
    typer.echo(f"owner key {key if show_key else mask(key)} saved to {path}")


# -- keys -----------------------------------------------------------------------------------------------


@keys_cli.command("create")
def keys_create(
    workspace: Annotated[str, typer.Option(help="Workspace id (ws_...).")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "operator key",
    scopes: Annotated[str | None, typer.Option(help="Comma-separated scopes; default: the owner's.")] = None,
    expires_at: Annotated[datetime | None, typer.Option(help="Expiry, ISO 8601.")] = None,
) -> None:
    """Mint a key for the workspace's first owner; prints the secret once."""
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
    """Messages in the outbox, newest first, bodies opened (with the local channel this is where emails land)."""
    from cryptography.exceptions import InvalidTag
    from sqlalchemy import select

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
    """Seal every stored secret with the newest key in FAVMCP_SECRET_KEYS, so that the older keys can go."""
    from favmcp.db.maintenance import reseal_secrets

    s = settings()

    async def main() -> dict[str, dict[str, int]]:
        app = await open_app(s)
        try:
            return await reseal_secrets(app.db, s.secret_keys, batch=batch)
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
    """Create (once) a demo studio with realistic data, print an owner key and client configs, serve HTTP."""
    from favmcp import demo as demo_data

    s = settings()
    if not no_serve:
        ensure_port_free(host, port)

    async def main() -> None:
        app = await open_app(s)
        try:
            info = await demo_data.ensure_demo(app)
            typer.echo(demo_data.banner(info, s, host, port, serving=not no_serve))
            if not no_serve:
                await serve_http(app, host, port)
        finally:
            await app.close()

    run(main, log_level="INFO")


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
    cli(prog_name="favmcp")


if __name__ == "__main__":
    main()
