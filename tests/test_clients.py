"""The typed clients in clients/, generated from docs/openapi.json by tools/generate_clients.py: they are current,
the Python client works against a real `favmcp serve --http` on SQLite and Postgres, and the TypeScript client
compiles (`tsc --noEmit`) and its example runs against one.

Without Node.js and npm the TypeScript tests are skipped, unless FAVMCP_REQUIRE_NODE=1 (CI), which makes that a
failure.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest
from tools.generate_clients import DOCUMENT, PYTHON, TYPESCRIPT, read_model, render, stale

from favmcp.app import App
from tests.npm_build import build_once, node_and_npm
from tests.servers import HttpServer, http_server, server_env
from tests.support import Owner, unique_email

RUN_TIMEOUT = 120.0


def client_package() -> ModuleType:
    """favmcp_client from the checkout, without installing it."""
    if str(PYTHON.parent) not in sys.path:
        sys.path.insert(0, str(PYTHON.parent))
    return importlib.import_module("favmcp_client")


fc = client_package()


@pytest.fixture
async def server(database_url: str, tmp_path: Path, app: App) -> AsyncIterator[HttpServer]:
    """A real `favmcp serve --http` on the test's database (the `app` fixture migrated it)."""
    async with http_server(server_env(database_url, tmp_path), tmp_path / "server.log") as running:
        yield running


# -- generated from the document -------------------------------------------------------------------------------------


def test_the_generated_clients_are_current() -> None:
    assert stale() == [], "run: uv run python tools/generate_clients.py"


def test_every_operation_is_a_method_and_a_route() -> None:
    document = json.loads(DOCUMENT.read_text())
    operations = {
        op["operationId"]: (method.upper(), path)
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    assert {op.name for op in read_model(document).operations} == set(operations)
    for name in operations:
        assert callable(getattr(fc.Client, name)), name
    routes = (TYPESCRIPT / "routes.ts").read_text()
    for name, (method, path) in operations.items():
        assert f'  {name}: ["{method}", "{path}"],' in routes, name
    assert render() == render(), "the output is deterministic"


def test_a_changed_document_makes_the_files_stale() -> None:
    document = json.loads(DOCUMENT.read_text())
    document["paths"]["/v1/members"]["post"]["operationId"] = "enrol_customer"
    files = render(document)
    assert "async def enrol_customer(" in files[PYTHON / "client.py"]
    assert 'enrol_customer: ["POST", "/v1/members"],' in files[TYPESCRIPT / "routes.ts"]
    current = render()
    changed = sorted(p.name for p in files if files[p] != current[p])
    assert changed == ["client.py", "models.py", "routes.ts", "types.ts"]


# -- the Python client against a live server -------------------------------------------------------------------------


async def test_the_python_client_against_a_live_server(server: HttpServer, owner: Owner) -> None:
    async with fc.Client(server.base, owner.key) as favmcp:
        email = unique_email("ada")
        ada = await favmcp.create_member(name="Ada", email=email, lifecycle="regular", tags=["vip"])
        profile = await favmcp.get_member_profile(member_id=ada["id"])
        assert (profile["name"], profile["email"], profile["tags"]) == ("Ada", email, ["vip"])

        # Left out stays, None sends null and clears.
        await favmcp.update_member(member_id=ada["id"], phone="+31612345678")
        cleared = await favmcp.update_member(member_id=ada["id"], email=None)
        assert (cleared["email"], cleared["phone"]) == (None, "+31612345678")

        bob = await favmcp.create_member(name="Bob", phone="+31612345670", lifecycle="lead")
        regulars = await favmcp.search_members(lifecycle="regular")
        assert [m["id"] for m in regulars["items"]] == [ada["id"]]
        page = await favmcp.search_members(limit=1)
        assert [m["id"] for m in page["items"]] == [bob["id"]] and page["has_more"] and page["next_cursor"]
        rest = await favmcp.search_members(limit=1, cursor=page["next_cursor"])
        assert [m["id"] for m in rest["items"]] == [ada["id"]]

        with pytest.raises(fc.FavmcpError) as refused:
            await favmcp.create_member(name="Cy", email=unique_email("cy"), birthday="not a date")
        error = refused.value
        assert (error.status, error.code) == (422, "validation_failed")
        assert [e.field for e in error.field_errors] == ["birthday"]
        assert error.request_id.startswith("req_") and error.hint and not error.retryable

        with pytest.raises(fc.FavmcpError) as missing:
            await favmcp.get_member_profile(member_id="mem_nothing")
        assert (missing.value.status, missing.value.code) == (404, "not_found")

        # A destructive tool asks first; the token it gives goes back as the Confirmation-Token header.
        with pytest.raises(fc.FavmcpError) as asked:
            await favmcp.delete_member(member_id=bob["id"])
        assert (asked.value.status, asked.value.code) == (428, "confirmation_required")
        assert asked.value.details["preview"] and asked.value.confirmation_token
        assert (await favmcp.get_member_profile(member_id=bob["id"]))["status"] == "active", "nothing changed yet"
        erased = await favmcp.delete_member(member_id=bob["id"], confirmation_token=asked.value.confirmation_token)
        assert erased["status"] == "erased"

        # The same Idempotency-Key replays the first answer; with other arguments it is refused.
        key = f"mat-{uuid.uuid4().hex}"
        first = await favmcp.create_product(name="Mat", unit_amount=2500, idempotency_key=key)
        again = await favmcp.create_product(name="Mat", unit_amount=2500, idempotency_key=key)
        assert again == first
        assert [p["id"] for p in (await favmcp.list_products())["items"]] == [first["id"]], "made once"
        with pytest.raises(fc.FavmcpError) as mismatch:
            await favmcp.create_product(name="Strap", unit_amount=900, idempotency_key=key)
        assert (mismatch.value.status, mismatch.value.code) == (422, "idempotency_mismatch")

    async with fc.Client(server.base) as anonymous:
        assert (await anonymous.whoami())["authenticated"] is False
        with pytest.raises(fc.FavmcpError) as unauthenticated:
            await anonymous.list_products()
        assert (unauthenticated.value.status, unauthenticated.value.code) == (401, "unauthenticated")
        # Signup codes are limited per email and per address: the fourth request is 429, with the seconds to wait.
        signup = {"email": unique_email(), "organisation_name": "Again", "owner_name": "Ann"}
        for _ in range(3):
            assert (await anonymous.register_organisation_request(**signup))["request_id"]
        with pytest.raises(fc.FavmcpError) as limited:
            await anonymous.register_organisation_request(**signup)
        assert (limited.value.status, limited.value.code) == (429, "rate_limited")
        assert limited.value.retry_after > 0 and limited.value.retryable


async def test_a_held_send_is_a_pending_approval(server: HttpServer, owner: Owner) -> None:
    async with fc.Client(server.base, owner.key) as favmcp:
        twilio = {"account_sid": "AC" + "0" * 32, "auth_token": "client-token", "from_number": "+15005550006"}
        await favmcp.configure_channel(channel="sms", quiet_hours=None, **twilio)
        ann = await favmcp.create_member(name="Ann", phone="+31612345679")
        await favmcp.set_marketing_consent(member_id=ann["id"], channel="sms", granted=True, source="front desk")
        held = await favmcp.send_message(member_id=ann["id"], channel="sms", text="Hi")
        assert isinstance(held, fc.PendingApproval), held
        assert held.approval_id.startswith("apr_") and held.location == f"/v1/approvals/{held.approval_id}"
        assert held.answer["status"] == "pending_approval"
        assert (await favmcp.get_approval(approval_id=held.approval_id))["status"] == "pending"


# -- the TypeScript client -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def npm() -> str:
    return node_and_npm("for the TypeScript client")[1]


@pytest.fixture(scope="session")
def typescript_build(npm: str) -> Path:
    """`npm ci`, `tsc --noEmit` and `tsc` in clients/typescript, once per test session."""
    return build_once(TYPESCRIPT, npm, "check", "build")


def test_the_typescript_client_compiles(typescript_build: Path) -> None:
    assert (typescript_build / "client.js").exists() and (typescript_build / "types.d.ts").exists()


def test_the_typescript_types_refuse_wrong_arguments(typescript_build: Path, tmp_path: Path) -> None:
    """The types are not `any`: a wrong argument, a missing one and a wrong answer field do not compile."""
    client = os.path.relpath(TYPESCRIPT / "client.js", tmp_path)
    (tmp_path / "wrong.ts").write_text(
        f'import {{ FavmcpClient }} from "{client}";\n'
        'const favmcp = new FavmcpClient({ baseUrl: "http://127.0.0.1:8765" });\n'
        'await favmcp.call("search_members", { lifecycle: "everyone" });\n'
        'await favmcp.call("get_member_profile", {});\n'
        'const member = await favmcp.call("create_member", { name: "Ada" });\n'
        "export const n: number = member.name;\n"
    )
    options = json.loads((TYPESCRIPT / "tsconfig.json").read_text())["compilerOptions"]
    options |= {"noEmit": True, "typeRoots": [str(TYPESCRIPT / "node_modules" / "@types")]}
    (tmp_path / "package.json").write_text('{"type": "module"}')
    (tmp_path / "tsconfig.json").write_text(json.dumps({"compilerOptions": options, "files": ["wrong.ts"]}))
    tsc = TYPESCRIPT / "node_modules" / ".bin" / "tsc"
    done = subprocess.run(
        [str(tsc), "--pretty", "false"], cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    errors = [line for line in done.stdout.splitlines() if line.startswith("wrong.ts")]
    found = [(line.split("(")[1].split(",")[0], line.split("error ")[1].split(":")[0]) for line in errors]
    assert found == [("3", "TS2322"), ("4", "TS2345"), ("6", "TS2322")], done.stdout


async def test_the_typescript_example_runs(typescript_build: Path, server: HttpServer, owner: Owner) -> None:
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")}
    env |= {"FAVMCP_URL": server.base, "FAVMCP_API_KEY": owner.key}
    node = shutil.which("node")
    assert node
    with anyio.fail_after(RUN_TIMEOUT):
        done = await anyio.run_process([node, str(typescript_build / "example.js")], env=env, check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    lines = out.splitlines()
    assert lines[0].startswith("member: Ada Lovelace (mem_") and lines[0].endswith(" active"), out
    assert lines[1:] == [
        "leads: true",
        "refused: 422 validation_failed name",
        "asked: confirmation_required",
        "erased: erased",
    ], out
