"""A tool is declared once, as a ToolSpec beside its handler; every face is generated from it."""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from favmcp.core.schema import Schema

if TYPE_CHECKING:
    from favmcp.effects.approvals import ApprovalAsk
    from favmcp.registry.context import ToolContext


class ToolInput(Schema):
    """Arguments of a tool. Unknown arguments are refused, never silently dropped.

    null_means: the optional fields where an explicit null says something (turn off, clear) and so stays in the
    listed schema; elsewhere an optional field is its plain type, and leaving it out is how to say nothing."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    null_means: ClassVar[frozenset[str]] = frozenset()


class WriteInput(ToolInput):
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Retry-safe: replays the first answer for 24 h.",
    )


class UpdateInput(WriteInput):
    """Arguments of an update tool, one meaning everywhere: a field left out stays as it is, an explicit null
    clears it, and a field the record cannot lack (`not_clearable`) refuses null."""

    not_clearable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _required_fields_stay(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name in cls.not_clearable:
            raise ValueError("cannot be cleared; leave it out to keep it")
        return value


class ConfirmInput(WriteInput):
    confirmation_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="Leave out for a preview and a token; resend the same arguments with it to act.",
    )


class Preview(Schema):
    """What a confirm-gated call would do, shown before it acts. Tools extend it with typed fields."""

    summary: str = Field(description="The consequences in one or two sentences, for the person to confirm.")
    nothing_to_do: bool = Field(
        default=False, description="The target is already in the end state: the call acts at once, without a token."
    )


class GatedResult(Schema):
    """The answer of an approval-gated tool: done now, or waiting for a person (a success either way)."""

    status: Literal["done", "pending_approval"]
    approval_id: str | None = Field(default=None, description="Set when the call waits: see get_approval.")


class Gate(StrEnum):
    confirm = "confirm"
    approval = "approval"


@dataclass(frozen=True)
class Effect:
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool

    @classmethod
    def of(cls, letters: str) -> Effect:
        """The catalog's notation: R, W, D, I, O."""
        got = set(letters.split())
        if not got <= {"R", "W", "D", "I", "O"} or len(got & {"R", "W", "D"}) != 1:
            raise ValueError(f"bad hints {letters!r}")
        return cls("R" in got, "D" in got, "I" in got, "O" in got)


Handler = Callable[["ToolContext", Any], Awaitable[BaseModel]]
# What an approval-gated call would send, to whom, on which channel, for the policy and the person deciding.
AskFn = Callable[["ToolContext", Any], Awaitable["ApprovalAsk"]]
PreviewFn = Callable[["ToolContext", Any], Awaitable[Preview]]
# Work a tool does before its unit of work: a provider call that must not hold the database's write lock.
PrepareFn = Callable[["ToolContext", Any], Awaitable[Any]]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    domain: str
    title: str
    description: str
    input_model: type[ToolInput]
    output_model: type[BaseModel]
    effect: Effect
    scope: str
    handler: Handler
    gate: Gate | None = None
    preview: PreviewFn | None = None
    ask: AskFn | None = None
    returns_secret: bool = False
    audit_reads: bool = False
    prepare: PrepareFn | None = None
    # "METHOD /v1/path/{field}" in the REST API; None: POST /v1/tools/<name>.
    route: str | None = None

    @property
    def mutating(self) -> bool:
        return not self.effect.read_only

    def input_schema(self, *, listing: bool = False) -> dict[str, Any]:
        """A copy: the computed schema is cached, and a caller that edits its copy must not change the tool.

        listing: as tools/list sends it, without string length bounds too short for a sensible value to reach."""
        return copy.deepcopy(compact_schema(self.input_model, listing=listing))

    def output_schema(self, *, listing: bool = False) -> dict[str, Any]:
        """The whole contract of the answer: what each field means and that it is always there.

        listing: as tools/list sends it, the types alone: clients check results against it and every session pays
        for it, while the meanings are one describe_tool away. Every field of an answer is always sent (null when
        empty), so `required` adds nothing to the check."""
        return copy.deepcopy(compact_schema(self.output_model, listing=listing))

    def meta(self) -> dict[str, Any]:
        """No null values: an ungated tool has no favmcp/gate."""
        meta: dict[str, Any] = {"favmcp/domain": self.domain, "favmcp/scope": self.scope}
        if self.gate:
            meta["favmcp/gate"] = self.gate
        return meta


@cache
def _json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


@cache
def compact_schema(model: type[BaseModel], *, listing: bool = False) -> dict[str, Any]:
    """The model's JSON Schema as lean as it can be without losing meaning: every client pays for each byte in
    context. No pydantic titles or null defaults; `type` only where `enum` or `const` do not already say it;
    `anyOf [X, null]` written as `"type": [X, "null"]`. In tool inputs an optional field is its plain type (leaving
    it out is how to say nothing), except the fields an update may clear, which keep null (null means clear). In
    answers no defaults (every field is sent). A shape used once is written in place, one used more often once in
    `$defs`. listing: what tools/list sends (see ToolSpec.input_schema and output_schema)."""
    schema = copy.deepcopy(_json_schema(model))  # edited below; the listing's and the full one start alike
    defs = schema.pop("$defs", {})
    if issubclass(model, ToolInput):
        clearable = model.null_means | (
            set(model.model_fields) - model.not_clearable - {"idempotency_key"}
            if issubclass(model, UpdateInput)
            else set()
        )
        properties = schema.get("properties", {})
        for name, prop in properties.items():
            properties[name] = _lean(prop, defs, keep_null=name in clearable)
        lean = _lean({k: v for k, v in schema.items() if k != "properties"}, defs, keep_null=True)
        if listing and "idempotency_key" in properties:
            # Every write tool has it and it means the same everywhere (the catalog's convention): a listing
            # names it, describe_tool explains it.
            properties["idempotency_key"] = {"type": "string"}
        lean["properties"] = properties
        noise = _short_text_bound if listing else None
    else:
        lean = _lean(schema, defs, keep_null=True)
        noise = _listed_answer_noise if listing else _answer_noise
    placed = _place_defs(lean, {name: _lean(d, defs, keep_null=True) for name, d in defs.items()})
    return _without(placed, noise) if noise else placed


# String bounds below this are left out of the listing: no id, name, email, tag or key comes near them, while
# free text (a note, a message) can, and keeps its bound. The server checks every bound either way.
SHORT_TEXT = 500


# Number bounds from this on are left out too: they only keep out what no real value reaches (an amount past
# 2**53 - 1 minor units), and a listing pays for every digit.
HUGE_NUMBER = 2**31


def _short_text_bound(key: str, value: Any) -> bool:
    return (key in ("minLength", "maxLength") and value < SHORT_TEXT) or (
        key == "maximum" and isinstance(value, int) and value >= HUGE_NUMBER
    )


def _answer_noise(key: str, value: Any) -> bool:
    return key == "default"


def _listed_answer_noise(key: str, value: Any) -> bool:
    """`format` is an annotation that JSON Schema validators do not assert by default: in a listing it checks
    nothing and costs every session its bytes (describe_tool keeps it)."""
    return key in ("default", "description", "required", "format")


SMALL_ENUM = 12  # enums up to this size are written in place rather than referenced


def _lean(node: Any, defs: dict[str, Any], *, keep_null: bool, names: bool = False) -> Any:
    if isinstance(node, list):
        return [_lean(item, defs, keep_null=True) for item in node]
    if not isinstance(node, dict):
        return node
    if names:  # under properties and $defs the keys are names, not keywords
        return {key: _lean(value, defs, keep_null=True) for key, value in node.items()}
    ref = node.get("$ref", "").removeprefix("#/$defs/")
    if ref in defs and len(defs[ref].get("enum", [])) <= SMALL_ENUM and "enum" in defs[ref]:
        node = {**defs[ref], **{k: v for k, v in node.items() if k != "$ref"}}  # the field's own words win
    branches = node.get("anyOf")
    if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
        other = _lean(next(b for b in branches if b != {"type": "null"}), defs, keep_null=True)
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if not keep_null:
            return _lean({**other, **rest}, defs, keep_null=True)
        if isinstance(other.get("type"), str):
            merged = {**other, **rest, "type": [other["type"], "null"]}
            if "enum" in merged:
                merged["enum"] = [*merged["enum"], None]
            return _lean(merged, defs, keep_null=True)
    return {
        key: _lean(value, defs, keep_null=True, names=key in ("properties", "$defs"))
        for key, value in node.items()
        if not _noise(key, value, node)
    }


def _noise(key: str, value: Any, node: dict[str, Any]) -> bool:
    """A keyword that tells a client nothing: pydantic's titles, a null default, `additionalProperties: true` (the
    default), and a type that the listed values already fix."""
    return (
        key == "title"
        or (key == "default" and value is None)
        or (key == "additionalProperties" and value is True)
        or (key == "type" and ("enum" in node or "const" in node))
    )


def _without(node: Any, noise: Callable[[str, Any], bool], *, names: bool = False) -> Any:
    """The schema without the keywords `noise` picks."""
    if isinstance(node, list):
        return [_without(item, noise) for item in node]
    if not isinstance(node, dict):
        return node
    if names:  # under properties and $defs the keys are names, not keywords
        return {key: _without(value, noise) for key, value in node.items()}
    return {
        key: _without(value, noise, names=key in ("properties", "$defs"))
        for key, value in node.items()
        if not noise(key, value)
    }


def _place_defs(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Write each shape the schema refers to once (directly or through other shapes) in place, and keep in
    `$defs` only those referred to more often or from themselves."""
    counts: dict[str, int] = {}
    pending = _refs(schema)
    while pending:
        name = pending.pop()
        counts[name] = counts.get(name, 0) + 1
        if counts[name] == 1:
            pending.extend(_refs(defs[name]))
    kept = {name for name, n in counts.items() if n > 1 or name in _refs(defs[name])}

    def place(node: Any) -> Any:
        if isinstance(node, list):
            return [place(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref", "").removeprefix("#/$defs/")
        if ref in counts and ref not in kept:
            return place({**defs[ref], **{k: v for k, v in node.items() if k != "$ref"}})
        return {key: place(value) for key, value in node.items()}

    placed = place(schema)
    if kept:
        placed["$defs"] = {name: place(defs[name]) for name in sorted(kept)}
    return placed


def _refs(node: Any) -> list[str]:
    """The shapes a node refers to, once per reference."""
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    if not isinstance(node, dict):
        return []
    found = [node["$ref"].removeprefix("#/$defs/")] if isinstance(node.get("$ref"), str) else []
    return found + [r for value in node.values() for r in _refs(value)]


def tool(
    *,
    domain: str,
    title: str,
    hints: str,
    scope: str,
    gate: str | None = None,
    preview: PreviewFn | None = None,
    ask: AskFn | None = None,
    returns_secret: bool = False,
    audit_reads: bool = False,
    prepare: PrepareFn | None = None,
    route: str | None = None,
) -> Callable[[Handler], ToolSpec]:
    """Turn `async def name(ctx, args: In) -> Out` into a ToolSpec; the docstring is the description.

    audit_reads: a read-only tool whose every call is audited (personal-data exports).
    prepare: for a tool that calls a provider: runs first, with read access only and no transaction (no write lock
    is held while the provider answers); the handler finds its result in ctx.prepared and checks it still holds.
    It runs on every call, replays included, so it must be safe to repeat (reads, and provider calls made
    idempotent with the provider's own key).
    route: the tool's REST route, "METHOD /v1/path" (see _check_route); left out, POST /v1/tools/<name>.
    """

    def wrap(fn: Handler) -> ToolSpec:
        hints_of = get_type_hints(fn)
        params = list(inspect.signature(fn).parameters)
        input_model, output_model = hints_of[params[1]], hints_of["return"]
        effect = Effect.of(hints)
        gate_ = Gate(gate) if gate else None
        if (gate_ is Gate.approval) != (ask is not None):
            raise TypeError(f"{fn.__name__}: an approval gate needs an ask (what would be sent), and only it has one")
        if gate_ is Gate.approval and not _can_wait(output_model):
            raise TypeError(f"{fn.__name__}: a gated tool answers a GatedResult whose other fields are optional")
        if prepare is not None and (not effect.open_world or effect.read_only or gate_ is not None):
            raise TypeError(f"{fn.__name__}: prepare is for ungated tools that write and reach a provider (W O)")
        if audit_reads and not effect.read_only:
            raise TypeError(f"{fn.__name__}: audit_reads is for read-only tools (mutating calls are always audited)")
        if effect.read_only == issubclass(input_model, WriteInput):
            raise TypeError(f"{fn.__name__}: read-only tools take ToolInput, others WriteInput")
        if (gate_ is Gate.confirm) != issubclass(input_model, ConfirmInput) or (gate_ is Gate.confirm) != (
            preview is not None
        ):
            raise TypeError(f"{fn.__name__}: a confirm gate needs ConfirmInput and a preview")
        if route is not None:
            _check_route(fn.__name__, route, input_model, effect)
        return ToolSpec(
            name=fn.__name__,
            domain=domain,
            title=title,
            description=_reflow(inspect.cleandoc(fn.__doc__ or "")),
            input_model=input_model,
            output_model=output_model,
            effect=effect,
            scope=scope,
            handler=fn,
            gate=gate_,
            preview=preview,
            ask=ask,
            returns_secret=returns_secret,
            audit_reads=audit_reads,
            prepare=prepare,
            route=route,
        )

    return wrap


ROUTE = re.compile(r"(GET|POST|PUT|PATCH|DELETE) (/v1(?:/(?:[a-z0-9-]+|\{[a-z_]+\}))+)")


def _check_route(name: str, route: str, input_model: type[ToolInput], effect: Effect) -> None:
    """A route names its method and a path under /v1 whose {parameters} are required input fields; GET is for
    reads only, and PUT, PATCH and DELETE for tools that write."""
    found = ROUTE.fullmatch(route)
    if found is None:
        raise TypeError(f"{name}: route {route!r} is not 'METHOD /v1/path' (lowercase segments and {{field}}s)")
    method, path = found.groups()
    if (method == "GET") != effect.read_only and method != "POST":
        raise TypeError(f"{name}: GET is for read-only tools; PUT, PATCH and DELETE for tools that write")
    params = re.findall(r"\{([a-z_]+)\}", path)
    fields = input_model.model_fields
    missing = [p for p in params if p not in fields or not fields[p].is_required()]
    if missing or len(set(params)) != len(params):
        raise TypeError(f"{name}: the path parameters of {route!r} must be required input fields, each once")


def _reflow(text: str) -> str:
    """A docstring's lines joined into paragraphs: the line breaks are the source's width, not meaning."""
    return "\n\n".join(" ".join(paragraph.split("\n")) for paragraph in text.split("\n\n"))


def _can_wait(output_model: type[BaseModel]) -> bool:
    """Whether the tool's answer can say "waiting for approval" and nothing else."""
    if not issubclass(output_model, GatedResult):
        return False
    own = output_model.model_fields.keys() - GatedResult.model_fields.keys()
    return not any(output_model.model_fields[name].is_required() for name in own)
