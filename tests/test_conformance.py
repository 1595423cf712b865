"""The official MCP conformance suite (@modelcontextprotocol/conformance, pinned in tests/conformance with the Node 22
it needs) against `favmcp serve --http` at /mcp/public, on SQLite and Postgres: its generic server scenarios pass.

"Generic" means a scenario that needs nothing but a compliant server. Most of the suite's server scenarios call the
fixture tools, prompts and resources of its "everything" test server (test_image_content, test_simple_prompt,
test://static-text ...), which a business backend does not and should not have, or exercise optional capabilities
that our server does not declare; EXCLUDED says why each one is left out. Every scenario the pinned suite lists is
in one of the two tables, so a new version's new scenario is a decision to make, not one silently skipped.

The npm project is built once per test session (tests/npm_build.py). Without Node.js and npm the tests are skipped,
unless FAVMCP_REQUIRE_NODE=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from favmcp.app import App
from tests.npm_build import build_once, node_and_npm
from tests.servers import http_server, server_env

PROJECT = Path(__file__).parent / "conformance"
SUITE = "@modelcontextprotocol/conformance"
RUN_TIMEOUT = 60.0

GENERIC = {
    "server-initialize": "initialize answers with a valid result",
    "ping": "ping answers an empty result",
    "tools-list": "tools/list answers tools with valid names and input schemas",
    "tools-call-error": "a failing call is an isError result with text (here: its fixture tool is unknown to us)",
    "resources-list": "resources/list answers valid resources (our skills)",
    "prompts-list": "prompts/list answers valid prompts (our skills)",
    "dns-rebinding-protection": "a request with a foreign Host/Origin is refused, a loopback one accepted",
}
EXCLUDED = {
    "logging-set-level": "the logging capability is optional and not declared",
    "completion-complete": "the completions capability is optional and not declared",
    "tools-call-simple-text": "calls the fixture tool test_simple_text (it passes only because our not_found is text)",
    "tools-call-image": "calls the fixture tool test_image_content",
    "tools-call-audio": "calls the fixture tool test_audio_content",
    "tools-call-embedded-resource": "calls the fixture tool test_embedded_resource",
    "tools-call-mixed-content": "calls the fixture tool test_multiple_content_types",
    "tools-call-with-logging": "calls the fixture tool test_tool_with_logging (and logging is not declared)",
    "tools-call-with-progress": "calls the fixture tool test_tool_with_progress",
    "tools-call-sampling": "calls the fixture tool test_sampling",
    "tools-call-elicitation": "calls the fixture tool test_elicitation",
    "json-schema-2020-12": "lists the fixture tool json_schema_2020_12_tool",
    "elicitation-sep1034-defaults": "calls the fixture tool test_elicitation_sep1034_defaults",
    "elicitation-sep1330-enums": "calls the fixture tool test_elicitation_sep1330_enums",
    "server-sse-polling": "needs a session and the fixture tool test_reconnection; /mcp is stateless for replicas",
    "server-sse-multiple-streams": "needs a session id; /mcp is stateless (it checks nothing without one)",
    "resources-read-text": "reads the fixture resource test://static-text",
    "resources-read-binary": "reads the fixture resource test://static-binary",
    "resources-templates-read": "reads the fixture template test://template/{id}/data",
    "resources-subscribe": "resource subscriptions are optional and declared off (subscribe: false)",
    "resources-unsubscribe": "resource subscriptions are optional and declared off (subscribe: false)",
    "prompts-get-simple": "gets the fixture prompt test_simple_prompt",
    "prompts-get-with-args": "gets the fixture prompt test_prompt_with_arguments",
    "prompts-get-embedded-resource": "gets the fixture prompt test_prompt_with_embedded_resource",
    "prompts-get-with-image": "gets the fixture prompt test_prompt_with_image",
}
BAD = {"FAILURE", "WARNING"}  # a warning is a SHOULD the server missed: not a pass either


@pytest.fixture(scope="session")
def conformance() -> list[str]:
    """The command that runs the pinned suite's CLI with the pinned Node 22."""
    npm = node_and_npm("to run the MCP conformance suite")[1]
    build_once(PROJECT, npm)
    package = PROJECT / "node_modules" / SUITE
    entry = json.loads((package / "package.json").read_text())["bin"]["conformance"]
    return [str(PROJECT / "node_modules" / ".bin" / "node"), str(package / entry)]


async def run(command: list[str], *args: str) -> tuple[int, str]:
    with anyio.fail_after(RUN_TIMEOUT):
        done = await anyio.run_process([*command, *args], check=False, stderr=-2)  # stderr into stdout
    return done.returncode, done.stdout.decode()


async def test_every_server_scenario_of_the_pinned_suite_is_decided(conformance: list[str]) -> None:
    code, out = await run(conformance, "list", "--server")
    assert code == 0, out
    listed = set(re.findall(r"^\s+- ([\w-]+)", out, re.MULTILINE))
    assert listed == GENERIC.keys() | EXCLUDED.keys(), out
    assert not GENERIC.keys() & EXCLUDED.keys()


async def test_the_generic_server_scenarios_pass_at_mcp_public(
    conformance: list[str], database_url: str, tmp_path: Path, app: App
) -> None:
    """`app` first: it migrates the database the server then opens."""
    results = tmp_path / "results"
    async with http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as server:
        against = ["server", "--url", f"{server.base}/mcp/public", "-o", str(results)]
        outputs: dict[str, tuple[int, str]] = {}

        async def scenario_run(scenario: str) -> None:
            outputs[scenario] = await run(conformance, *against, "--scenario", scenario)

        async with anyio.create_task_group() as runs:  # side by side: each is mostly Node starting up
            for scenario in GENERIC:
                runs.start_soon(scenario_run, scenario)
    failing: dict[str, list[dict[str, Any]]] = {}
    for scenario, (code, out) in outputs.items():
        [folder] = results.glob(f"server-{scenario}-*")
        checks = json.loads((folder / "checks.json").read_text())
        bad = [c for c in checks if c["status"] in BAD]
        if code != 0 or bad or not any(c["status"] == "SUCCESS" for c in checks):
            failing[scenario] = bad or [{"exit": code, "output": out}]
    assert not failing, json.dumps(failing, indent=2)

    # tools-call-error passes on our answer for a tool we do not have: the typed not_found, as an isError result.
    [folder] = results.glob("server-tools-call-error-*")
    [check] = json.loads((folder / "checks.json").read_text())
    result = check["details"]["result"]
    assert result["isError"] is True and result["_meta"]["favmcp/error"]["code"] == "not_found", result
