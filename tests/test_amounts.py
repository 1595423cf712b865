"""Every amount in every tool's arguments and answers is an integer in minor units beside its currency, and no
schema has a float: checked by walking the full JSON Schemas of all tools (new tools are covered by themselves)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from favmcp.composition import all_specs
from favmcp.registry.spec import ToolInput, ToolSpec, tool

SPECS = {spec.name: spec for spec in all_specs()}

# Names that hold money: amount, total, subtotal, tax, price, balance, discount, spend, refund_due, and compounds of
# them (unit_amount, amount_paid, lifetime_spend, ...); rates and counts are not money.
MONEY_NAME = re.compile(r"(^|_)(amount|amounts|total|subtotal|tax|price|balance|discount|spend|refund_due)(_|$)")
NOT_MONEY = re.compile(
    r"_(rate|count|percent|id|ids|code|reason|type|kind|rows)$|^(percent|percent_off)$|^[a-z]+s_total$"
)
# Integer fields whose name says total but that count things, not money: (tool, field).
COUNTS = {("search_tools", "total"), ("get_booking_stats", "total")}


def _types(prop: dict[str, Any]) -> set[str]:
    declared = prop.get("type")
    found = set(declared) if isinstance(declared, list) else {declared} if declared else set()
    for branch in prop.get("anyOf", []) + prop.get("oneOf", []):
        found |= _types(branch)
    return found - {"null"}


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return defs[ref.removeprefix("#/$defs/")] if isinstance(ref, str) else node


def objects(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """Every object schema with properties: (path, object, its enclosing objects, outermost first)."""
    defs = schema.get("$defs", {})
    seen: set[int] = set()

    def walk(node: Any, path: str, outer: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], list[Any]]]:
        if isinstance(node, list):
            for item in node:
                yield from walk(item, path, outer)
            return
        if not isinstance(node, dict):
            return
        node = _resolve(node, defs)
        if id(node) in seen and "properties" in node:
            return
        if "properties" in node:
            seen.add(id(node))
            yield path, node, outer
            for name, prop in node["properties"].items():
                yield from walk(prop, f"{path}.{name}", [*outer, node])
        for key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties"):
            if key in node:
                yield from walk(node[key], path + ("[]" if key == "items" else ""), outer)

    yield from walk(schema, "", [])


def floats(node: Any) -> bool:
    """Whether any `type` in the schema allows a JSON number that is not an integer."""
    if isinstance(node, list):
        return any(floats(item) for item in node)
    if not isinstance(node, dict):
        return False
    declared = node.get("type")
    if declared == "number" or (isinstance(declared, list) and "number" in declared):
        return True
    return any(floats(value) for key, value in node.items() if key != "properties") or any(
        floats(prop) for prop in node.get("properties", {}).values()
    )


def money_fields(obj: dict[str, Any], defs: dict[str, Any]) -> list[tuple[str, set[str]]]:
    return [
        (name, _types(_resolve(prop, defs)))
        for name, prop in obj["properties"].items()
        if MONEY_NAME.search(name) and not NOT_MONEY.search(name)
    ]


def problems(spec: ToolSpec) -> list[str]:
    found = []
    for side, schema, own in (("input", spec.input_schema(), False), ("output", spec.output_schema(), True)):
        defs = schema.get("$defs", {})
        if floats(schema):
            found.append(f"{side}: a float-typed field (type number): amounts and quantities are integers")
        for path, obj, outer in objects(schema):
            for name, types in money_fields(obj, defs):
                if types & {"object", "array", "boolean"} or (spec.name, name) in COUNTS:
                    continue  # a nested amount object or a list of them is walked on its own; a flag is no amount
                if types != {"integer"}:
                    if types == {"string"} and "discount" in name:
                        continue  # a percentage discount is a decimal string (core.money.Percent)
                    found.append(f"{side} {path}.{name}: {sorted(types)}, not an integer in minor units")
                    continue
                beside = "currency" in obj["properties"]
                # Arguments may give the currency once for a whole document (its lines inherit it); answers
                # name it beside every amount, so that no amount is ever read without its currency.
                above = any("currency" in o["properties"] for o in outer)
                if not (beside or (not own and above)):
                    found.append(f"{side} {path}.{name}: no currency beside it")
    return found


@pytest.mark.parametrize("tool", sorted(SPECS))
def test_every_amount_is_minor_units_beside_its_currency(tool: str) -> None:
    assert not problems(SPECS[tool])


class BadLine(BaseModel):
    unit_amount: int


class BadOut(BaseModel):
    total: int
    lines: list[BadLine]
    price: float


class BadIn(ToolInput):
    amount: int


@tool(domain="test", title="Bad", hints="R I", scope="invoices:read")
async def bad(ctx: Any, args: BadIn) -> BadOut:
    raise NotImplementedError


def test_the_walk_notices_a_float_and_an_amount_without_its_currency() -> None:
    found = problems(bad)
    assert any("float" in p for p in found)
    assert any(".total: no currency" in p for p in found)
    assert any(".lines[].unit_amount: no currency" in p for p in found)
    assert any("input .amount: no currency" in p for p in found)
    assert any(".price: ['number']" in p for p in found)
