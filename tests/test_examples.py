"""The examples in examples/ run, against real servers on SQLite and Postgres.

- skill_agent.py follows skills/getting-started/SKILL.md over stdio as a subprocess, and its policy holds: a person
  at the terminal types the emailed code and confirms a destructive call; "no" stops the flow at the step's line;
  a step that goes otherwise than the skill says stops it there too.
- python_client.py and the TypeScript client (examples/typescript: `npm ci` and `npm run build` from its lockfile,
  once per test session) speak to a real `favmcp serve --http`.
- Every client configuration parses, and each server entry in it, read as its client reads it (the checkout's path
  and a real key filled in, the URL pointed at the test's server), connects: an SDK client lists the tools and
  `whoami` answers for the key's workspace.

Without Node.js and npm the TypeScript client and the mcp-remote configuration are skipped, unless
FAVMCP_REQUIRE_NODE=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from favmcp.app import App
from favmcp.composition import platform
from favmcp.skills import load_all, parse
from tests.npm_build import INSTALL_TIMEOUT, build_once, node_and_npm
from tests.servers import HttpServer, http_server, server_env
from tests.smtp_server import SmtpServer, running_smtp_server
from tests.support import Owner, call, unique_email

CHECKOUT = Path(__file__).resolve().parent.parent
EXAMPLES = CHECKOUT / "examples"
TYPESCRIPT = EXAMPLES / "typescript"
AGENT = EXAMPLES / "skill_agent.py"
CONFIGS = (
    "claude_desktop_stdio.json",
    "claude_desktop_http.json",
    "cursor_stdio.json",
    "cursor_http.json",
    "vscode_mcp.json",
    "claude_code_mcp.json",
)
PLACEHOLDER_PATH = "/absolute/path/to/favmcp"
PLACEHOLDER_KEY = "fav_mcp_your_key_here"
# How each client fills the key into its configuration besides the literal placeholder: VS Code asks the person
# for the declared input, Claude Code expands environment variables.
EXPANDED_KEY = {"vscode_mcp.json": "${input:favmcp-api-key}", "claude_code_mcp.json": "${FAVMCP_API_KEY}"}
SERVE_URL = "http://127.0.0.1:8765/mcp"  # `favmcp serve --http` with its default host and port
RUN_TIMEOUT = 120.0
CALL_TIMEOUT = 60.0


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the test run's FAVMCP_ settings, plus `extra`."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")} | extra


async def run(argv: list[str], env: dict[str, str], stdin: str = "", cwd: Path | None = None) -> tuple[int, str, str]:
    with anyio.fail_after(RUN_TIMEOUT):
        done = await anyio.run_process(argv, input=stdin.encode(), env=env, cwd=cwd, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.fixture
def mailbox() -> Iterator[SmtpServer]:
    with running_smtp_server() as server:
        yield server


@pytest.fixture
async def server(database_url: str, tmp_path: Path, app: App) -> AsyncIterator[HttpServer]:
    """A real `favmcp serve --http` on the test's database (the `app` fixture migrated it)."""
    async with http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as running:
        yield running


# -- skill_agent.py ----------------------------------------------------------------------------------------------


def agent_env(database_url: str, home: Path, key: str | None = None, **extra: str) -> dict[str, str]:
    """What the person running the agent has set: where favmcp keeps its data, and their key."""
    return clean_env(**server_env(database_url, home), **({"FAVMCP_API_KEY": key} if key else {}), **extra)


def write_skill(folder: Path, name: str, steps: list[dict[str, Any]], arguments: str = "") -> Path:
    path = folder / name / "SKILL.md"
    path.parent.mkdir(parents=True)
    blocks = "\n".join(f"```json favmcp\n{json.dumps(step)}\n```\n" for step in steps)
    meta = f"metadata:\n  arguments: {arguments}\n" if arguments else ""
    path.write_text(f"---\nname: {name}\ndescription: A flow for the agent's tests.\n{meta}---\n\n# {name}\n\n{blocks}")
    return path


async def test_the_agent_follows_getting_started_over_stdio(
    database_url: str, tmp_path: Path, app: App, owner: Owner
) -> None:
    skill = load_all(CHECKOUT / "skills")["getting-started"]
    env = agent_env(database_url, tmp_path, owner.key)
    code, out, err = await run([sys.executable, str(AGENT), "getting-started"], env)
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == f"getting-started: {len(skill.steps)} steps, over stdio", out
    assert [line.split(":")[0].split() for line in lines[1:-1]] == [
        [str(n), step.tool] for n, step in enumerate(skill.steps, start=1)
    ], out
    assert lines[-1].startswith("done: every step went as"), out
    # The flow's retry with the same idempotency key made no second customer.
    found = await call(app, owner.key, "search_members", {"text": "Ada Lovelace"})
    assert [m["name"] for m in found.data["items"]] == ["Ada Lovelace"], found.data


class Terminal:
    """The agent as a person sees it: what it printed so far, and lines typed in."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self.shown = ""
        self.read_to = 0

    async def until(self, text: str) -> None:
        assert self.process.stdout is not None
        with anyio.fail_after(RUN_TIMEOUT):
            while text not in self.shown[self.read_to :]:
                self.shown += (await self.process.stdout.receive()).decode()
        self.read_to = self.shown.index(text, self.read_to) + len(text)

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(f"{line}\n".encode())

    async def finish(self) -> int:
        assert self.process.stdout is not None
        with anyio.fail_after(RUN_TIMEOUT):
            async for chunk in self.process.stdout:
                self.shown += chunk.decode()
            return await self.process.wait()


async def test_the_agent_signs_up_asks_for_the_emailed_code_and_for_confirmation(
    database_url: str, tmp_path: Path, app: App, mailbox: SmtpServer
) -> None:
    """Signing up with the agent itself: the person types the code from their email; the agent then acts with the
    key it saved, and a destructive call written as two steps (preview, then the token) waits for their yes."""
    email = unique_email("agent")
    path = write_skill(
        tmp_path,
        "sign-up-and-revoke",
        [
            {
                "tool": "register_organisation_request",
                "as": "anonymous",
                "args": {"email": "$email", "organisation_name": "Agent Studio", "owner_name": "Olivia Owner"},
                "save": {"request_id": "request_id"},
            },
            {
                "tool": "register_organisation_verify",
                "as": "anonymous",
                "args": {"request_id": "$request_id", "code": "$ask:emailed_code"},
                "save": {"api_key": "api_key"},
            },
            {"tool": "create_api_key", "args": {"name": "spare"}, "save": {"spare_id": "key.id"}},
            {
                "tool": "revoke_api_key",
                "args": {"key_id": "$spare_id"},
                "expect": "confirmation_required",
                "save": {"token": "details.confirmation_token"},
            },
            {"tool": "revoke_api_key", "args": {"key_id": "$spare_id", "confirmation_token": "$token"}},
        ],
        arguments='[{"name": "email", "description": "the owner\'s address", "required": true}]',
    )
    env = agent_env(database_url, tmp_path, FAVMCP_SMTP_URL=mailbox.url)
    argv = [sys.executable, str(AGENT), str(path), "--arg", f"email={email}"]
    with (tmp_path / "agent.err").open("wb") as err:
        process = await anyio.open_process(argv, env=env, stderr=err)
    async with process:
        terminal = Terminal(process)
        await terminal.until("emailed code: ")
        await terminal.type(await mailbox.code_for(email))
        await terminal.until("Go ahead? [y/N] ")
        await terminal.type("y")
        code = await terminal.finish()
    assert code == 0, terminal.shown + (tmp_path / "agent.err").read_text()
    saved = terminal.shown.split("saved api_key=", 1)[1].split(")", 1)[0]
    keys = await call(app, saved, "list_api_keys", {"include_revoked": True})
    assert sorted(k["status"] for k in keys.data["items"]) == ["active", "revoked"], keys.data
    assert "4 revoke_api_key: asks for confirmation" in terminal.shown
    assert "5 revoke_api_key: ok" in terminal.shown


async def test_the_agent_over_http_stops_on_no_and_at_the_line_of_a_step_that_fails(
    database_url: str, tmp_path: Path, app: App, owner: Owner, server: HttpServer
) -> None:
    spare = await call(app, owner.key, "create_api_key", {"name": "spare"})
    spare_id = spare.data["key"]["id"]
    path = write_skill(
        tmp_path,
        "revoke-a-key",
        [{"tool": "revoke_api_key", "args": {"key_id": "$key_id"}}, {"tool": "whoami", "match": {"role": "staff"}}],
        arguments='[{"name": "key_id", "description": "the key to revoke", "required": true}]',
    )
    revoke, check = parse(path.read_text(), path).steps
    env = agent_env(database_url, tmp_path, owner.key)
    argv = [sys.executable, str(AGENT), str(path), "--url", server.url, "--arg", f"key_id={spare_id}"]

    code, out, err = await run(argv, env, stdin="n\n")
    assert code == 1, out + err
    assert err.startswith(f"{path}:{revoke.line}: step 1 (revoke_api_key): not confirmed, so stopped here"), err
    assert "Revoke API key 'spare'" in out, out
    assert (await call(app, spare.data["api_key"], "whoami")).ok, "the person said no: the key still works"

    code, out, err = await run([*argv, "--yes"], env)
    assert code == 1, out + err
    assert "1 revoke_api_key: ok" in out and "confirmed (--yes)" in out, out
    assert err == f"{path}:{check.line}: step 2 (whoami): role is 'owner', the skill expects 'staff'\n", err
    keys = await call(app, owner.key, "list_api_keys", {"include_revoked": True})
    assert {k["id"]: k["status"] for k in keys.data["items"]}[spare_id] == "revoked"


# -- python_client.py and the TypeScript client ------------------------------------------------------------------


async def test_the_python_client_runs(tmp_path: Path, owner: Owner, server: HttpServer) -> None:
    env = clean_env(FAVMCP_URL=server.url, FAVMCP_API_KEY=owner.key)
    code, out, err = await run([sys.executable, str(EXAMPLES / "python_client.py")], env)
    assert code == 0, out + err
    me, workspace = (ast.literal_eval(line) for line in out.splitlines())  # it prints two dicts
    assert me["authenticated"] and me["workspace_id"] == workspace["id"] == owner.workspace_id, out


@pytest.fixture(scope="session")
def node() -> tuple[str, str]:
    return node_and_npm("for the TypeScript example and mcp-remote")


@pytest.fixture(scope="session")
def typescript_client(node: tuple[str, str]) -> list[str]:
    """`npm ci && npm run build` in examples/typescript, once per test session."""
    node_path, npm = node
    return [node_path, str(build_once(TYPESCRIPT, npm, "build") / "client.js")]


async def test_the_typescript_client_runs(
    typescript_client: list[str], app: App, owner: Owner, server: HttpServer
) -> None:
    env = clean_env(FAVMCP_URL=server.url, FAVMCP_API_KEY=owner.key)
    code, out, err = await run(typescript_client, env, cwd=TYPESCRIPT)
    assert code == 0, out + err
    destructive = sum(spec.effect.destructive for spec in platform().specs)
    assert f"tools: {len(platform().specs)} listed, {destructive} of them destructive" in out, out
    assert f"whoami: owner of Studio ({owner.workspace_id}), key {owner.key_id}" in out, out
    assert 'search_tools "cancel a booking": cancel_booking' in out, out
    assert "revoke_api_key: confirmation_required: Nothing was changed yet." in out, out
    preview = json.loads(out.split("preview: ", 1)[1].split("\nnot confirmed", 1)[0])
    assert preview["key"]["id"] == owner.key_id and preview["key"]["status"] == "active", preview
    assert (await call(app, owner.key, "whoami")).ok, "the example never sends the token"


# -- client configurations ---------------------------------------------------------------------------------------


def entries(name: str) -> dict[str, dict[str, Any]]:
    """The server entries of a configuration file: `mcpServers` (Claude, Cursor) or `servers` (VS Code)."""
    config = json.loads((EXAMPLES / name).read_text())
    found = config.get("mcpServers") or config.get("servers")
    assert isinstance(found, dict) and found, f"{name}: no servers"
    return found


def test_every_configuration_parses_and_says_how_to_reach_favmcp() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.json")) == sorted(CONFIGS)
    for name in CONFIGS:
        for server_name, entry in entries(name).items():
            where = f"{name}: {server_name}"
            assert server_name.startswith("favmcp"), where
            if "url" in entry:  # HTTP: the URL `favmcp serve --http` serves, the key as a bearer token
                assert entry["url"] == SERVE_URL and entry.get("type", "http") == "http", where
                assert entry["headers"]["Authorization"] in (
                    f"Bearer {key}" for key in (PLACEHOLDER_KEY, EXPANDED_KEY.get(name))
                ), where
            else:  # stdio: a command that starts the server, the key in its environment
                assert entry.get("type", "stdio") == "stdio" and entry["command"] in ("uvx", "npx"), where
                assert entry["env"]["FAVMCP_API_KEY"] in (PLACEHOLDER_KEY, EXPANDED_KEY.get(name)), where
    bridged = entries("claude_desktop_http.json")["favmcp"]["args"]  # Claude Desktop reaches HTTP through mcp-remote
    assert SERVE_URL in bridged and "Authorization: Bearer ${FAVMCP_API_KEY}" in bridged, bridged


def as_read(name: str, entry: dict[str, Any], key: str, url: str) -> dict[str, Any]:
    """The entry as its client hands it on: the placeholders filled in, the URL pointed at the test's server."""
    text = json.dumps(entry).replace(PLACEHOLDER_PATH, str(CHECKOUT)).replace(PLACEHOLDER_KEY, key)
    if name in EXPANDED_KEY:
        text = text.replace(EXPANDED_KEY[name], key)
    return dict(json.loads(text.replace(SERVE_URL, url)))


@pytest.fixture(scope="session")
def uvx() -> None:
    """The stdio configurations run `uvx --from <checkout> favmcp serve`: built once here, so that the first
    server's build counts against no connection's timeout."""
    found = shutil.which("uvx")
    assert found, "uvx (installed with uv) runs the stdio configurations"
    done = subprocess.run(
        [found, "--from", str(CHECKOUT), "favmcp", "--help"], capture_output=True, text=True, timeout=INSTALL_TIMEOUT
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")
def mcp_remote(node: tuple[str, str]) -> None:
    """Claude Desktop's HTTP configuration runs the pinned mcp-remote through npx: fetched once here, so that its
    download counts against no connection's timeout."""
    npx = shutil.which("npx")
    assert npx, "npx comes with npm"
    package = next(a for a in entries("claude_desktop_http.json")["favmcp"]["args"] if a.startswith("mcp-remote@"))
    done = subprocess.run(
        [npx, "-y", "-p", package, "node", "-e", "0"], capture_output=True, text=True, timeout=INSTALL_TIMEOUT
    )
    assert done.returncode == 0, done.stdout + done.stderr


@asynccontextmanager
async def connect(entry: dict[str, Any], env: dict[str, str]) -> AsyncIterator[Client]:
    async with AsyncExitStack() as stack:
        if "url" in entry:
            headers = entry.get("headers", {})
            http = await stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=CALL_TIMEOUT))
            transport: Any = streamable_http_client(entry["url"], http_client=http)
        else:
            # A client starts the command with its own environment and the entry's env on top.
            transport = StdioServerParameters(command=entry["command"], args=entry["args"], env=env | entry["env"])
        yield await stack.enter_async_context(Client(transport, read_timeout_seconds=CALL_TIMEOUT))


@pytest.mark.parametrize("name", CONFIGS)
async def test_each_configuration_connects(
    name: str, request: pytest.FixtureRequest, database_url: str, tmp_path: Path, owner: Owner, server: HttpServer
) -> None:
    for server_name, entry in entries(name).items():
        command = entry.get("command")
        if command == "uvx":
            request.getfixturevalue("uvx")
        elif command == "npx":
            request.getfixturevalue("mcp_remote")
        read = as_read(name, entry, owner.key, server.url)
        # A stdio server of its own on the test's database, as the person's favmcp settings would say.
        env = clean_env(**server_env(database_url, tmp_path / server_name))
        (tmp_path / server_name).mkdir()
        with anyio.fail_after(RUN_TIMEOUT):
            async with connect(read, env) as client:
                listed = await client.list_tools()
                me = await client.call_tool("whoami", {})
        assert sorted(t.name for t in listed.tools) == sorted(s.name for s in platform().specs), server_name
        assert me.structured_content and me.structured_content["workspace_id"] == owner.workspace_id, me
