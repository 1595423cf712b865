"""Logs: structured JSON lines with request id, tool, outcome and duration; never secrets, codes or personal data."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from favmcp import logging as favlog
from favmcp.app import App
from favmcp.effects.channels.email import SmtpChannel
from favmcp.effects.dispatcher import Dispatcher
from favmcp.registry.runner import CallResult
from tests.smtp_server import closed_port
from tests.support import FakeClock, latest_code, unique_address


@pytest.fixture
def reset_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:], root.level = handlers, level


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a log line that is not JSON: {line!r}")
    return parsed


async def test_logs_carry_the_call_but_no_secrets_codes_or_personal_data(
    app: App,
    clock: FakeClock,
    reset_logging: None,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # favmcp's own set-up, done here so that it binds the stderr captured during the test (not a terminal: JSON).
    favlog.configure("INFO")
    local_part = f"zelda.q{uuid.uuid4().hex[:10]}"
    email = f"{local_part}@example.org"
    owner_name = f"Zelda Quist{uuid.uuid4().hex[:6]}"
    address = unique_address()
    calls: list[tuple[str, CallResult]] = []

    async def call(tool: str, args: dict[str, Any], key: str | None = None) -> CallResult:
        result = await app.runner.call(tool, args, credential=key, client_address=address)
        calls.append((tool, result))
        return result

    requested = await call(
        "register_organisation_request",
        {"email": email, "organisation_name": "Quist Pilates", "owner_name": owner_name},
    )
    assert requested.ok
    code = await latest_code(app, email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert not (
        await call("register_organisation_verify", {"request_id": requested.data["request_id"], "code": wrong})
    ).ok
    verified = await call("register_organisation_verify", {"request_id": requested.data["request_id"], "code": code})
    assert verified.ok
    owner_key = verified.data["api_key"]
    made = await call("create_api_key", {"name": "booking agent"}, owner_key)
    assert made.ok
    second_key = made.data["api_key"]
    assert (await call("whoami", {}, second_key)).ok
    forged = owner_key[:-6] + "abcdef"
    assert not (await call("whoami", {}, forged)).ok

    # Delivery logs too: one local delivery, one failed SMTP attempt.
    while await app.dispatcher.run_once():
        pass
    await call("register_organisation_request", {"email": email, "organisation_name": "Q", "owner_name": owner_name})
    with closed_port() as port:
        smtp = SmtpChannel("127.0.0.1", port, "favmcp <no-reply@favmcp.test>")
        failing = Dispatcher(app.db, smtp, app.settings.secret_keys, clock=clock)
        assert await failing.run_once() >= 1

    captured = capsys.readouterr()
    everything = "\n".join([captured.err, captured.out, caplog.text])
    for secret in (
        owner_key,
        owner_key.removeprefix("fav_mcp_"),
        second_key,
        second_key.removeprefix("fav_mcp_"),
        forged.removeprefix("fav_mcp_"),
        code,
        wrong,
        email,
        local_part,
        owner_name,
    ):
        assert secret not in everything, f"{secret!r} was logged"

    logged = json_lines(captured.err)
    tool_calls = {line["request_id"]: line for line in logged if line.get("event") == "tool_call"}
    for tool, result in calls:
        line = tool_calls.get(result.request_id)
        assert line is not None, f"no tool_call line for {tool}"
        assert line["tool"] == tool and line["level"] == "info" and "timestamp" in line
        assert line["outcome"] == ("ok" if result.ok else result.data["error"]["code"])
        assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
    by_tool = {line["tool"]: line for line in tool_calls.values() if line["outcome"] == "ok"}
    assert by_tool["create_api_key"]["workspace"] == verified.data["workspace_id"]
    assert [line["outcome"] for line in tool_calls.values() if line["tool"] == "register_organisation_verify"] == [
        "validation_failed",
        "ok",
    ]
    failures = [line for line in logged if line.get("event") == "outbox_delivery_failed"]
    assert failures and all(line["level"] == "warning" and line["message_id"].startswith("out_") for line in failures)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_library_loggers_write_the_same_json_lines(reset_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    favlog.configure("INFO")
    logging.getLogger("mcp.server.transport_security").warning("Invalid Host header: %s", "evil.example")
    logging.getLogger("uvicorn.error").info("below the level: not shown")
    lines = json_lines(capsys.readouterr().err)
    assert [(line["logger"], line["level"], line["event"]) for line in lines] == [
        ("mcp.server.transport_security", "warning", "Invalid Host header: evil.example")
    ]
    assert lines[0]["timestamp"].endswith("Z")
