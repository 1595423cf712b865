"""The favmcp command, run as real subprocesses against SQLite and Postgres.

Each subprocess costs about a second, so the steps are grouped into a few tests and independent commands run
side by side. The signup flow gets a database of its own: CLI signups all count against the client address
"local", which other tests sharing the session's Postgres database may also use.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from sqlalchemy.engine import make_url

import favmcp
from favmcp.auth.keys import mask
from favmcp.composition import all_specs
from favmcp.registry.registry import Registry
from favmcp.registry.spec import ToolSpec
from tests.support import fresh_postgres_beside

COMMANDS = ("serve", "worker", "call", "demo", "signup", "invite", "tools", "keys", "db", "outbox", "secrets")
SUBCOMMANDS = {
    "signup": ("request", "verify"), "invite": ("accept", "verify"), "tools": ("list", "describe"),
    "keys": ("create", "list", "revoke"), "db": ("upgrade",), "outbox": ("list",), "secrets": ("reseal",),
}  # fmt: skip
KEY = re.compile(r"fav_mcp_[A-Za-z0-9]{32,}")


@dataclass
class Cli:
    """Runs `python -m favmcp` with a clean environment: only the FAVMCP_* variables given here."""

    env: dict[str, str]
    timeout: float = 120.0

    def _start(self, args: Sequence[str], extra_env: dict[str, str | None] | None) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")} | self.env
        for name, value in (extra_env or {}).items():  # None removes a variable
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return subprocess.Popen(
            [sys.executable, "-m", "favmcp", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def many(self, *calls: tuple[Sequence[str], int] | tuple[Sequence[str], int, dict[str, str | None]]) -> list[Run]:
        """Start every command at once (args, expected exit status[, env changes]), wait for all, check each."""
        started = [(call[0], self._start(call[0], call[2] if len(call) == 3 else None)) for call in calls]
        runs = []
        try:
            for args, proc in started:
                out, err = proc.communicate(timeout=self.timeout)
                runs.append(Run(list(args), proc.returncode, out, err))
        finally:
            for _, proc in started:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        for run, call in zip(runs, calls, strict=True):
            assert run.code == call[1], f"favmcp {' '.join(run.args)} exited {run.code}\n{run.out}\n{run.err}"
        return runs

    def __call__(self, *args: str, code: int = 0, env: dict[str, str | None] | None = None) -> Run:
        return self.many((args, code, env or {}))[0]


@dataclass
class Run:
    args: list[str]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def one_error_line(self) -> str:
        lines = self.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("favmcp: "), self.err
        return lines[0]


def cli_for(home: Path, database_url: str | None = None) -> Cli:
    env = {"FAVMCP_HOME": str(home), "FAVMCP_SECRET_KEY": "cli-test-secret"}
    if database_url:
        env["FAVMCP_DATABASE_URL"] = database_url
    return Cli(env)


@pytest.fixture
async def own_database_url(database_url: str) -> AsyncIterator[str]:
    """SQLite: the test's fresh file. Postgres: a fresh database, not yet migrated."""
    if database_url.startswith("sqlite"):
        yield database_url
        return
    async with fresh_postgres_beside(database_url) as url:
        yield url


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path, database_url: str) -> None:
    if database_url.startswith("sqlite"):
        missing = f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'favmcp.db'}"
    else:
        missing = make_url(database_url).set(database="favmcp_no_such_database").render_as_string(False)
    line = cli_for(tmp_path, missing)("call", "whoami", code=1).one_error_line()
    assert "database" in line.lower() or "unable to open" in line.lower(), line
    assert make_url(missing).render_as_string(hide_password=True) in line, "the line names the database"
    if not database_url.startswith("sqlite"):
        refused = make_url(database_url).set(password="s3cret", port=1).render_as_string(False)
        line = cli_for(tmp_path, refused)("call", "whoami", code=1).one_error_line()
        assert "cannot reach the database" in line and ":1/" in line and "s3cret" not in line, line
        # The URL as hosting providers write it (postgres://) works as it is.
        plain = make_url(database_url).render_as_string(False).replace("postgresql+asyncpg://", "postgres://")
        assert "up to date" in cli_for(tmp_path, plain)("db", "upgrade").out


def test_help_and_tool_listing_with_zero_configuration(tmp_path: Path) -> None:
    cli = cli_for(tmp_path)  # no database URL: SQLite in FAVMCP_HOME
    help_, listed, table, read_only, members, core, described = cli.many(
        (["--help"], 0),
        (["tools", "list", "--json"], 0),
        (["tools", "list"], 0),
        (["tools", "list", "--json", "--read-only"], 0),
        (["tools", "list", "--json", "--toolsets", "members"], 0),
        (["tools", "list", "--json", "--toolsets", "core"], 0),
        (["tools", "describe", "whoami"], 0),
    )
    rows = table.out.splitlines()
    assert rows[0].split() == ["TOOL", "HINTS", "SCOPE", "GATE", "TITLE"] and "HINTS: R read-only" in table.out
    for command in COMMANDS:
        assert re.search(rf"^\W*{command}\s", help_.out, re.MULTILINE), f"{command} missing from --help"
    # The unfiltered listing comes from the exported schemas, the filtered ones from the server's registry: both
    # say exactly what the server says.
    for run, registry in (
        (listed, Registry(all_specs())),
        (read_only, Registry(all_specs(), read_only=True)),
        (members, Registry(all_specs(), toolsets=frozenset({"members"}))),
        (core, Registry(all_specs(), toolsets=frozenset({"core"}))),
    ):
        assert run.json()["tools"] == sorted(
            ({"name": s.name, "domain": s.domain, "title": s.title, "scope": s.scope, "gate": s.gate,
              "hints": hints(s)} for s in registry.tools_list()),
            key=lambda t: (t["domain"], t["name"]),
        ), run.args  # fmt: skip
    tools = listed.json()["tools"]
    assert len(tools) >= 14 and len(read_only.json()["tools"]) < len(tools) and len(core.json()["tools"]) < len(tools)
    assert {"whoami", "create_api_key", "register_organisation_request", "describe_tool"} <= {t["name"] for t in tools}
    assert {t["domain"] for t in members.json()["tools"]} == {"members", "access", "platform"}, "discovery stays"
    assert re.search(r"^revoke_api_key +D I +access:admin +confirm +Revoke API key$", table.out, re.MULTILINE)
    whoami = described.json()
    assert whoami["name"] == "whoami" and whoami["annotations"]["read_only"] is True
    assert whoami["input_schema"]["type"] == "object"
    assert "authenticated" in whoami["output_schema"]["properties"]
    assert (tmp_path / "favmcp.db").exists(), "zero configuration keeps SQLite in FAVMCP_HOME"


def hints(spec: ToolSpec) -> str:
    e = spec.effect
    letters = ["R" if e.read_only else "D" if e.destructive else "W"] + ["I"] * e.idempotent + ["O"] * e.open_world
    return " ".join(letters)


def test_help_shows_flags_as_flags(tmp_path: Path) -> None:
    commands = [[c] for c in COMMANDS] + [[group, sub] for group, subs in SUBCOMMANDS.items() for sub in subs]
    helps = cli_for(tmp_path).many(*[([*command, "--help"], 0) for command in [[], *commands]])
    for run in helps:
        assert "<bool>" not in run.out and "Usage: favmcp" in run.out, run.out
    serve = next(run for run in helps if run.args == ["serve", "--help"])
    assert re.search(r"^  --http +Streamable HTTP", serve.out, re.MULTILINE), serve.out
    assert re.search(r"^  --port <int> +HTTP port", serve.out, re.MULTILINE), "options that take a value say so"
    for run in helps:
        assert "..." not in run.out.partition("Commands:")[2], f"a summary is cut short: {run.out}"


# Loaded by a command only when it runs: the database layer and the domains, the MCP SDK, the HTTP server,
# migrations, rich (typer's fancy help, structlog's pretty tracebacks).
SERVER = ("mcp", "starlette", "uvicorn")
HEAVY = ("sqlalchemy", "sqlmodel", "favmcp.domains", "favmcp.app", "alembic", "rich", *SERVER)


def run_probe(probe: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Python code run in a process of its own, with a fresh FAVMCP_HOME and no other FAVMCP_ setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")} | {"FAVMCP_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)


@pytest.mark.parametrize(
    ("args", "unwanted"),
    [
        (["--help"], HEAVY),
        (["tools", "list"], HEAVY),
        (["tools", "list", "--json"], HEAVY),
        (["call", "whoami"], (*SERVER, "rich")),
    ],
)
def test_commands_load_only_what_they_use(tmp_path: Path, args: list[str], unwanted: tuple[str, ...]) -> None:
    probe = (
        "import sys\n"
        "from favmcp.transports.cli import cli\n"
        f"cli({args!r}, prog_name='favmcp', standalone_mode=False)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({unwanted!r})), file=sys.stderr)\n"
    )
    done = run_probe(probe, tmp_path)
    assert done.stdout.strip(), "the command printed its answer"
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr


def test_a_call_builds_only_the_models_it_uses(tmp_path: Path) -> None:
    """Importing every domain defines some 540 models and 72 tables; their validators are built on first use
    (Schema, Table), so `favmcp call whoami` builds whoami's two and the generic page, not the rest."""
    probe = (
        "import atexit, sys\n"
        "from pydantic import BaseModel\n"
        "def models(base):\n"
        "    for sub in base.__subclasses__():\n"
        "        yield sub\n"
        "        yield from models(sub)\n"
        "def built():\n"
        "    ours = {m for m in models(BaseModel) if m.__module__.startswith('favmcp')}\n"
        "    print(len(ours), sorted(m.__name__ for m in ours if m.__pydantic_complete__), file=sys.stderr)\n"
        "atexit.register(built)\n"
        "sys.argv = ['favmcp', 'call', 'whoami']\n"
        "from favmcp.transports.cli import main\n"
        "main()\n"
    )
    done = run_probe(probe, tmp_path)
    count, built = done.stderr.strip().splitlines()[-1].split(" ", 1)
    assert int(count) > 500
    assert built == "['Page', 'Whoami', 'WhoamiInput']", done.stderr


def test_the_collector_is_back_on_once_start_up_is_over(tmp_path: Path) -> None:
    """favmcp starts with the garbage collector off (start-up makes long-lived objects only) and freezes what start-up
    made once the app is open: the command's own work, and a server's whole life, run with the collector on."""
    probe = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('collector', gc.isenabled(), gc.get_freeze_count() > 10_000, file=sys.stderr))\n"
        "sys.argv = ['favmcp', 'call', 'whoami']\n"
        "from favmcp.transports.cli import main\n"
        "main()\n"
    )
    done = run_probe(probe, tmp_path)
    assert json.loads(done.stdout)["authenticated"] is False
    assert done.stderr.strip().splitlines()[-1] == "collector True True", done.stderr


def test_signup_call_and_keys_from_the_terminal(tmp_path: Path, own_database_url: str) -> None:
    cli = cli_for(tmp_path / "b", own_database_url)
    if not own_database_url.startswith("sqlite"):
        refused = cli("call", "whoami", code=1)
        assert "favmcp db upgrade" in refused.one_error_line(), "Postgres is never migrated behind your back"
    assert "up to date" in cli("db", "upgrade").out

    # Two signups side by side, Ann's in the Netherlands; the codes land in the outbox (local channel).
    emails = ["ann.cli@example.com", "bob.cli@example.com"]
    requested = cli.many(
        *[
            (["signup", "request", "--email", email, "--organisation", f"Studio {i}", "--owner-name", f"Owner {i}",
              *(["--country", "NL"] if i == 0 else [])], 0)
            for i, email in enumerate(emails)
        ]
    )  # fmt: skip
    request_ids = [run.json()["request_id"] for run in requested]
    assert requested[0].json()["email_masked"] == "a***@example.com"
    messages = cli("outbox", "list", "--json").json()["messages"]
    codes = {}
    for m in messages:
        assert (m["channel"], m["status"], m["delivered_via"]) == ("email", "sent", "local")
        assert m["subject"] == "Your favmcp signup code"
        found = re.search(r"\b(\d{6})\b", m["body"])
        assert found
        codes[m["recipient"]] = found.group(1)
    assert set(codes) == set(emails)

    # Verify both at once, each in its own FAVMCP_HOME: Ann without --show-key, Bob with it.
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    masked, shown = cli.many(
        (
            ["signup", "verify", "--request-id", request_ids[0], "--code", codes[emails[0]]],
            0,
            {"FAVMCP_HOME": str(home_a)},
        ),
        (["signup", "verify", "--request-id", request_ids[1], "--code", codes[emails[1]], "--show-key"], 0),
    )
    saved_a, saved_b = (json.loads((home / "config.json").read_text()) for home in (home_a, home_b))
    for home in (home_a, home_b):
        assert stat.S_IMODE((home / "config.json").stat().st_mode) == 0o600
    assert saved_a["api_key"] not in masked.out and not KEY.search(masked.out), "the key is masked by default"
    assert mask(saved_a["api_key"]) in masked.out and saved_a["workspace_id"] in masked.out
    assert saved_b["api_key"] in shown.out
    workspace = saved_b["workspace_id"]

    me, bad_json, no_tool, created, anns, bobs = cli.many(
        (["call", "whoami"], 0),
        (["call", "whoami", "{bad json"], 1),
        (["call", "nosuchtool"], 1),
        (["keys", "create", "--workspace", workspace, "--name", "ops key"], 0),
        (["call", "get_workspace"], 0, {"FAVMCP_HOME": str(home_a)}),
        (["call", "get_workspace"], 0),
    )
    assert (anns.json()["country"], bobs.json().get("country")) == ("NL", None), "signup --country sets the country"
    assert me.json()["authenticated"] is True and me.json()["role"] == "owner"
    assert me.json()["workspace_id"] == workspace and me.json()["key_id"].startswith("key_")
    assert "not JSON" in bad_json.one_error_line() and bad_json.out == ""
    assert "not_found" in no_tool.one_error_line() and no_tool.out == ""
    (tmp_path / "args.json").write_text(json.dumps({"limit": 1, "padding": "x" * 200_000}))
    (tmp_path / "small.json").write_text(json.dumps({"limit": 1}))
    too_big, from_file, anonymous = cli.many(
        (["call", "list_api_keys", f"@{tmp_path / 'args.json'}"], 1),
        (["call", "list_api_keys", f"@{tmp_path / 'small.json'}"], 0),
        (["call", "whoami", "--anonymous"], 0),
    )
    assert "padding" in too_big.one_error_line(), "a 200 KB payload reaches the tool (which refuses the field)"
    assert len(from_file.json()["items"]) == 1
    assert anonymous.json()["authenticated"] is False, "a saved key does not stop an anonymous call"
    made = created.out.strip()
    assert KEY.fullmatch(made)

    as_new_key, listed = cli.many(
        (["call", "whoami"], 0, {"FAVMCP_API_KEY": made}), (["keys", "list", "--workspace", workspace], 0)
    )
    new_key_id = as_new_key.json()["key_id"]
    assert as_new_key.json()["workspace_id"] == workspace and new_key_id != me.json()["key_id"]
    header, *rows = listed.out.strip().splitlines()
    assert header.split()[:4] == ["KEY", "PREFIX", "STATUS", "LAST"], header
    assert len(rows) == 2 and all(" active " in row for row in rows), listed.out
    assert all("(follows the role)" in row for row in rows), listed.out
    owners = next(row for row in rows if row.startswith(me.json()["key_id"]))
    assert re.search(r" \d{4}-\d\d-\d\dT[\d:.]+Z ", owners), "the owner's key, used above, shows its last use"
    assert {row.split()[0] for row in rows} == {me.json()["key_id"], new_key_id}
    assert made not in listed.out and saved_b["api_key"] not in listed.out, "keys list never shows secrets"

    assert f"{new_key_id} revoked" in cli("keys", "revoke", new_key_id).out
    refused = cli("call", "whoami", code=1, env={"FAVMCP_API_KEY": made})
    assert "unauthenticated" in refused.one_error_line() and "revoked" in refused.err
    audit = cli("call", "list_audit_events", json.dumps({"tool": "operator:keys revoke"})).json()["items"]
    assert [(e["changes"], e["outcome"]) for e in audit] == [({"key_id": new_key_id}, "ok")], "operators are audited"


def test_an_invite_is_accepted_from_the_terminal(tmp_path: Path, own_database_url: str) -> None:
    cli = cli_for(tmp_path / "owner", own_database_url)
    if not own_database_url.startswith("sqlite"):
        cli("db", "upgrade")
    demo = cli("demo", "--no-serve").out
    workspace, owner_key = (re.search(pattern, demo).group(1) for pattern in (r"\((ws_\w+)\)", r"key:\s+(fav_mcp_\w+)"))
    cara, dan = "cara.cli@example.com", "dan.cli@example.com"
    cli.many(
        *[
            (["call", "create_team_member_invite", json.dumps({"email": email, "role": "staff"})], 0,
             {"FAVMCP_API_KEY": owner_key})
            for email in (cara, dan)
        ]
    )  # fmt: skip
    tokens = outbox(cli, r"Your invite token: (\S+)")

    # Cara on a machine of her own; Dan where another workspace's key is already saved.
    homes = {cara: tmp_path / "cara", dan: tmp_path / "dan"}
    homes[dan].mkdir(mode=0o700)
    earlier = {"api_key": "fav_mcp_" + "e" * 40, "workspace_id": "ws_elsewhere"}
    (homes[dan] / "config.json").write_text(json.dumps(earlier))
    at = {e: {"FAVMCP_HOME": str(home)} for e, home in homes.items()}
    accepted = cli.many(*[(["invite", "accept", tokens[e]], 0, at[e]) for e in (cara, dan)])
    request_ids = dict(zip((cara, dan), (run.json()["request_id"] for run in accepted), strict=True))
    codes = outbox(cli, r"\b(\d{6})\b", subject="Your favmcp code to join the team")
    verified = cli.many(
        *[(["invite", "verify", "--request-id", request_ids[e], "--code", codes[e]], 0, at[e]) for e in (cara, dan)]
    )
    for run in verified:
        assert f"joined workspace {workspace} as staff" in run.out, run.out
    saved = json.loads((homes[cara] / "config.json").read_text())
    assert stat.S_IMODE((homes[cara] / "config.json").stat().st_mode) == 0o600
    assert saved["workspace_id"] == workspace and f"key {mask(saved['api_key'])} saved to" in verified[0].out
    assert not KEY.search(verified[0].out), "the saved key is masked"
    assert json.loads((homes[dan] / "config.json").read_text()) == earlier, "a saved key is never replaced"
    dans_key = KEY.search(verified[1].out)
    assert dans_key and "not saved" in verified[1].out, "the new key is shown in full instead"

    as_cara, as_dan, again = cli.many(
        (["call", "whoami"], 0, at[cara]),
        (["call", "whoami"], 0, {"FAVMCP_API_KEY": dans_key.group(0)}),
        (["invite", "accept", tokens[cara]], 1),
    )
    for me in (as_cara.json(), as_dan.json()):
        assert (me["workspace_id"], me["role"]) == (workspace, "staff")
    assert as_cara.json()["user_id"] != as_dan.json()["user_id"]
    assert "not_found" in again.one_error_line(), "an invite works once"


def outbox(cli: Cli, pattern: str, *, subject: str | None = None) -> dict[str, str]:
    """Recipient → what the pattern finds in the newest matching email to them."""
    found: dict[str, str] = {}
    for m in cli("outbox", "list", "--json").json()["messages"]:  # newest first
        hit = re.search(pattern, m["body"] or "")
        if hit and (subject is None or m["subject"] == subject):
            found.setdefault(m["recipient"], hit.group(1))
    return found


def test_demo_is_created_once_and_its_key_works(tmp_path: Path, database_url: str) -> None:
    cli = cli_for(tmp_path, database_url)
    first = cli("demo", "--no-serve")
    workspace = re.search(r"Demo workspace: .*\((ws_\w+)\)", first.out)
    key = re.search(r"Owner API key:\s+(fav_mcp_\w+)", first.out)
    assert workspace and key
    blocks = re.findall(r"^\{$.*?^\}$", first.out, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 2 and "Claude Desktop" in first.out and "Cursor" in first.out
    claude, cursor = (json.loads(block) for block in blocks)
    server = claude["mcpServers"]["favmcp"]
    assert server["env"]["FAVMCP_API_KEY"] == key.group(1)
    installed = shutil.which("favmcp")  # the tests' own environment: a checkout's .venv, not uv's cache
    wanted = [installed, "serve"] if installed else [sys.executable, "-m", "favmcp", "serve"]
    assert [server["command"], *server["args"]] == wanted, "the installed command, which outlives this run"
    remote = cursor["mcpServers"]["favmcp"]
    assert remote["url"] == "http://127.0.0.1:8765/mcp"
    assert remote["headers"]["Authorization"] == f"Bearer {key.group(1)}"

    # The printed Claude Desktop config, started exactly as a client would (only its env), serves the demo.
    me = anyio.run(whoami_over_stdio, server)
    assert me["workspace_id"] == workspace.group(1) and me["role"] == "owner"
    second = cli("demo", "--no-serve")
    assert f"({workspace.group(1)})" in second.out and key.group(1) in second.out, "the second run reuses the demo"


def test_the_demo_config_outlives_a_uvx_run(tmp_path: Path) -> None:
    """Under `uvx --from <checkout> favmcp demo` favmcp runs from a throwaway environment in uv's cache, first on
    PATH; the config names the checkout instead. Here this environment plays that part: UV_CACHE_DIR holds it."""
    checkout = Path(favmcp.__file__).resolve().parents[2]
    assert (checkout / "pyproject.toml").exists(), "the tests run against a checkout"
    printed = cli_for(tmp_path)("demo", "--no-serve", env={"UV_CACHE_DIR": sys.prefix}).out
    server = json.loads(re.findall(r"^\{$.*?^\}$", printed, re.MULTILINE | re.DOTALL)[0])["mcpServers"]["favmcp"]
    assert [server["command"], *server["args"]] == [shutil.which("uvx"), "--from", str(checkout), "favmcp", "serve"]
    assert not server["command"].startswith(sys.prefix)

    # Started as a client would: uvx builds the checkout into its cache and serves the same demo. Where the machine
    # reaches the package index through its own certificate authority, uvx needs to know it, as it would on a desktop.
    trust = {name: os.environ[name] for name in ("SSL_CERT_FILE", "SSL_CERT_DIR") if name in os.environ}
    me = anyio.run(whoami_over_stdio, server | {"env": server["env"] | trust})
    assert f"({me['workspace_id']})" in printed


async def whoami_over_stdio(server: dict[str, Any]) -> dict[str, Any]:
    params = StdioServerParameters(command=server["command"], args=server["args"], env=server["env"])
    async with Client(params) as client:
        result = await client.call_tool("whoami", {})
        customers = await client.call_tool("search_members", {"limit": 100})
    assert not result.is_error and result.structured_content is not None
    assert customers.structured_content and len(customers.structured_content["items"]) == 10, "the demo's customers"
    return dict(result.structured_content)


# -- a stdio server's start from the listing cache ---------------------------------------------------------------


def _stdio(home: Path, database_url: str, key: str | None = None) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")}
    env |= {"FAVMCP_HOME": str(home), "FAVMCP_DATABASE_URL": database_url, "FAVMCP_SECRET_KEY": "cli-test-secret"}
    return StdioServerParameters(
        command=sys.executable, args=["-m", "favmcp", "serve"], env=env | ({"FAVMCP_API_KEY": key} if key else {})
    )


async def test_a_stdio_server_lists_from_its_cache_and_its_first_call_waits_for_the_domains(
    tmp_path: Path, own_database_url: str
) -> None:
    """The first start builds the listing and keeps it; the next answers tools/list from it and a call made at
    once still gets its answer; a changed module makes a new listing rather than serving a stale one."""
    from favmcp.config import Settings
    from favmcp.transports.listing import cache_key

    cli_for(tmp_path, own_database_url)("db", "upgrade")
    async with Client(_stdio(tmp_path, own_database_url)) as first:
        listed = (await first.list_tools()).tools
    kept = list((tmp_path / "cache").glob("listing-*.json"))
    settings = Settings.from_env({"FAVMCP_HOME": str(tmp_path), "FAVMCP_DATABASE_URL": own_database_url})
    assert [p.name for p in kept] == [f"listing-{cache_key(settings)}.json"]
    async with Client(_stdio(tmp_path, own_database_url)) as second:
        again = (await second.list_tools()).tools
        asked = await second.call_tool("search_tools", {"query": "revoke key"})
    assert [t.model_dump() for t in again] == [t.model_dump() for t in listed] and len(listed) == len(all_specs())
    assert not asked.is_error and asked.structured_content["items"][0]["name"] == "revoke_api_key"
    assert cache_key(Settings.from_env({"FAVMCP_HOME": str(tmp_path), "FAVMCP_TOOLSETS": "members"})) != cache_key(
        settings
    ), "the filters are part of the key"


def test_a_stdio_server_started_from_its_cache_still_says_when_the_database_is_unreachable(
    tmp_path: Path, database_url: str
) -> None:
    """The tool list may come from the cache, but the database is opened right after: a server that cannot reach
    it exits with the one clear line, as a start without a cache does."""
    if database_url.startswith("sqlite"):
        broken = f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'favmcp.db'}"
    else:
        broken = make_url(database_url).set(password="s3cret", port=1).render_as_string(False)
    anyio.run(_list_once, tmp_path)  # builds the listing with the home's own SQLite database
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")}
    env |= {"FAVMCP_HOME": str(tmp_path), "FAVMCP_DATABASE_URL": broken, "FAVMCP_SECRET_KEY": "cli-test-secret"}
    server = subprocess.Popen(
        [sys.executable, "-m", "favmcp", "serve"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        server.wait(timeout=60)  # stdin stays open: the server stops by itself
    finally:
        server.kill()
    assert server.stderr is not None
    lines = server.stderr.read().strip().splitlines()
    assert server.returncode == 1 and len(lines) == 1 and lines[0].startswith("favmcp: "), lines
    assert "database" in lines[0] and "s3cret" not in lines[0], lines[0]


async def _list_once(home: Path) -> None:
    async with Client(_stdio(home, f"sqlite+aiosqlite:///{home / 'favmcp.db'}")) as client:
        await client.list_tools()
