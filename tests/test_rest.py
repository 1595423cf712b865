"""The REST API: every tool at its route through the runner (keys, gates, idempotency), RFC 9457 problems, the
OpenAPI document, and schemathesis against a live `favmcp serve --http`; on SQLite and Postgres."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from pydantic import BaseModel, Field
from tools.export_openapi import OUT, render
from tools.schemathesis_run import command

from favmcp import composition
from favmcp.app import App
from favmcp.core.errors import ErrorCode
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain, Platform
from favmcp.registry.registry import Registry
from favmcp.registry.spec import ToolInput, WriteInput, tool
from favmcp.transports.http import build_http_app
from favmcp.transports.rest import MAX_BODY, PROBLEM_JSON, STATUS, openapi, operations, problem
from tests.servers import http_server, server_env
from tests.support import FakeClock, Owner, join, make_settings, signup, unique_address, unique_email

BASE = "http://127.0.0.1:8765"


class EchoInput(ToolInput):
    ids: list[int] = Field(default_factory=list)
    flag: bool = False
    name: str | None = None


class EchoOutput(BaseModel):
    ids: list[int]
    flag: bool
    name: str | None


@tool(domain="resttest", title="Echo", hints="R I", scope="public", route="GET /v1/echo")
async def echo_query(ctx: ToolContext, args: EchoInput) -> EchoOutput:
    """Answers its arguments."""
    return EchoOutput(ids=args.ids, flag=args.flag, name=args.name)


@pytest.fixture
async def web_app(database_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    """The whole platform and a test tool whose query takes a list, a flag and text."""
    platform = Platform([*composition.platform().domains, Domain(name="resttest", tools=[echo_query])])
    app = await App.open(make_settings(tmp_path, database_url), clock=clock, platform=platform)
    yield app
    await app.close()


@pytest.fixture
async def studio(web_app: App) -> Owner:
    return await signup(web_app)


@pytest.fixture
async def rest(web_app: App) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_http_app(web_app, run_dispatcher=False), client=(unique_address(), 4000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["type"].endswith(code), body
    assert body["title"] and body["detail"] and body["request_id"].startswith("req_"), body
    return dict(body)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


# -- the routes and the document, from the registry ------------------------------------------------------------------


def test_every_tool_has_a_route_and_an_operation() -> None:
    specs = composition.platform().specs
    ops = operations(specs)
    assert sorted(op.spec.name for op in ops) == sorted(s.name for s in specs)
    for op in ops:
        assert set(op.params) <= set(op.fields), op.spec.name
        if op.spec.route is None:
            assert (op.method, op.path) == ("POST", f"/v1/tools/{op.spec.name}")
    document = openapi(Registry(specs))
    assert document["openapi"] == "3.1.0"
    documented = {
        operation["operationId"]: (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert documented == {op.spec.name: (op.method, op.path) for op in ops}


def test_the_exported_document_is_current() -> None:
    assert OUT.exists() and OUT.read_text() == render(), "run: uv run python tools/export_openapi.py"


class ThingInput(WriteInput):
    thing_id: str
    data: dict[str, Any] = Field(default_factory=dict)


class ReadThingInput(ToolInput):
    thing_id: str
    data: dict[str, Any] = Field(default_factory=dict)


@pytest.mark.parametrize(
    ("hints", "route", "problem_"),
    [
        ("W", "GET /v1/things/{thing_id}", "GET is for read-only tools"),
        ("R", "DELETE /v1/things/{thing_id}", "GET is for read-only tools"),
        ("W", "POST /v1/things/{other_id}", "must be required input fields"),
        ("W", "POST /v1/things/{thing_id}/{thing_id}", "must be required input fields"),
        ("W", "POST v1/things", "is not 'METHOD /v1/path'"),
        ("W", "FETCH /v1/things", "is not 'METHOD /v1/path'"),
        ("W", "POST /v1/Things", "is not 'METHOD /v1/path'"),
    ],
)
def test_a_route_is_checked_when_the_tool_is_declared(hints: str, route: str, problem_: str) -> None:
    model: type[ToolInput] = ReadThingInput if hints == "R" else ThingInput

    async def thing(ctx: ToolContext, args: Any) -> EchoOutput:
        raise AssertionError

    thing.__annotations__ = {"ctx": ToolContext, "args": model, "return": EchoOutput}
    with pytest.raises(TypeError, match=problem_):
        tool(domain="x", title="Thing", hints=hints, scope="public", route=route)(thing)


def test_two_tools_on_one_route_and_objects_in_a_query_are_refused() -> None:
    async def read_thing(ctx: ToolContext, args: ReadThingInput) -> EchoOutput:
        raise AssertionError

    async def write_thing(ctx: ToolContext, args: ThingInput) -> EchoOutput:
        raise AssertionError

    one = tool(domain="x", title="A", hints="W", scope="public", route="POST /v1/things/{thing_id}")(write_thing)
    other = tool(domain="x", title="B", hints="W", scope="public", route="POST /v1/things/{thing_id}")(write_thing)
    with pytest.raises(ValueError, match="both at POST"):
        operations([one, other])
    reader = tool(domain="x", title="R", hints="R", scope="public", route="GET /v1/things/{thing_id}")(read_thing)
    with pytest.raises(ValueError, match="cannot carry"):
        operations([reader])


def test_every_error_code_has_its_status() -> None:
    assert set(STATUS) == set(ErrorCode)
    for code in ErrorCode:
        response = problem({"code": code, "message": "m", "field_errors": [], "retry_after": 7})
        body = json.loads(bytes(response.body))
        assert response.status_code == STATUS[code] == body["status"], code
        assert response.media_type == PROBLEM_JSON and body["detail"] == "m" and body["type"].endswith(code)
    assert problem({"code": ErrorCode.rate_limited, "message": "m", "retry_after": 7}).headers["retry-after"] == "7"
    assert STATUS[ErrorCode.internal_error] == 500 and STATUS[ErrorCode.confirmation_required] == 428


# -- calls through the app --------------------------------------------------------------------------------------------


async def test_the_server_serves_its_own_document(rest: httpx.AsyncClient, web_app: App) -> None:
    served = ok(await rest.get("/openapi.json"))
    assert served == json.loads(json.dumps(openapi(web_app.registry)))
    assert served["paths"]["/v1/echo"]["get"]["operationId"] == "echo_query"


async def test_crud_through_resource_routes(rest: httpx.AsyncClient, studio: Owner) -> None:
    key = bearer(studio.key)
    made = ok(
        await rest.post("/v1/products", json={"name": "Yoga mat", "unit_amount": 2500, "sku": "MAT"}, headers=key)
    )
    path = f"/v1/products/{made['id']}"
    assert ok(await rest.get(path, headers=key))["name"] == "Yoga mat"
    changed = ok(await rest.patch(path, json={"unit_amount": 3000, "description": "Cork"}, headers=key))
    assert (changed["unit_amount"], changed["description"]) == (3000, "Cork")
    page = ok(await rest.get("/v1/products", params={"limit": 1, "status": "active"}, headers=key))
    assert [p["id"] for p in page["items"]] == [made["id"]]
    assert ok(await rest.delete(path, headers=key))["status"] == "archived"
    assert ok(await rest.get("/v1/products", params={"status": "active"}, headers=key))["items"] == []
    # Query values are typed by the input schema, or refused by the tool's validation with the field named.
    bad = refused(await rest.get("/v1/products", params={"limit": "many"}, headers=key), 422, "validation_failed")
    assert [e["field"] for e in bad["field_errors"]] == ["limit"]
    unknown = refused(await rest.get("/v1/products", params={"colour": "red"}, headers=key), 422, "validation_failed")
    assert [e["field"] for e in unknown["field_errors"]] == ["colour"]
    keys = ok(await rest.get("/v1/api-keys", params={"include_revoked": "true"}, headers=key))
    assert keys["items"]


async def test_a_query_carries_lists_flags_and_text(rest: httpx.AsyncClient) -> None:
    echoed = ok(await rest.get("/v1/echo", params=[("ids", "3"), ("ids", "1"), ("flag", "true"), ("name", "42")]))
    assert echoed == {"ids": [3, 1], "flag": True, "name": "42"}
    assert ok(await rest.get("/v1/echo", params={"ids": "5"}))["ids"] == [5]
    refused(await rest.get("/v1/echo", params={"flag": "maybe"}), 422, "validation_failed")


async def test_a_destructive_call_asks_first(rest: httpx.AsyncClient, web_app: App, studio: Owner) -> None:
    key = bearer(studio.key)
    post = ok(await rest.post("/v1/posts", json={"title": "Spring timetable"}, headers=key))
    path = f"/v1/posts/{post['id']}"
    asked = refused(await rest.delete(path, headers=key), 428, "confirmation_required")
    assert asked["details"]["preview"]["post_id"] == post["id"]
    token = asked["details"]["confirmation_token"]
    assert ok(await rest.post("/v1/tools/get_post", json={"post_id": post["id"]}, headers=key))["id"] == post["id"]
    assert ok(await rest.delete(path, headers={**key, "Confirmation-Token": token}))["post_id"] == post["id"]
    refused(await rest.post("/v1/tools/get_post", json={"post_id": post["id"]}, headers=key), 404, "not_found")
    # The token may come back in the body as well.
    member = await join(web_app, studio, "staff")
    deactivate = f"/v1/team/members/{member.user_id}/deactivate"
    token = refused(await rest.post(deactivate, headers=key), 428, "confirmation_required")["details"]
    done = ok(await rest.post(deactivate, json={"confirmation_token": token["confirmation_token"]}, headers=key))
    assert done["member"]["status"] == "deactivated"
    gone = await rest.get("/v1/whoami", headers=bearer(member.key))
    refused(gone, 401, "unauthenticated")
    assert gone.headers["www-authenticate"] == 'Bearer realm="favmcp", error="invalid_token"'


async def test_a_send_held_for_approval_answers_202(rest: httpx.AsyncClient, studio: Owner) -> None:
    key = bearer(studio.key)
    twilio = {"account_sid": "AC" + "0" * 32, "auth_token": "rest-token", "from_number": "+15005550006"}
    ok(await rest.patch("/v1/channels/sms", json={"quiet_hours": None, **twilio}, headers=key))
    member = ok(await rest.post("/v1/members", json={"name": "Ann", "phone": "+31612345678"}, headers=key))
    consent = {"granted": True, "source": "front desk"}
    ok(await rest.put(f"/v1/members/{member['id']}/consent/sms", json=consent, headers=key))
    held = await rest.post(
        "/v1/messages", json={"member_id": member["id"], "channel": "sms", "text": "Hi"}, headers=key
    )
    assert held.status_code == 202, held.text
    assert held.json()["status"] == "pending_approval"
    assert held.headers["location"] == f"/v1/approvals/{held.json()['approval_id']}"
    assert ok(await rest.get(held.headers["location"], headers=key))["status"] == "pending"


async def test_an_idempotency_key_replays_the_first_answer(rest: httpx.AsyncClient, studio: Owner) -> None:
    key = bearer(studio.key, **{"Idempotency-Key": f"mat-{uuid.uuid4().hex}"})
    first = ok(await rest.post("/v1/products", json={"name": "Block", "unit_amount": 900}, headers=key))
    again = ok(await rest.post("/v1/products", json={"name": "Block", "unit_amount": 900}, headers=key))
    assert again == first
    listed = ok(await rest.get("/v1/products", headers=bearer(studio.key)))
    assert [p["id"] for p in listed["items"]] == [first["id"]], "made once"
    other = await rest.post("/v1/products", json={"name": "Strap", "unit_amount": 900}, headers=key)
    refused(other, 422, "idempotency_mismatch")
    both = {"name": "Block", "unit_amount": 900, "idempotency_key": "another"}
    twice = refused(await rest.post("/v1/products", json=both, headers=key), 422, "validation_failed")
    assert "idempotency_key" in twice["detail"]


async def test_each_refusal_has_its_status(rest: httpx.AsyncClient, web_app: App, studio: Owner) -> None:
    key = bearer(studio.key)
    anonymous = await rest.get("/v1/products")
    refused(anonymous, 401, "unauthenticated")
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="favmcp"'
    narrow = ok(await rest.post("/v1/api-keys", json={"name": "shelf", "scopes": ["products:read"]}, headers=key))
    shelf = bearer(narrow["api_key"])
    refused(await rest.post("/v1/products", json={"name": "X", "unit_amount": 1}, headers=shelf), 403, "forbidden")
    refused(await rest.get("/v1/products/prd_nothing", headers=key), 404, "not_found")
    refused(await rest.get("/v1/nothing/here", headers=key), 404, "not_found")
    wrong = refused(await rest.put("/v1/products", headers=key), 405, "not_found")
    assert wrong["title"] == "Method Not Allowed" and (await rest.put("/v1/products")).headers["allow"] == "POST, GET"
    ok(await rest.post("/v1/products", json={"name": "Mat", "unit_amount": 1, "sku": "DUP"}, headers=key))
    same_sku = {"name": "Mat 2", "unit_amount": 1, "sku": "DUP"}
    refused(await rest.post("/v1/products", json=same_sku, headers=key), 409, "conflict")
    missing = refused(await rest.post("/v1/products", json={"name": "Mat"}, headers=key), 422, "validation_failed")
    assert [e["field"] for e in missing["field_errors"]] == ["unit_amount"]
    post = ok(await rest.post("/v1/posts", json={"title": "Draft"}, headers=key))
    refused(await rest.post(f"/v1/posts/{post['id']}/unpublish", headers=key), 409, "invalid_state")
    body = {"name": "Mat", "unit_amount": 1}
    json_type = {**key, "Content-Type": "application/json"}
    refused(await rest.post("/v1/products", content=b"{nope", headers=json_type), 400, "validation_failed")
    text = {**key, "Content-Type": "text/plain"}
    refused(await rest.post("/v1/products", content=json.dumps(body), headers=text), 415, "validation_failed")
    refused(await rest.post("/v1/products", content=b"[1]", headers=json_type), 422, "validation_failed")
    not_a_number = b'{"name": "Mat", "unit_amount": NaN}'
    refused(await rest.post("/v1/products", content=not_a_number, headers=json_type), 400, "validation_failed")
    refused(await rest.post("/v1/products", params={"name": "Mat"}, json=body, headers=key), 400, "validation_failed")
    huge = {"name": "Mat", "unit_amount": 1, "description": "x" * MAX_BODY}
    refused(await rest.post("/v1/products", json=huge, headers=key), 413, "validation_failed")
    refused(await rest.get("/v1/products", headers={**key, "Host": "evil.example"}), 421, "forbidden")
    email = unique_email()
    signup_args = {"email": email, "organisation_name": "Again", "owner_name": "Ann"}
    answers = [await rest.post("/v1/tools/register_organisation_request", json=signup_args) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200], [a.text for a in answers]
    limited = refused(answers[3], 429, "rate_limited")
    assert int(answers[3].headers["retry-after"]) == limited["retry_after"] > 0


# -- schemathesis against a live server -------------------------------------------------------------------------------


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    database_url: str, tmp_path: Path, owner: Owner
) -> None:
    """Every operation, as an owner, positive and negative data, a fixed seed and few examples (the fuller run is
    tools/schemathesis_run.py)."""
    async with http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as server:
        argv = command(server.base, owner.key, examples=5, seed=1, phases="fuzzing")
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"}
        with anyio.fail_after(100):
            done = await anyio.run_process(argv, check=False, env=env, cwd=tmp_path)
    output = done.stdout.decode(errors="replace")
    assert done.returncode == 0, output[-6000:]
    assert "passed" in output and "165 selected" in output, output[-2000:]
