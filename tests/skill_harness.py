"""Runs a skill's flow (its `json favmcp` steps) in order over MCP against a real `favmcp serve --http`, as an agent
following the SKILL.md would: each step's arguments with the variables filled in, the answer held against the
step's expectation, what it saves kept for the next steps. `ask:*` variables are the person's answers, read from
the emails the server sent to the loopback SMTP server."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from favmcp.skills import Skill, Step, builtin_value, dig, is_builtin, substitute, variables_in
from tests.smtp_server import SmtpServer

CALL_TIMEOUT = 30.0
EMAIL_WAIT = 20.0
ASKS = {"emailed_code": re.compile(r"\b(\d{6})\b"), "invite_token": re.compile(r"\b(fav_inv_\w+)")}


class StepFailed(AssertionError):
    pass


class SkillRun:
    """One run of one skill's flow against one server; `variables` starts with the skill's example arguments."""

    def __init__(self, skill: Skill, url: str, mailbox: SmtpServer, stack: AsyncExitStack) -> None:
        self.skill = skill
        self.url = url
        self.mailbox = mailbox
        self.stack = stack
        self.clients: dict[str | None, Client] = {}
        self.variables: dict[str, Any] = {a.name: a.example for a in skill.arguments}
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.unique = uuid.uuid4().hex[:8]
        self.mail_seen = 0
        self.answers: list[tuple[Step, dict[str, Any]]] = []

    async def client(self, key: str | None) -> Client:
        if key not in self.clients:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            http = await self.stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=CALL_TIMEOUT))
            # Over HTTP the tools that need no key are served at /mcp/public; /mcp wants a credential.
            url = self.url if key else f"{self.url}/public"
            self.clients[key] = await self.stack.enter_async_context(
                Client(streamable_http_client(url, http_client=http), read_timeout_seconds=CALL_TIMEOUT)
            )
        return self.clients[key]

    async def lookup(self, name: str) -> Any:
        if name in self.variables:
            return self.variables[name]
        if name.startswith("ask:"):
            return await self.ask(name.removeprefix("ask:"))
        if is_builtin(name) and name != "api_key":
            return builtin_value(name, self.now, self.unique)
        raise KeyError(name)

    async def ask(self, what: str) -> str:
        """The person reads their newest email since the last one they read and answers with what it holds."""
        pattern = ASKS[what]
        with anyio.fail_after(EMAIL_WAIT):
            while True:
                fresh = self.mailbox.messages[self.mail_seen :]
                found = [m.group(1) for mail in fresh if (m := pattern.search(mail.body))]
                if found:
                    self.mail_seen += len(fresh)
                    return found[-1]
                await anyio.sleep(0.05)

    async def fill(self, value: Any) -> Any:
        """substitute() with an async lookup: resolve every variable first, then substitute from the results."""
        resolved = {name: await self.lookup(name) for name in sorted(variables_in(value))}
        return substitute(value, resolved.__getitem__)

    async def step(self, step: Step) -> dict[str, Any]:
        where = f"{self.skill.path}:{step.line} ({step.tool})"
        args = await self.fill(step.args)
        key = None if step.as_ == "anonymous" else await self.fill(step.as_)
        result = await (await self.client(key)).call_tool(step.tool, args)
        ok, answer = read(result)
        if step.expect == "ok":
            if not ok or answer.get("status") == "pending_approval":
                raise StepFailed(f"{where}: expected ok, got {json.dumps(answer)[:600]}")
        elif step.expect == "pending_approval":
            if not ok or answer.get("status") != "pending_approval":
                raise StepFailed(f"{where}: expected pending_approval, got {json.dumps(answer)[:600]}")
        elif ok or answer.get("code") != step.expect:
            raise StepFailed(f"{where}: expected {step.expect}, got {json.dumps(answer)[:600]}")
        for path, wanted in (await self.fill(step.match)).items():
            try:
                got = dig(answer, path)
            except KeyError:
                raise StepFailed(f"{where}: the answer has no {path}: {json.dumps(answer)[:600]}") from None
            if got != wanted:
                raise StepFailed(f"{where}: {path} is {got!r}, the skill expects {wanted!r}")
        for name, path in step.save.items():
            try:
                self.variables[name] = dig(answer, path)
            except KeyError:
                raise StepFailed(f"{where}: nothing at {path} to save as {name}: {json.dumps(answer)[:600]}") from None
        self.answers.append((step, answer))
        return answer

    async def run(self) -> list[tuple[Step, dict[str, Any]]]:
        for step in self.skill.steps:
            await self.step(step)
        return self.answers


def read(result: CallToolResult) -> tuple[bool, dict[str, Any]]:
    """(ok, the answer): the structured result, or the error object of an isError result."""
    if result.is_error:
        assert result.content and result.content[0].type == "text", result
        return False, json.loads(result.content[0].text)
    assert result.structured_content is not None, result
    return True, dict(result.structured_content)


@asynccontextmanager
async def skill_run(skill: Skill, url: str, mailbox: SmtpServer) -> AsyncIterator[SkillRun]:
    async with AsyncExitStack() as stack:
        yield SkillRun(skill, url, mailbox, stack)


async def sign_up_owner(run: SkillRun) -> None:
    """The world of a skill whose setup is `owner`: a new business signed up over MCP; its key is $api_key and
    its owner's address $owner_email."""
    email = f"owner+{run.unique}@studio.example"
    await run.step(
        Step(
            tool="register_organisation_request",
            line=0,
            as_="anonymous",
            args={
                "email": email,
                "organisation_name": "Skill Studio",
                "owner_name": "Olivia Owner",
                "timezone": "Europe/Amsterdam",
            },
            save={"signup_request_id": "request_id"},
        )
    )
    made = await run.step(
        Step(
            tool="register_organisation_verify",
            line=0,
            as_="anonymous",
            args={"request_id": "$signup_request_id", "code": "$ask:emailed_code"},
        )
    )
    run.variables.update(api_key=made["api_key"], owner_email=email)
    run.answers.clear()
