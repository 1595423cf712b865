"""Fuzz: arguments made from every listed tool's input JSON Schema, sent through the runner as an owner, on SQLite and
Postgres. Whatever the arguments, the answer is a result or a refusal with a code, never internal_error.

One test per tool and database, in one workspace built for it, with two kinds of arguments:
- the edge sweep: the simplest valid arguments with one property at a time set to each odd value of its kind (NUL
  bytes, blank, non-ASCII and LIKE-wildcard strings, huge numbers, dates at the ends of the calendar and without an
  offset, odd confirmation tokens, cursors around keys never issued);
- generated arguments: valid ones from hypothesis-jsonschema, and malformed ones (an odd value anywhere, wrong types,
  unknown properties, a required one missing).
The test lists every internal_error it meets, with the arguments and where it was raised. Building the workspace
costs more than the calls, so both kinds share it (two tests per tool built it twice: a third of CI's fuzz time).

Real ids (members, a team member, an invite, a time-off block, an API key, an import, code requests, cursors) are
mixed into the arguments so that calls reach the handlers, not only not_found; confirm-gated tools are called a
second time with the token they hand out, so that the acting handler runs too.

The number of generated examples comes from the hypothesis profile: `ci` (default: derandomized, bounded) or
`thorough` (HYPOTHESIS_PROFILE=thorough uv run pytest tests/test_fuzz_schemas.py). Hypothesis draws the arguments
before the calls (its draws cannot await a call), so it does not shrink a failing case; the edge sweep's cases are
minimal already.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from favmcp.app import App
from favmcp.composition import all_specs
from favmcp.registry.registry import Registry
from favmcp.registry.runner import CallResult
from favmcp.registry.spec import Gate, ToolSpec
from tests.support import Owner, call, error_code, invite, invite_token, join, unique_email

# Named apart from the profiles of tests/test_isolation_property.py, and applied to this test alone: a loaded
# profile is global, and these example counts are per tool.
settings.register_profile(
    "fuzz-ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz-thorough",
    max_examples=400,
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile(f"fuzz-{os.environ.get('HYPOTHESIS_PROFILE', 'ci')}")

SPECS = {spec.name: spec for spec in Registry(all_specs()).listed()}

# -- odd values ------------------------------------------------------------------------------------------------

WRONG_TYPES: list[Any] = [None, True, False, 0, -1, 1.5, "", "x", [], ["x"], [None], {}, {"x": 1}]
ODD_STRINGS = [
    "", " ", "   ", "\t\n", "\u00a0", "\u3000", "\x00", "a\x00b", "\x00" * 3, "%", "_", "%%", "%_\\", "\\", "a%b_c",
    "'", "\"", "' OR 1=1 --", "ß", "İ", "\ufb00", "e\u0301", "\u200b", "\u202e", "\ufeff", "😀", "日本語",
    "\U0001d523\U0001d51e\U0001d533", "x" * 10_000, "mem_", "usr_", "key_", "inv_", "off_", "imp_", "otc_",
    "fav_mcp_", "fav_inv_", "null", "NaN",
]  # fmt: skip
ODD_NUMBERS: list[Any] = [
    0, -1, -(2**31), 2**31, 2**53 + 1, 2**63, -(2**63) - 1, 2**64, 10**100, 1.5, -0.0, 1e308, 5e-324,
]  # fmt: skip
ODD_TIMES = [
    "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59.999999+00:00",
    "0001-01-01T00:00:00Z", "2027-03-01T09:00:00", "2027-03-01", "2027-03-01T24:00:00Z", "2027-02-30T00:00:00Z",
    "1970-01-01T00:00:00+23:59", "2027-03-01T09:00:00+25:00", "9999-12-31", "0001-01-01", "2024-02-30", "2027-13-01",
    "10000-01-01", "-0001-01-01", "00:00", "24:00", "23:59:60", "23:59:59.999999", "12:00+14:00", "12:00Z",
    "25:61", "1e9", "0", "2027-W09-1", "20270301",
]  # fmt: skip
ODD_TOKENS = ["", " ", "tökén", "t\x00k", "a.b", ".", "..", "x" * 5000, "eyJ0IjoiIn0.AAAA", "e30.", "e30.e30"]


def _cursor(key: Any) -> str:
    """A cursor as this server encodes them (unsigned base64url JSON), around a key it never issued."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


ODD_CURSORS = ["%%%", "e30", "\x00", *map(_cursor, [
    {"id": "\x00"}, {"id": "a\x00b"}, {"id": 1}, {"id": None}, {"id": ["x"]}, {"id": {"x": 1}}, {"id": "x" * 10_000},
    {"id": "%"}, {}, [], "x", 1,
])]  # fmt: skip
ODD_KEYS = ["unexpected", "", " ", "\x00", "__proto__", "confirmation_token", "idempotency_key", "workspace_id"]

EDGE_STRINGS = ["", " ", "\x00", "a\x00b", "%_\\", "tökén", "\u202e", "x" * 10_000]
EDGES = {
    "time": ODD_TIMES,
    "number": ODD_NUMBERS,
    "string": EDGE_STRINGS,
    "token": [*ODD_TOKENS, "e30.tökén"],
    "cursor": ODD_CURSORS,
}
# Ranges at the ends of the calendar, for tools that take a start and an end.
ODD_RANGES = [
    ("9999-12-30T00:00:00-14:00", "9999-12-31T23:59:59-14:00"),
    ("0001-01-01T00:00:00+14:00", "0001-01-02T00:00:00+14:00"),
    ("9999-12-01", "9999-12-31"),
    ("0001-01-01", "0001-01-02"),
]
# Properties whose odd values are of their own kind.
NAMED_KINDS = {"confirmation_token": "token", "cursor": "cursor"}

# Id-like properties and which seeded ids they may carry (`name` is describe_tool's; a tool's name is a fine name
# for anything else too).
ID_POOLS = {
    "member_id": "member", "survivor_id": "member", "duplicate_id": "member", "member_ids": "member",
    "user_id": "user", "key_id": "key", "invite_id": "invite", "time_off_id": "time_off", "import_id": "import",
    "request_id": "request", "invite_token": "invite_token", "cursor": "cursor", "name": "tool",
    "invoice_id": "invoice", "payment_id": "payment", "order_id": "order", "product_id": "product",
    "plan_id": "plan", "subscription_id": "subscription", "promotion_id": "promotion", "code": "promotion_code",
    "service_id": "service", "staff_id": "user", "staff_ids": "user", "booking_id": "booking",
    "class_session_id": "class_session", "entry_id": "waitlist_entry", "reward_id": "reward", "tier_id": "tier",
    "post_id": "post", "slug": "post_slug", "template_id": "template", "campaign_id": "campaign",
    "endpoint_id": "endpoint", "delivery_id": "delivery",
}  # fmt: skip


# -- real ids to aim at ----------------------------------------------------------------------------------------


@dataclass
class World:
    owner: Owner
    ids: dict[str, list[str]]


def _ok(result: CallResult) -> dict[str, Any]:
    assert result.ok, result.data
    return result.data


MONEY_POOLS = {"invoice", "payment", "order", "product", "plan", "subscription", "promotion", "promotion_code"}
BOOKING_POOLS = {"service", "booking", "class_session", "waitlist_entry"}
LOYALTY_POOLS = {"reward", "tier"}
CONTENT_POOLS = {"post", "post_slug"}
MESSAGING_POOLS = {"template", "campaign", "endpoint", "delivery"}


def pools_of(tool: str) -> set[str]:
    """The id pools a tool's arguments draw from (a tool that takes a subscription id needs a subscription)."""
    return {ID_POOLS[name] for name in SPECS[tool].input_schema().get("properties", {}) if name in ID_POOLS}


@pytest.fixture
async def world(app: App, owner: Owner, request: pytest.FixtureRequest) -> World:
    """One workspace with something of every kind the fuzzed tool can aim at, made through the tools (the money
    and bookings records only for tools that take their ids: building them for every tool cost minutes)."""
    needs = pools_of(request.node.callspec.params["tool"])
    key = owner.key
    first = _ok(
        await call(app, key, "create_member", {"name": "Ann First", "email": unique_email("m"), "tags": ["vip"]})
    )
    second = _ok(await call(app, key, "create_member", {"name": "Bo Second", "phone": "+31612345678"}))
    _ok(await call(app, key, "add_member_note", {"member_id": first["id"], "body": "likes mornings"}))
    staff = await join(app, owner, "staff")
    pending_email, invite_id = await invite(app, key, "manager")
    token = await invite_token(app, pending_email)
    accepting = _ok(await call(app, None, "accept_team_invite_request", {"invite_token": token}))
    signup = {"email": unique_email("fuzz"), "organisation_name": "Fuzz", "owner_name": "Fu"}
    signing_up = _ok(await call(app, None, "register_organisation_request", signup))
    off = _ok(
        await call(
            app,
            key,
            "add_staff_time_off",
            {
                "user_id": staff.user_id,
                "starts_at": "2027-03-01T09:00:00+01:00",
                "ends_at": "2027-03-02T09:00:00+01:00",
            },
        )
    )
    spare = _ok(await call(app, key, "create_api_key", {"name": "spare"}))
    preview = _ok(await call(app, key, "preview_member_import", {"rows": [{"name": "Cy Third", "tags": "a,b"}]}))
    money = await money_world(app, key, first["id"]) if needs & MONEY_POOLS else {}
    bookings = (
        await bookings_world(app, key, [first["id"], second["id"]], staff.user_id) if needs & BOOKING_POOLS else {}
    )
    in_loyalty = SPECS[request.node.callspec.params["tool"]].domain in {"loyalty", "tiers"}
    loyalty = await loyalty_world(app, key, first["id"]) if needs & LOYALTY_POOLS or in_loyalty else {}
    content = await content_world(app, key) if needs & CONTENT_POOLS else {}
    in_messaging = SPECS[request.node.callspec.params["tool"]].domain in {"messaging", "campaigns", "webhooks"}
    messaging = (
        await messaging_world(app, key, [first["id"], second["id"]]) if needs & MESSAGING_POOLS or in_messaging else {}
    )
    cursors = []
    for tool, args in [
        ("search_members", {}),
        ("list_audit_events", {}),
        ("list_team_members", {}),
        ("get_member_timeline", {"member_id": first["id"]}),
    ]:
        page = _ok(await call(app, key, tool, {**args, "limit": 1}))
        if page.get("next_cursor"):
            cursors.append(page["next_cursor"])
    ids = {
        "member": [first["id"], second["id"]],
        "user": [staff.user_id, owner.user_id],
        "key": [spare["key"]["id"]],  # not the owner's own key: revoking it would end the run
        "invite": [invite_id],
        "time_off": [off["id"]],
        "import": [preview["import_id"]],
        "request": [accepting["request_id"], signing_up["request_id"]],
        "invite_token": [token],
        "cursor": cursors,
        "tool": sorted(SPECS),
        **money,
        **bookings,
        **loyalty,
        **content,
        **messaging,
    }
    return World(owner, ids)


async def money_world(app: App, key: str, member_id: str) -> dict[str, list[str]]:
    """A product with stock, a promotion code, an order, an open invoice with a part payment and a draft, a
    membership plan with a subscription: the money domains' records the fuzzed calls aim at."""

    async def made(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        return _ok(await call(app, key, tool, args))

    product = await made("create_product", {"name": "Oil", "unit_amount": 1500, "initial_stock": 50})
    promotion = await made("create_promotion", {"code": "FUZZ10", "percent_off": "10"})
    order = await made(
        "create_order", {"member_id": member_id, "lines": [{"product_id": product["id"], "quantity": 1}]}
    )
    line = {"description": "Massage", "quantity": 1, "unit_amount": 6000, "tax_rate": "21"}
    draft = await made("create_invoice", {"member_id": member_id, "lines": [line]})
    issued = await made("create_invoice", {"member_id": member_id, "lines": [line]})
    await made("finalize_invoice", {"invoice_id": issued["id"]})
    paid = {"invoice_id": issued["id"], "amount": 1000, "method": "cash", "idempotency_key": "fuzz-payment"}
    payment = await made("record_payment", paid)
    plan = await made(
        "create_plan", {"kind": "membership", "name": "Monthly", "unit_amount": 4000, "interval": "month"}
    )
    subscription = await made("subscribe_member", {"member_id": member_id, "plan_id": plan["id"]})
    return {
        "invoice": [issued["id"], draft["id"]],
        "payment": [payment["id"]],
        "order": [order["id"]],
        "product": [product["id"]],
        "plan": [plan["id"]],
        "subscription": [subscription["id"]],
        "promotion": [promotion["id"]],
        "promotion_code": ["FUZZ10"],
    }


async def bookings_world(app: App, key: str, member_ids: list[str], staff_id: str) -> dict[str, list[str]]:
    """Opening hours, an appointment service and a class service delivered by the staff member, a booking, a full
    class session with a waiting customer: the bookings domains' records the fuzzed calls aim at."""

    async def made(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        return _ok(await call(app, key, tool, args))

    week = {day: [{"open": "07:00", "close": "21:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    await made("set_business_hours", {"weekly": week})
    service = await made(
        "create_service",
        {"name": "Massage", "duration_minutes": 60, "unit_amount": 5000, "buffer_after_minutes": 15,
         "staff_ids": [staff_id]},
    )  # fmt: skip
    yoga = await made(
        "create_service",
        {"name": "Yoga", "duration_minutes": 60, "unit_amount": 1500, "capacity": 2, "staff_ids": [staff_id]},
    )
    day = datetime.now(UTC).date() + timedelta(days=3)
    booking = await made(
        "create_booking",
        {"member_id": member_ids[0], "service_id": service["id"], "starts_at": f"{day}T09:00:00Z",
         "staff_id": staff_id},
    )  # fmt: skip
    sessions = await made(
        "schedule_class_session",
        {"service_id": yoga["id"], "staff_id": staff_id, "starts_at": f"{day}T14:00:00Z", "capacity": 1},
    )
    session_id = sessions["sessions"][0]["id"]
    seat = {"member_id": member_ids[0], "service_id": yoga["id"], "class_session_id": session_id}
    await made("create_booking", seat)
    entry = await made("join_waitlist", {"member_id": member_ids[1], "class_session_id": session_id})
    return {
        "service": [service["id"], yoga["id"]],
        "booking": [booking["id"]],
        "class_session": [session_id],
        "waitlist_entry": [entry["entry_id"]],
    }


async def loyalty_world(app: App, key: str, member_id: str) -> dict[str, list[str]]:
    """Two tiers, a customer with points in the higher one, a reward and a voucher of it: the loyalty records the
    fuzzed calls aim at."""

    async def made(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        return _ok(await call(app, key, tool, args))

    silver = await made("create_membership_tier", {"name": "Silver", "threshold": 100, "earn_multiplier": "1.5"})
    gold = await made("create_membership_tier", {"name": "Gold", "threshold": 1000})
    await made("earn_loyalty_points", {"member_id": member_id, "points": 1500, "reason": "welcome"})
    reward = await made(
        "create_reward", {"name": "Ten off", "kind": "discount", "percent_off": "10", "points_cost": 200, "stock": 5}
    )
    await made("redeem_reward", {"member_id": member_id, "reward_id": reward["id"]})
    return {"tier": [silver["id"], gold["id"]], "reward": [reward["id"]]}


async def content_world(app: App, key: str) -> dict[str, list[str]]:
    """A published post and a draft: the content records the fuzzed calls aim at."""
    blocks = [{"type": "heading", "text": "Spring", "level": 2}, {"type": "paragraph", "text": "New classes."}]
    live = _ok(await call(app, key, "create_post", {"title": "Spring timetable", "blocks": blocks, "tags": ["news"]}))
    _ok(await call(app, key, "publish_post", {"post_id": live["id"]}))
    draft = _ok(await call(app, key, "create_post", {"title": "Summer plans"}))
    return {"post": [live["id"], draft["id"]], "post_slug": [live["slug"], draft["slug"]]}


async def messaging_world(app: App, key: str, member_ids: list[str]) -> dict[str, list[str]]:
    """SMS and email channels (pointed at nothing that answers), consenting customers, templates, a draft campaign,
    a webhook endpoint on loopback and a delivery to it: the messaging records the fuzzed calls aim at."""

    async def made(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        return _ok(await call(app, key, tool, args))

    app.settings.allow_private_targets = True
    sms = {"account_sid": "AC" + "0" * 32, "auth_token": "fuzz-token", "from_number": "+15005550006"}
    await made("configure_channel", {"channel": "sms", **sms})
    await made("configure_channel", {"channel": "email", "host": "127.0.0.1", "port": 9, "from_address": "a@b.co"})
    for member_id in member_ids:
        for channel in ("sms", "email"):
            consent = {"member_id": member_id, "channel": channel, "granted": True, "source": "fuzz"}
            await made("set_marketing_consent", consent)
    promo = await made(
        "create_message_template",
        {"channel": "sms", "name": "promo", "kind": "marketing", "body": "Hi {{first_name}}, {{offer}}",
         "variables": ["first_name", "offer"]},
    )  # fmt: skip
    receipt = await made(
        "create_message_template",
        {"channel": "email", "name": "receipt", "kind": "transactional", "subject": "Thanks", "body": "Thanks!"},
    )
    campaign = await made(
        "create_campaign",
        {"name": "Spring", "channel": "sms", "template_id": promo["id"], "variables": {"offer": "10% off"}},
    )
    endpoint = await made("create_webhook_endpoint", {"url": "http://127.0.0.1:9/hook", "events": ["*"]})
    await made("create_member", {"name": "Di Fourth", "phone": "+31612345670"})  # an event: a delivery to it
    deliveries = await made("list_webhook_deliveries", {})
    return {
        "template": [promo["id"], receipt["id"]],
        "campaign": [campaign["id"]],
        "endpoint": [endpoint["id"]],
        "delivery": [d["id"] for d in deliveries["items"]],
    }


# -- strategies ------------------------------------------------------------------------------------------------

_valid: dict[str, st.SearchStrategy[dict[str, Any]]] = {}


def valid(spec: ToolSpec) -> st.SearchStrategy[dict[str, Any]]:
    """hypothesis-jsonschema's arguments for the tool's input schema (built once per tool: it is slow to build)."""
    if spec.name not in _valid:
        _valid[spec.name] = from_schema(spec.input_schema())
    return _valid[spec.name]


def leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value, containers included (the root excepted)."""
    found = [path] if path else []
    if isinstance(value, dict):
        for k, v in value.items():
            found += leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += leaves(v, (*path, i))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value[head], rest, new)}
    copy = list(value)
    copy[head] = replaced(copy[head], rest, new)
    return copy


TIMELIKE = re.compile(r"^(\d{4}-\d{2}-\d{2}|\d{2}:\d{2})")


def kind_of(schema: dict[str, Any]) -> str:
    """What a property holds, by its schema (a nullable one has "type": [X, "null"] or an anyOf with null)."""
    branches = [schema, *schema.get("anyOf", [])]
    if any(b.get("format") in {"date", "date-time", "time"} for b in branches):
        return "time"
    types = {t for b in branches for t in (b["type"] if isinstance(b.get("type"), list) else [b.get("type")])}
    if types & {"integer", "number"}:
        return "number"
    return "string" if "string" in types else "other"


def kind_of_value(value: Any) -> str:
    if isinstance(value, bool):
        return "other"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "time" if TIMELIKE.match(value) else "string"
    return "other"


def odd(kind: str, current: Any) -> st.SearchStrategy[Any]:
    """A value that is wrong, or right but at an edge, for a place of this kind that now holds `current`."""
    wrong = st.sampled_from(WRONG_TYPES)
    if kind == "time":
        return st.one_of(st.sampled_from(ODD_TIMES), wrong)
    if kind == "number":
        return st.one_of(st.sampled_from(ODD_NUMBERS), wrong)
    if kind in {"string", "token", "cursor"}:
        text = current if isinstance(current, str) else ""
        with_nul = st.integers(0, len(text)).map(lambda i: text[:i] + "\x00" + text[i:])
        named = st.sampled_from(EDGES[kind]) if kind in {"token", "cursor"} else st.nothing()
        return st.one_of(named, with_nul, st.sampled_from(ODD_STRINGS), wrong)
    return st.one_of(wrong, st.sampled_from(ODD_STRINGS), st.sampled_from(ODD_NUMBERS))


@st.composite
def malformed(draw: st.DrawFn, spec: ToolSpec, args: dict[str, Any]) -> dict[str, Any]:
    """The arguments with one thing wrong: an odd value anywhere, a property the schema has but set oddly, an
    unknown property, or a required one missing."""
    properties = spec.input_schema().get("properties", {})
    kind = draw(st.sampled_from(["anywhere", "property", "unknown", "missing"]))
    if kind == "anywhere" and args:
        path = draw(st.sampled_from(leaves(args)))
        current: Any = args
        for step in path:
            current = current[step]
        return dict(replaced(args, path, draw(odd(kind_of_value(current), current))))
    if kind == "property" and properties:
        name = draw(st.sampled_from(sorted(properties)))
        of = NAMED_KINDS.get(name) or kind_of(properties[name])
        return {**args, name: draw(odd(of, args.get(name)))}
    if kind == "missing" and args:
        gone = draw(st.sampled_from(sorted(args)))
        return {k: v for k, v in args.items() if k != gone}
    return {**args, draw(st.sampled_from(ODD_KEYS)): draw(st.sampled_from(WRONG_TYPES + ODD_STRINGS))}


@st.composite
def aimed(draw: st.DrawFn, args: dict[str, Any], ids: dict[str, list[str]]) -> dict[str, Any]:
    """Some id-like properties swapped for real ids of the workspace."""
    out = dict(args)
    for name, pool_name in ID_POOLS.items():
        pool = ids.get(pool_name) or []
        if name not in out or not pool or not draw(st.booleans()):
            continue
        real = st.sampled_from(pool)
        out[name] = draw(st.lists(real, min_size=1, max_size=3)) if isinstance(out[name], list) else draw(real)
    return out


@st.composite
def arguments(draw: st.DrawFn, spec: ToolSpec, ids: dict[str, list[str]]) -> dict[str, Any]:
    args = draw(aimed(draw(valid(spec)), ids))
    if draw(st.booleans()):
        args = draw(malformed(spec, args))
    return args


# -- one call, and the second call through the confirm gate -----------------------------------------------------


def _traceback(logs: list[dict[str, Any]], result: CallResult) -> str:
    """Where the runner's logged traceback for this call passed through favmcp, and the exception it ended in."""
    for entry in logs:
        if entry.get("event") == "tool_failed" and entry.get("request_id") == result.request_id:
            text = str(entry.get("exception", ""))
            frames = re.findall(r'File "[^"]*/(favmcp/[^"]+)", line (\d+), in (\w+)', text)
            where = " <- ".join(f"{path}:{line} {function}" for path, line, function in reversed(frames[-4:]))
            raised = [line for line in text.splitlines() if re.match(r"[\w.]+(Error|Exception)\b", line)]
            return f"  at {where}\n  {raised[-1] if raised else text.strip().splitlines()[-1]}"
    return "  (no tool_failed log entry)"


def shown(args: dict[str, Any]) -> str:
    text = json.dumps(args, ensure_ascii=True)
    return re.sub(r"x{40,}", lambda m: f"x*{len(m.group(0))}", text)


async def internal_errors(app: App, key: str, spec: ToolSpec, args: dict[str, Any]) -> list[str]:
    """The call as the owner; when a confirm-gated tool hands out a token, the call again with it, so that the
    handler behind the gate sees these arguments too. Each internal_error as the arguments and the traceback."""
    found = []
    for _ in range(2):
        with structlog.testing.capture_logs(processors=[structlog.processors.format_exc_info]) as logs:
            result = await call(app, key, spec.name, args)
        if error_code(result) == "internal_error":
            found.append(f"{spec.name} {shown(args)}\n{_traceback(logs, result)}")
        token = None if result.ok else (result.data["error"].get("details") or {}).get("confirmation_token")
        if spec.gate is not Gate.confirm or not isinstance(token, str):
            break
        args = {**args, "confirmation_token": token}
    return found


# -- every odd value at every property, one at a time, then generated arguments ----------------------------------


def baseline(spec: ToolSpec, ids: dict[str, list[str]]) -> dict[str, Any]:
    """The simplest valid arguments (hypothesis tries the simplest example first), with a usable email and aimed
    at the workspace's first real ids."""
    first = settings(database=None, derandomize=True, phases=[Phase.generate], max_examples=1)
    simplest = dict(find(valid(spec), lambda _: True, settings=first))
    if "email" in simplest:
        simplest["email"] = unique_email("edge")
    for name, pool_name in ID_POOLS.items():
        pool = ids.get(pool_name) or []
        if name in simplest and pool:
            simplest[name] = [pool[0]] if isinstance(simplest[name], list) else pool[0]
    return simplest


def edge_cases(spec: ToolSpec, base: dict[str, Any]) -> list[dict[str, Any]]:
    properties = spec.input_schema().get("properties", {})
    cases = []
    for name, schema in properties.items():
        kind = NAMED_KINDS.get(name) or kind_of(schema)
        cases += [{**base, name: value} for value in EDGES.get(kind, [])]
    times = [name for name, schema in properties.items() if kind_of(schema) == "time"]
    if len(times) == 2:
        cases += [{**base, times[0]: start, times[1]: end} for start, end in ODD_RANGES]
    return cases


def generated(spec: ToolSpec, ids: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The profile's number of generated arguments for the tool, drawn before any call is made."""
    drawn: list[dict[str, Any]] = []

    @FUZZ
    @given(arguments(spec, ids))
    def keep(args: dict[str, Any]) -> None:
        drawn.append(args)

    keep()
    return drawn


@pytest.mark.parametrize("tool", sorted(SPECS))
async def test_no_arguments_make_an_internal_error(tool: str, app: App, world: World) -> None:
    spec = SPECS[tool]
    found = []
    for args in [*edge_cases(spec, baseline(spec, world.ids)), *generated(spec, world.ids)]:
        found += await internal_errors(app, world.owner.key, spec, args)
    assert not found, f"{len(found)} internal errors:\n\n" + "\n\n".join(found)
