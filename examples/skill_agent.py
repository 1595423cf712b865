"""An agent that follows a favmcp skill (a SKILL.md playbook) with a scripted policy instead of an LLM.

It runs the skill's flow, the `json favmcp` blocks, in order over MCP: fills in each step's variables, calls the
tool, prints a line, checks what the skill expects and keeps what it saves for later steps. Its policy, the part an
LLM would otherwise play: a destructive call that answers confirmation_required shows its preview and asks you on the
terminal before it goes ahead (or goes ahead at once with --yes); what a step needs from a person (`$ask:emailed_code`)
is asked on the terminal.

    FAVMCP_API_KEY=fav_mcp_... uv run python examples/skill_agent.py getting-started
    FAVMCP_API_KEY=fav_mcp_... uv run python examples/skill_agent.py path/to/SKILL.md --arg member_name="Ada"
    FAVMCP_API_KEY=fav_mcp_... uv run python examples/skill_agent.py getting-started --url http://127.0.0.1:8765/mcp

The skill is a shipped skill's name or a SKILL.md path. By default the agent starts `favmcp serve` itself, over
stdio, with your environment (FAVMCP_HOME, FAVMCP_DATABASE_URL ...) and the key; with --url it speaks streamable HTTP
to a running `favmcp serve --http`, the key as a bearer token. `--arg name=value` gives the skill an argument (a
value that parses as JSON is taken as JSON: `--arg capacity=12`); an argument left out takes the skill's example.
Exit status: 0 when every step went as the skill says; 1 naming the step's file:line when one did not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from favmcp.skills import Skill, Step, builtin_value, dig, is_builtin, load_all, parse, substitute, variables_in

TIMEOUT = 60.0


class StepFailed(Exception):
    pass


class Agent:
    def __init__(self, skill: Skill, url: str | None, api_key: str | None, yes: bool, arguments: dict[str, Any]):
        self.skill = skill
        self.url = url
        self.yes = yes
        self.variables: dict[str, Any] = {a.name: a.example for a in skill.arguments} | arguments
        if api_key:
            self.variables["api_key"] = api_key
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.unique = uuid.uuid4().hex[:8]
        self.stack = AsyncExitStack()
        self.clients: dict[str | None, Client] = {}

    async def client(self, key: str | None) -> Client:
        """One MCP session per credential: a `favmcp serve` process of its own over stdio, a header over HTTP."""
        if key not in self.clients:
            if self.url is None:
                env = {k: v for k, v in os.environ.items() if k != "FAVMCP_API_KEY"}
                if key:
                    env["FAVMCP_API_KEY"] = key
                env.setdefault("FAVMCP_LOG_LEVEL", "WARNING")  # the server's log shares this terminal
                server = StdioServerParameters(command=sys.executable, args=["-m", "favmcp", "serve"], env=env)
                session = Client(server, read_timeout_seconds=TIMEOUT)
            else:
                # Over HTTP /mcp wants a credential; the tools that need none are served at /mcp/public.
                headers = {"Authorization": f"Bearer {key}"} if key else {}
                url = self.url if key else f"{self.url.rstrip('/')}/public"
                http = await self.stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=TIMEOUT))
                session = Client(streamable_http_client(url, http_client=http), read_timeout_seconds=TIMEOUT)
            self.clients[key] = await self.stack.enter_async_context(session)
        return self.clients[key]

    async def fill(self, value: Any) -> Any:
        """The value with its variables filled in; a person answers each `ask:` variable afresh."""
        values = {}
        for name in sorted(variables_in(value)):
            if name.startswith("ask:"):
                values[name] = await ask(f"{name.removeprefix('ask:').replace('_', ' ')}: ")
            elif name in self.variables:
                values[name] = self.variables[name]
            elif is_builtin(name) and name != "api_key":
                values[name] = builtin_value(name, self.now, self.unique)
            else:
                needed = "set FAVMCP_API_KEY" if name == "api_key" else f"pass --arg {name}=..."
                raise StepFailed(f"no value for ${name}: {needed}")
        return substitute(value, values.__getitem__)

    async def call(self, step: Step, args: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        key = None if step.as_ == "anonymous" else await self.fill(step.as_)
        result = await (await self.client(key)).call_tool(step.tool, args)
        if result.is_error:  # the one text block is favmcp's error object
            return False, json.loads(result.content[0].text)  # type: ignore[union-attr]
        return True, dict(result.structured_content or {})

    async def confirmed(self, answer: dict[str, Any]) -> bool:
        print(f"     {answer['message']}")
        print("     " + json.dumps(answer["details"].get("preview"), indent=2).replace("\n", "\n     "))
        if self.yes:
            print("     confirmed (--yes)")
            return True
        return (await ask("     Go ahead? [y/N] ")).strip().lower() in ("y", "yes")

    async def step(self, number: int, step: Step) -> None:
        args = await self.fill(step.args)
        ok, answer = await self.call(step, args)
        if not ok and answer["code"] == "confirmation_required":
            print(f"{number:>3} {step.tool}: asks for confirmation")
            if not await self.confirmed(answer):
                raise StepFailed("not confirmed, so stopped here; nothing was changed by this step")
            if step.expect != "confirmation_required":  # else the skill's next step passes the token itself
                token = answer["details"]["confirmation_token"]
                ok, answer = await self.call(step, {**args, "confirmation_token": token})
        if not ok:
            outcome = answer["code"]
        elif answer.get("status") == "pending_approval":  # a success: it waits for a person's approval
            outcome = "pending_approval"
        else:
            outcome = "ok"
        if outcome != step.expect:
            raise StepFailed(f"expected {step.expect}, got {outcome}: {answer.get('message') or json.dumps(answer)}")
        for path, wanted in (await self.fill(step.match)).items():
            if (got := at(answer, path)) != wanted:
                raise StepFailed(f"{path} is {got!r}, the skill expects {wanted!r}")
        saved = []
        for name, path in step.save.items():
            self.variables[name] = at(answer, path)
            saved.append(f"{name}={self.variables[name]}")
        shown = outcome if outcome == "ok" else f"{outcome}, as the skill expects"
        print(f"{number:>3} {step.tool}: {shown}" + (f" (saved {', '.join(saved)})" if saved else ""))

    async def run(self) -> str | None:
        """None when every step went as the skill says; else what went otherwise, at the step's file:line."""
        async with self.stack:
            for number, step in enumerate(self.skill.steps, start=1):
                try:
                    await self.step(number, step)
                except StepFailed as failed:
                    return f"{self.skill.path}:{step.line}: step {number} ({step.tool}): {failed}"
        return None


def at(answer: dict[str, Any], path: str) -> Any:
    try:
        return dig(answer, path)
    except KeyError:
        raise StepFailed(f"the answer has nothing at {path}: {json.dumps(answer)}") from None


async def ask(prompt: str) -> str:
    """A line typed by the person at the terminal (an empty answer when there is nobody: stdin closed)."""
    try:
        return await anyio.to_thread.run_sync(input, prompt)
    except EOFError:
        return ""


def load(skill: str) -> Skill:
    path = Path(skill)
    if path.is_file():
        return parse(path.read_text(), path)
    shipped = load_all()
    if skill not in shipped:
        raise SystemExit(f"no skill {skill!r}: give a SKILL.md path or one of {', '.join(sorted(shipped))}")
    return shipped[skill]


def argument(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("skill", help="a shipped skill's name or a SKILL.md path")
    parser.add_argument("--url", help="a running `favmcp serve --http` (http://127.0.0.1:8765/mcp); default: stdio")
    parser.add_argument("--arg", type=argument, action="append", default=[], help="a skill argument, name=value")
    parser.add_argument("--yes", action="store_true", help="confirm destructive calls without asking")
    options = parser.parse_args()
    skill = load(options.skill)
    print(f"{skill.name}: {len(skill.steps)} steps, over {options.url or 'stdio'}")
    agent = Agent(skill, options.url, os.environ.get("FAVMCP_API_KEY"), options.yes, dict(options.arg))
    failure = anyio.run(agent.run)
    if failure:
        sys.exit(failure)
    print(f"done: every step went as {skill.path} says")


if __name__ == "__main__":
    main()
