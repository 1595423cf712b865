"""Skills are tested like code: every SKILL.md parses, names only tools, arguments, answer fields and error codes
that exist, and its flow runs, step by step, over MCP against a real server on SQLite and on Postgres."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from favmcp.composition import platform
from favmcp.core.errors import ErrorBody, ErrorCode
from favmcp.registry.spec import ToolSpec
from favmcp.skills import Skill, Step, is_builtin, load_all, variables_in
from tests.messaging_servers import Providers, running_providers
from tests.servers import http_server
from tests.skill_harness import sign_up_owner, skill_run
from tests.support import SHARED_LISTING_CACHE

ROOT = Path(__file__).resolve().parent.parent / "skills"
SECTIONS = ("## Rules", "## Flow", "## Errors", "## Example")
BACKTICKED = re.compile(r"(?<!`)`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`(?!`)")
CLI_CALL = re.compile(r"favmcp call (?:--anonymous )?([a-z_]+)")
SKILL_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
# Variables the harness gives a flow, besides the built-ins: the signed-up owner's address, and the local
# providers' credentials for channel setup.
HARNESS_VARIABLES = {
    "owner_email",
    "whatsapp_phone_number_id",
    "whatsapp_waba_id",
    "whatsapp_access_token",
    "whatsapp_app_secret",
    "whatsapp_from_number",
    "twilio_account_sid",
    "twilio_auth_token",
    "twilio_from_number",
    "smtp_host",
    "smtp_port",
}


@cache
def skills() -> dict[str, Skill]:
    return load_all(ROOT)


@cache
def specs() -> dict[str, ToolSpec]:
    return {spec.name: spec for spec in platform().specs}


def _walk(schema: Any, found: set[str]) -> None:
    """Every property name and enum value anywhere in a schema."""
    if isinstance(schema, dict):
        found.update(schema.get("properties", {}))
        found.update(v for v in schema.get("enum", []) if isinstance(v, str))
        if isinstance(schema.get("const"), str):
            found.add(schema["const"])
        for value in schema.values():
            _walk(value, found)
    elif isinstance(schema, list):
        for value in schema:
            _walk(value, found)


@cache
def vocabulary() -> frozenset[str]:
    """The words a skill may put in backticks: tools, their fields and enum values, error codes, scopes, events."""
    found = set(specs()) | {code.value for code in ErrorCode} | HARNESS_VARIABLES
    _walk(ErrorBody.model_json_schema(), found)
    for spec in specs().values():
        found.add(spec.scope)
        _walk(spec.input_schema(), found)
        _walk(spec.output_schema(), found)
    found.update(event.name for event in platform().events)
    return frozenset(found)


def test_every_skill_parses_with_its_folders_name_and_the_index_is_fresh() -> None:
    from tools.render_skill_index import INDEX, index_text

    assert len(skills()) >= 13, sorted(skills())
    for name, skill in skills().items():
        assert SKILL_NAME.match(name) and len(name) <= 64, name
        assert 20 <= len(skill.description) <= 1024, f"{name}: the description says when to use the skill"
        assert skill.setup in ("anonymous", "owner", "owner, providers"), f"{name}: setup {skill.setup!r}"
    assert INDEX.read_text() == index_text(), "skills/index.json is stale: uv run python tools/render_skill_index.py"


def lint(skill: Skill) -> list[str]:
    """What is wrong with a skill, each problem naming the file (and the line of a step)."""
    problems = [f"{skill.path}: no {h!r} section" for h in SECTIONS if not re.search(rf"^{h}\b", skill.body, re.M)]
    if not [s for s in skill.steps if not s.setup]:
        problems.append(f"{skill.path}: no flow steps (json favmcp blocks)")
    unknown = sorted({word for word in BACKTICKED.findall(skill.body) if word not in vocabulary()})
    if unknown:
        problems.append(f"{skill.path}: names what no tool, field or error code is: {unknown}")
    problems += [
        f"{skill.path}: `favmcp call {t}` names no tool" for t in CLI_CALL.findall(skill.body) if t not in specs()
    ]
    errors = skill.body.split("## Errors", 1)[-1].split("\n## ", 1)[0]
    if not set(BACKTICKED.findall(errors)) & {c.value for c in ErrorCode}:
        problems.append(f"{skill.path}: the Errors section names no error code")
    known = {a.name for a in skill.arguments} | HARNESS_VARIABLES
    for step in skill.steps:
        problems += _step_problems(step, f"{skill.path}:{step.line}", known)
        known |= set(step.save)
    return problems


def _step_problems(step: Step, where: str, known: set[str]) -> list[str]:
    spec = specs().get(step.tool)
    if spec is None:
        return [f"{where}: no tool {step.tool}"]
    problems = []
    schema = spec.input_schema()
    extra = set(step.args) - set(schema["properties"])
    if extra:
        problems.append(f"{where}: {step.tool} takes no {sorted(extra)}")
    literal = {k: v for k, v in step.args.items() if not variables_in(v) and k in schema["properties"]}
    refused = [e.message for e in jsonschema.Draft202012Validator({**schema, "required": []}).iter_errors(literal)]
    if refused:
        problems.append(f"{where}: {step.tool} refuses these arguments: {refused}")
    if step.expect not in ("ok", "pending_approval") and step.expect not in {c.value for c in ErrorCode}:
        problems.append(f"{where}: no error code {step.expect!r}")
    if step.expect == "pending_approval" and spec.gate != "approval":
        problems.append(f"{where}: {step.tool} has no approval gate")
    if step.expect in ("ok", "pending_approval"):
        problems += [
            f"{where}: {step.tool}'s answer has no {path}"
            for path in [*step.save.values(), *step.match]
            if not _has_path(spec.output_schema(), path)
        ]
    names = variables_in(step.args) | variables_in(step.match) | variables_in(step.as_)
    missing = sorted(n for n in names if not is_builtin(n) and n not in known)
    if missing:
        problems.append(f"{where}: variables {missing} are not saved by an earlier step")
    asks = sorted(n for n in names if n.startswith("ask:") and n not in ("ask:emailed_code", "ask:invite_token"))
    if asks:
        problems.append(f"{where}: nobody can answer {asks}")
    return problems


@pytest.mark.parametrize("name", sorted(load_all(ROOT)))
def test_a_skill_has_its_sections_and_names_only_what_exists(name: str) -> None:
    assert lint(skills()[name]) == []


def test_the_lint_catches_a_made_up_tool_argument_field_and_error_code(tmp_path: Path) -> None:
    text = (ROOT / "getting-started" / "SKILL.md").read_text()
    broken = text.replace("## Errors", "## Errors\n\n`not_an_error_code` and `searh_tools`.\n", 1) + (
        '\n```json favmcp\n{"tool": "whoami", "args": {"colour": "red"}, "save": {"x": "no_such_field"}}\n```\n'
        '\n```json favmcp\n{"tool": "search_tools", "args": {"limit": "$x", "query": 7}, "expect": "exploded"}\n```\n'
        '\n```json favmcp\n{"tool": "summon_unicorn"}\n```\n'
    )
    (tmp_path / "getting-started").mkdir()
    (tmp_path / "getting-started" / "SKILL.md").write_text(broken)
    found = "\n".join(lint(load_all(tmp_path)["getting-started"]))
    for wanted in (
        "['not_an_error_code', 'searh_tools']",
        "whoami takes no ['colour']",
        "whoami's answer has no no_such_field",
        "search_tools refuses these arguments",
        "no error code 'exploded'",
        "no tool summon_unicorn",
    ):
        assert wanted in found, (wanted, found)


def _has_path(schema: dict[str, Any], path: str) -> bool:
    defs = schema.get("$defs", {})
    here = schema
    for part in path.split("."):
        here = _resolve(here, defs)
        if part.isdigit() and "items" in here:
            here = here["items"]
        elif part in here.get("properties", {}):
            here = here["properties"][part]
        else:
            # A free-form map (details, changes) takes any key; anything else has no such field.
            return here.get("type") == "object" and "properties" not in here
    return True


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return _resolve(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    for branch in schema.get("anyOf", []):
        if branch.get("type") != "null":
            return _resolve(branch, defs)
    return schema


# -- the flows, run ------------------------------------------------------------------------------------------


@pytest.fixture
def providers() -> Iterator[Providers]:
    with running_providers() as found:
        yield found


def server_env(database_url: str, home: Path, providers: Providers) -> dict[str, str]:
    return {
        "FAVMCP_DATABASE_URL": database_url,
        "FAVMCP_HOME": str(home),
        "FAVMCP_SECRET_KEY": f"skills-{uuid.uuid4().hex}",
        "FAVMCP_SMTP_URL": providers.mail.url,
        "FAVMCP_LOG_LEVEL": "WARNING",
        "FAVMCP_PUBLIC_URL": "http://127.0.0.1:{port}",
        "FAVMCP_WHATSAPP_API_BASE": providers.whatsapp.base,
        "FAVMCP_TWILIO_API_BASE": providers.twilio.base,
        "FAVMCP_ALLOW_PRIVATE_TARGETS": "1",
        "FAVMCP_CACHE_DIR": SHARED_LISTING_CACHE,
    }


def provider_variables(providers: Providers) -> dict[str, Any]:
    wa, tw, mail = providers.whatsapp, providers.twilio, providers.mail
    return {
        "whatsapp_phone_number_id": wa.phone_number_id,
        "whatsapp_waba_id": wa.waba_id,
        "whatsapp_access_token": wa.token,
        "whatsapp_app_secret": wa.app_secret,
        "whatsapp_from_number": wa.display_number,
        "twilio_account_sid": tw.account_sid,
        "twilio_auth_token": tw.auth_token,
        "twilio_from_number": tw.from_number,
        "smtp_host": mail.host,
        "smtp_port": mail.port,
    }


@pytest.mark.parametrize("name", sorted(load_all(ROOT)))
async def test_a_skills_flow_runs_over_mcp(name: str, database_url: str, tmp_path: Path, providers: Providers) -> None:
    skill = skills()[name]
    async with (
        http_server(server_env(database_url, tmp_path, providers), tmp_path / "server.log") as server,
        skill_run(skill, server.url, providers.mail) as run,
    ):
        if "owner" in skill.setup:
            await sign_up_owner(run)
        if "providers" in skill.setup:
            run.variables.update(provider_variables(providers))
        answers = await run.run()
    assert [step.tool for step, _ in answers] == [step.tool for step in skill.steps]


# -- served where agents look ---------------------------------------------------------------------------------


async def test_skills_are_prompts_resources_search_results_and_on_the_server_card(
    database_url: str, tmp_path: Path, providers: Providers
) -> None:
    import httpx

    from tests.skill_harness import read

    async with (
        http_server(server_env(database_url, tmp_path, providers), tmp_path / "server.log") as server,
        skill_run(skills()["getting-started"], server.url, providers.mail) as run,
    ):
        client = await run.client(None)
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == set(skills())
        for skill in skills().values():
            prompt = prompts[skill.name]
            assert prompt.description == skill.description
            assert [(a.name, a.required) for a in prompt.arguments or []] == [
                (a.name, a.required) for a in skill.arguments
            ]
            given = {a.name: str(a.example) for a in skill.arguments}
            got = await client.get_prompt(skill.name, given)
            text = got.messages[0].content.text  # type: ignore[union-attr]
            assert skill.body.strip() in text and all(f"{k} = {v}" in text for k, v in given.items())
        resources = {str(r.uri): r for r in (await client.list_resources()).resources}
        assert set(resources) == {f"skill://{name}/SKILL.md" for name in skills()}
        for uri in resources:
            content = (await client.read_resource(uri)).contents[0]
            assert content.text == skills()[uri.split("/")[2]].text  # type: ignore[union-attr]
        with pytest.raises(Exception, match="No resource"):
            await client.read_resource("skill://../../etc/passwd/SKILL.md")
        with pytest.raises(Exception, match="No prompt"):
            await client.get_prompt("no-such-skill")
        ok, found = read(await client.call_tool("search_tools", {"query": "get started"}))
        assert ok and found["skills"][0]["name"] == "getting-started", found
        async with httpx.AsyncClient() as http:
            card = (await http.get(f"{server.base}/.well-known/mcp/server-card.json")).json()
        assert {p["name"] for p in card["prompts"]} == set(skills())
        assert {r["uri"] for r in card["resources"]} == set(resources)
