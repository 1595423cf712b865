"""The REST API under /v1, generated from the registry: each tool at its declared route, through the runner.

Arguments come from the path and, for GET and DELETE, from the query string (typed by the tool's input schema),
otherwise from the JSON body. The answer is the tool's output as JSON (202 when an approval-gated call waits for a
person), or an RFC 9457 problem that carries the runner's error object. `GET /openapi.json` describes it all,
generated from the same models.

Publishable keys (fav_pub_, made for web pages) work here only: a request with one from an Origin the key does not
allow is refused, an allowed one gets CORS headers for its origin, and each key is limited per client address.
A preflight (OPTIONS) carries no key, so it is answered for an origin that some publishable key allows.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, compile_path
from starlette.types import Receive, Scope, Send

from favmcp import __version__
from favmcp.app import App
from favmcp.auth import credentials, keys, ratelimit
from favmcp.config import LOCAL_HOSTS
from favmcp.core.errors import ErrorCode, FavError
from favmcp.core.ids import new_id
from favmcp.registry.profiles import PROFILES, PUBLISHABLE
from favmcp.registry.registry import Registry
from favmcp.registry.spec import Gate, ToolSpec

MAX_BODY = 1_000_000  # the bound /mcp has
# The hosts /mcp accepts (transports/http.py), against DNS rebinding: anonymous tools (signup) answer here too.
QUERY_METHODS = frozenset({"GET", "DELETE"})
PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "urn:favmcp:problem:"
# Arguments that headers may carry instead of the body: (header, input field).
HEADER_FIELDS = (("idempotency-key", "idempotency_key"), ("confirmation-token", "confirmation_token"))

# Requests per minute of one publishable key from one client address: a visitor browsing and booking stays far
# below it; a script hammering one page's key from one address does not.
PUBLISHABLE_PER_MINUTE = 60
MINUTE = timedelta(minutes=1)
CORS_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, Idempotency-Key"
# The publishable key and, when the request's Origin is one it allows, that origin.
_PUBLISHABLE_KEY = """
SELECT k.id, o.origin FROM api_keys k LEFT JOIN api_key_origins o ON o.key_id = k.id AND o.origin = $2
WHERE k.key_hash = $1
"""
_ALLOWED_ORIGIN = """
SELECT o.origin FROM api_key_origins o JOIN api_keys k ON k.id = o.key_id
WHERE o.origin = $1 AND k.revoked_at IS NULL LIMIT 1
"""

STATUS: dict[str, int] = {
    ErrorCode.validation_failed: 422,
    ErrorCode.not_found: 404,
    ErrorCode.forbidden: 403,
    ErrorCode.unauthenticated: 401,
    ErrorCode.conflict: 409,
    ErrorCode.invalid_state: 409,
    ErrorCode.rate_limited: 429,
    ErrorCode.confirmation_required: 428,
    ErrorCode.declined: 409,
    ErrorCode.idempotency_mismatch: 422,
    ErrorCode.internal_error: 500,
}
TITLE: dict[str, str] = {
    ErrorCode.validation_failed: "The arguments are not valid",
    ErrorCode.not_found: "Not found",
    ErrorCode.forbidden: "Forbidden",
    ErrorCode.unauthenticated: "Authentication needed",
    ErrorCode.conflict: "Conflict",
    ErrorCode.invalid_state: "Not allowed in the current state",
    ErrorCode.rate_limited: "Too many requests",
    ErrorCode.confirmation_required: "Confirmation required",
    ErrorCode.declined: "Declined",
    ErrorCode.idempotency_mismatch: "Idempotency key reused with other arguments",
    ErrorCode.internal_error: "Server error",
}


@dataclass(frozen=True)
class Operation:
    """One tool at its route."""

    spec: ToolSpec
    method: str
    path: str
    regex: re.Pattern[str]
    params: tuple[str, ...]
    # The input schema's properties (refs resolved), to type query values and to describe parameters.
    fields: dict[str, dict[str, Any]] = field(repr=False)

    @property
    def in_query(self) -> bool:
        return self.method in QUERY_METHODS

    def specificity(self) -> tuple[int, ...]:
        """Literal segments before parameters, so /v1/invoices/overdue is tried before /v1/invoices/{invoice_id}."""
        return tuple(int(segment.startswith("{")) for segment in self.path.split("/"))


def route_of(spec: ToolSpec) -> tuple[str, str]:
    method, path = (spec.route or f"POST /v1/tools/{spec.name}").split(" ", 1)
    return method, path


def operations(specs: Iterable[ToolSpec]) -> list[Operation]:
    """Every tool's operation, most specific path first. Refuses two tools on one method and path, and a GET or
    DELETE route whose tool takes an argument a query string cannot carry (an object)."""
    ops: list[Operation] = []
    seen: dict[tuple[str, str], str] = {}
    for spec in specs:
        method, path = route_of(spec)
        shape = re.sub(r"\{[a-z_]+\}", "{}", path)
        if (method, shape) in seen:
            raise ValueError(f"{spec.name} and {seen[method, shape]} are both at {method} {path}")
        seen[method, shape] = spec.name
        regex, _, _ = compile_path(path)
        schema = spec.input_schema()
        defs = schema.get("$defs", {})
        fields = {name: _resolved(prop, defs) for name, prop in schema.get("properties", {}).items()}
        params = tuple(re.findall(r"\{([a-z_]+)\}", path))
        op = Operation(spec, method, path, regex, params, fields)
        if op.in_query:
            unfit = [name for name, prop in fields.items() if name not in params and not _query_types(prop)]
            if unfit:
                raise ValueError(f"{spec.name}: {method} takes its arguments in the query, which cannot carry {unfit}")
        ops.append(op)
    return sorted(ops, key=Operation.specificity)


def _resolved(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref", "").removeprefix("#/$defs/")
    if ref in defs:
        return {**defs[ref], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


SCALARS = ("integer", "number", "boolean", "string")


def _query_types(prop: dict[str, Any]) -> list[str]:
    """The scalar types a query value of this field may take, in the order to try them; [] when a query string
    cannot carry the field. An array of scalars is written as repeated keys."""
    if "enum" in prop or "const" in prop:
        values = prop.get("enum", [prop.get("const")])
        return sorted({_json_type(v) for v in values if v is not None}, key=SCALARS.index)
    if "anyOf" in prop:
        found = [_query_types(branch) for branch in prop["anyOf"] if branch != {"type": "null"}]
        return [t for t in SCALARS if any(t in f for f in found)] if all(found) else []
    types = prop.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if "array" in types:
        items = prop.get("items", {})
        return _query_types(items) if isinstance(items, dict) and set(types) <= {"array", "null"} else []
    if not types or not set(types) <= {*SCALARS, "null"}:
        return []
    return [t for t in SCALARS if t in types]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return "number" if isinstance(value, float) else "string"


def _typed(value: str, types: list[str]) -> Any:
    """A query value as the first type it reads as; else the text, for the tool's validation to refuse."""
    for kind in types:
        if kind == "integer" and re.fullmatch(r"-?\d{1,30}", value):
            return int(value)
        if kind == "number" and re.fullmatch(r"-?\d{1,30}(\.\d{1,30})?([eE][-+]?\d{1,3})?", value):
            return float(value)
        if kind == "boolean" and value in ("true", "false"):
            return value == "true"
        if kind == "string":
            return value
    return value


class Refused(Exception):
    """A request refused before it reaches the runner (an unknown route, a body that is not JSON)."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        detail: str,
        *,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error: dict[str, Any] = {"code": code, "message": detail, "field_errors": [], "request_id": new_id("req")}
        if hint:
            self.error["hint"] = hint
        self.headers = headers or {}


def problem(error: dict[str, Any], status: int | None = None, headers: dict[str, str] | None = None) -> Response:
    """RFC 9457 problem details: type, title, status and detail, then every field of our error object."""
    code = error["code"]
    status = status or STATUS.get(code, 500)
    body = {
        "type": PROBLEM_TYPE + code,
        # A refusal of the request itself (a wrong method, a body too large) is titled by its HTTP status.
        "title": TITLE[code] if status == STATUS.get(code) else HTTPStatus(status).phrase,
        "status": status,
        "detail": error["message"],
        **{k: v for k, v in error.items() if k != "message"},
    }
    extra = dict(headers or {})
    if code == ErrorCode.rate_limited:
        extra["Retry-After"] = str(error.get("retry_after") or 1)
    return Response(json.dumps(body, ensure_ascii=False), status, extra, media_type=PROBLEM_JSON)


def _host_allowed(host: str, allowed: list[str]) -> bool:
    return any(host == a or (a.endswith(":*") and host.startswith(a[:-1])) for a in allowed)


def _credential(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _too_large()
    return bytes(body)


def _too_large() -> Refused:
    return Refused(413, ErrorCode.validation_failed, f"The body is larger than {MAX_BODY} bytes.")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def _json_arguments(request: Request) -> dict[str, Any]:
    raw = await _body(request)
    if not raw.strip():
        return {}
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise Refused(
            415,
            ErrorCode.validation_failed,
            f"The body must be application/json, not {media or 'unnamed'}.",
            hint="Send Content-Type: application/json.",
        )
    try:
        parsed = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise Refused(400, ErrorCode.validation_failed, f"The body is not valid JSON: {exc}.") from None
    if not isinstance(parsed, dict):
        raise Refused(422, ErrorCode.validation_failed, "The body must be a JSON object of the tool's arguments.")
    return parsed


def _query_arguments(op: Operation, request: Request) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for name in dict.fromkeys(request.query_params.keys()):
        values = request.query_params.getlist(name)
        prop = op.fields.get(name)
        types = _query_types(prop) if prop is not None else ["string"]
        typed = [_typed(v, types) for v in values]
        args[name] = typed if (prop is not None and _is_array(prop)) or len(typed) > 1 else typed[0]
    return args


def _is_array(prop: dict[str, Any]) -> bool:
    kinds = prop.get("type", [])
    return "array" in ([kinds] if isinstance(kinds, str) else kinds)


def _put(args: dict[str, Any], name: str, value: Any, where: str) -> None:
    if name in args and args[name] != value:
        raise Refused(
            422,
            ErrorCode.validation_failed,
            f"{name} is given twice with different values ({where} and the arguments).",
            hint=f"Give {name} once.",
        )
    args[name] = value


async def arguments(op: Operation, request: Request, path_params: dict[str, str]) -> dict[str, Any]:
    """The tool's arguments: path parameters, the query or the body, and the headers that carry arguments."""
    if op.in_query:
        if await _body(request):
            raise Refused(
                400, ErrorCode.validation_failed, f"{op.method} takes its arguments in the query, not a body."
            )
        args = _query_arguments(op, request)
    else:
        if request.url.query:
            raise Refused(
                400, ErrorCode.validation_failed, f"{op.method} takes its arguments in the JSON body, not the query."
            )
        args = await _json_arguments(request)
    for name, value in path_params.items():
        _put(args, name, _typed(value, _query_types(op.fields[name]) or ["string"]), "the path")
    for header, name in HEADER_FIELDS:
        given = request.headers.get(header)
        # A read has no idempotency_key: repeating it is safe, so the header is moot there.
        if given is not None and (name in op.fields or name != "idempotency_key"):
            _put(args, name, given, f"the {header} header")
    return args


class RestApi:
    """Matches a request to its operation, runs the tool through the runner and answers in HTTP terms."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.ops = operations(app.registry.listed())
        self.allowed_hosts = LOCAL_HOSTS + app.settings.allowed_hosts
        self.approval_path = next((op.path for op in self.ops if op.spec.name == "get_approval"), None)

    @functools.cached_property
    def document(self) -> bytes:
        """Built when first asked for: a server that is never asked starts a quarter of a second sooner."""
        return json.dumps(openapi(self.app.registry), ensure_ascii=False).encode()

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]]:
        allowed: list[str] = []
        for op in self.ops:
            found = op.regex.match(path)
            if found is None:
                continue
            if op.method == method:
                return op, found.groupdict()
            allowed.append(op.method)
        if allowed:
            methods = ", ".join(dict.fromkeys(allowed))
            raise Refused(
                405,
                ErrorCode.not_found,
                f"{path} takes {methods}, not {method}.",
                hint="See /openapi.json.",
                headers={"Allow": methods},
            )
        raise Refused(404, ErrorCode.not_found, f"No route {path}.", hint="See /openapi.json for the routes.")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An ASGI app, so that its route takes every method and a wrong one gets a problem too."""
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        cors: dict[str, str] = {}
        try:
            if not _host_allowed(request.headers.get("host", ""), self.allowed_hosts):
                raise Refused(421, ErrorCode.forbidden, "This server does not answer for that Host.")
            if request.method == "OPTIONS":
                return await self.preflight(request)
            op, path_params = self.match(request.method, request.url.path)
            args = await arguments(op, request, path_params)
            credential = _credential(request)
            address = request.client.host if request.client else "unknown"
            if credential is not None and keys.is_publishable(credential):
                cors = await self.publishable(request, credential, address)
                _pin(op, args)
        except Refused as refused:
            return problem(refused.error, refused.status, {**refused.headers, **cors})
        token = credentials.REST_REQUEST.set(True)
        try:
            response = await self.answer(op, args, credential, address)
        finally:
            credentials.REST_REQUEST.reset(token)
        response.headers.update(cors)
        return response

    async def preflight(self, request: Request) -> Response:
        """A browser asking whether a page of its Origin may call: yes when a publishable key allows that origin
        (the call itself is checked against the key it carries)."""
        origin = request.headers.get("origin", "")
        if not origin or await self.app.runner.db.fetch_row(_ALLOWED_ORIGIN, origin) is None:
            raise Refused(403, ErrorCode.forbidden, "No publishable key allows this origin.")
        return Response(
            status_code=204,
            headers={
                **_cors(origin),
                "Access-Control-Allow-Methods": CORS_METHODS,
                "Access-Control-Allow-Headers": CORS_HEADERS,
                "Access-Control-Max-Age": "600",
            },
        )

    async def publishable(self, request: Request, credential: str, address: str) -> dict[str, str]:
        """The CORS headers for a call with a publishable key, after its origin and address checks."""
        origin = request.headers.get("origin")
        row = await self.app.runner.db.fetch_row(_PUBLISHABLE_KEY, keys.key_hash(credential), origin or "")
        if row is None:
            return {}  # not a key at all: the runner refuses it as any unknown key
        key_id, allowed = row
        if origin is not None and allowed is None:
            raise Refused(403, ErrorCode.forbidden, f"This publishable key does not allow the origin {origin}.")
        try:
            async with self.app.runner.db.transaction() as session:
                # Keyed by an HMAC of the address, as the one-time codes' buckets are: no address is stored.
                who = hmac.new(self.app.settings.secret_key, address.encode(), hashlib.sha256).hexdigest()
                now = self.app.runner.clock.now()
                await ratelimit.hit(session, f"pub:{key_id}:{who}", PUBLISHABLE_PER_MINUTE, MINUTE, now)
        except FavError as limited:
            refused = Refused(
                429, ErrorCode.rate_limited, "Too many requests from this address with this key; try again later."
            )
            refused.error.update(retryable=True, retry_after=limited.body.retry_after)
            # The page may read the answer and its Retry-After: its origin is allowed.
            refused.headers.update(_cors(origin) if origin else {})
            raise refused from None
        return _cors(origin) if origin else {}

    async def answer(self, op: Operation, args: dict[str, Any], credential: str | None, address: str) -> Response:
        result = await self.app.runner.call(op.spec.name, args, credential=credential, client_address=address)
        if not result.ok:
            error = result.data["error"]
            headers = {}
            if error["code"] == ErrorCode.unauthenticated:
                headers["WWW-Authenticate"] = 'Bearer realm="favmcp"' + (
                    ', error="invalid_token"' if credential else ""
                )
            return problem(error, headers=headers)
        if op.spec.gate is Gate.approval and result.data.get("status") == "pending_approval":
            headers = {}
            if self.approval_path and result.data.get("approval_id"):
                headers["Location"] = self.approval_path.replace("{approval_id}", str(result.data["approval_id"]))
            return JSONResponse(result.data, 202, headers)
        return JSONResponse(result.data)

    async def openapi_json(self, request: Request) -> Response:
        return Response(self.document, media_type="application/json")


def _cors(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": "Location, Retry-After",
        "Vary": "Origin",
    }


def _pin(op: Operation, args: dict[str, Any]) -> None:
    """The arguments the publishable profile fixes (list_posts: published posts only), whatever was sent."""
    for tool_name, name, value in PROFILES[PUBLISHABLE].pinned:
        if tool_name == op.spec.name:
            _put(args, name, value, "the publishable key")


def routes(app: App) -> list[Route]:
    api = RestApi(app)
    return [
        Route("/openapi.json", api.openapi_json, methods=["GET"]),
        Route("/v1/{rest:path}", api),
    ]


# -- OpenAPI ---------------------------------------------------------------------------------------------------------

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details, with favmcp's error object.",
    "properties": {
        "type": {"type": "string", "description": f"{PROBLEM_TYPE}<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What went wrong, for a person."},
        "code": {"type": "string", "enum": [c.value for c in ErrorCode]},
        "field_errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
        "retryable": {"type": "boolean"},
        "retry_after": {"type": "integer", "description": "Seconds to wait before retrying."},
        "hint": {"type": "string", "description": "What to do next."},
        "details": {
            "type": "object",
            "description": "Facts of the refusal; confirmation_required: preview, confirmation_token, expires_at.",
        },
        "request_id": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail", "code"],
}
ERROR_RESPONSES: dict[str, str] = {
    "400": "The body is not JSON, or the arguments are in the wrong place.",
    "401": "No valid key: send Authorization: Bearer <key>.",
    "403": "The key lacks the tool's scope.",
    "404": "No such record, route or tool.",
    "409": "A conflict, or the record's state does not allow it (conflict, invalid_state, declined).",
    "413": "The body is larger than 1 MB.",
    "415": "The body is not application/json.",
    "421": "This server does not answer for that Host.",
    "422": "The arguments are not valid (validation_failed, idempotency_mismatch).",
    "428": "Nothing changed yet: details hold the preview and the confirmation token to send back.",
    "429": "Too many requests: wait Retry-After seconds.",
    "500": "Something failed on the server (or the outcome of a commit is unknown: retry with the same key).",
}
HEADER_PARAMETERS: dict[str, dict[str, Any]] = {
    "IdempotencyKey": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Retry-safe: the first answer is replayed for 24 h (or idempotency_key in the body).",
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    },
    "ConfirmationToken": {
        "name": "Confirmation-Token",
        "in": "header",
        "required": False,
        "description": "The token of a 428 answer: resend the same arguments with it to act.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 1000},
    },
}


def openapi(registry: Registry) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the tools this server serves."""
    specs = registry.listed()
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for op in sorted(operations(specs), key=lambda o: (o.path, o.method)):
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schemas)
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "favmcp REST API",
            "version": __version__,
            "description": "Every favmcp tool at its route, with the same keys, gates, idempotency and errors as MCP.",
        },
        "tags": [{"name": domain} for domain in dict.fromkeys(s.domain for s in specs)],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A fav_mcp_ API key, or a publishable fav_pub_ key for a web page (the "
                    "publishable profile's operations, from the origins it allows).",
                }
            },
            "schemas": schemas,
            "parameters": HEADER_PARAMETERS,
            "responses": {
                status: {"description": text, "content": {PROBLEM_JSON: {"schema": problem_ref}}}
                for status, text in ERROR_RESPONSES.items()
            },
        },
    }


def _operation(op: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    spec = op.spec
    inputs = _hoisted(spec.input_schema(), spec.name, schemas)
    properties: dict[str, Any] = inputs.get("properties", {})
    required = set(inputs.get("required", []))
    parameters: list[dict[str, Any]] = [_parameter(name, "path", properties[name], required=True) for name in op.params]
    operation: dict[str, Any] = {
        "operationId": spec.name,
        "summary": spec.title,
        "description": spec.description,
        "tags": [spec.domain],
    }
    if op.in_query:
        parameters += [
            _parameter(name, "query", prop, required=name in required)
            for name, prop in properties.items()
            if name not in op.params and name not in ("idempotency_key", "confirmation_token")
        ]
    else:
        body = {
            **inputs,
            "properties": {k: v for k, v in properties.items() if k not in op.params},
            # Headers may carry these instead of the body.
            "required": sorted(required - set(op.params) - {"idempotency_key", "confirmation_token"}),
        }
        if not body["required"]:
            del body["required"]
        operation["requestBody"] = {
            "required": "required" in body,
            "content": {"application/json": {"schema": body}},
        }
    if "idempotency_key" in properties:
        parameters.append({"$ref": "#/components/parameters/IdempotencyKey"})
    if "confirmation_token" in properties:
        parameters.append({"$ref": "#/components/parameters/ConfirmationToken"})
    if parameters:
        operation["parameters"] = parameters
    answer = {"content": {"application/json": {"schema": _hoisted(spec.output_schema(), spec.name, schemas)}}}
    responses: dict[str, Any] = {"200": {"description": "The tool's answer.", **answer}}
    if spec.gate is Gate.approval:
        responses["202"] = {"description": "Held for approval: status pending_approval, see approval_id.", **answer}
    for status in ERROR_RESPONSES:
        if status != "428" or spec.gate is Gate.confirm:
            responses[status] = {"$ref": f"#/components/responses/{status}"}
    operation["responses"] = responses
    if spec.scope == "public":
        operation["security"] = [{}, {"bearer": []}]
    operation["x-favmcp-scope"] = spec.scope
    if spec.gate:
        operation["x-favmcp-gate"] = spec.gate.value
    e = spec.effect
    operation["x-favmcp-annotations"] = {
        "readOnlyHint": e.read_only,
        "destructiveHint": e.destructive,
        "idempotentHint": e.idempotent,
        "openWorldHint": e.open_world,
    }
    return operation


def _parameter(name: str, where: str, prop: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """A query string cannot say null: a parameter's schema is its field's without the null."""
    schema = _without_null(prop)
    parameter: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": schema}
    if "description" in schema:
        parameter["description"] = schema["description"]
    return parameter


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    schema = dict(prop)
    if isinstance(schema.get("type"), list):
        kinds = [t for t in schema["type"] if t != "null"]
        schema["type"] = kinds[0] if len(kinds) == 1 else kinds
    if "enum" in schema:
        schema["enum"] = [v for v in schema["enum"] if v is not None]
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b != {"type": "null"}]
        schema.pop("anyOf")
        schema = {**branches[0], **schema} if len(branches) == 1 else {**schema, "anyOf": branches}
    return schema


def _hoisted(schema: dict[str, Any], owner: str, schemas: dict[str, Any]) -> dict[str, Any]:
    """The schema with its $defs moved to components (a $ref is resolved against the whole document there): under
    their own names when no other tool's shape has that name, else prefixed with the tool's."""
    defs = schema.pop("$defs", {})
    if not defs:
        return schema
    names = {name: name for name in defs}
    if any(schemas.get(name, d) != _refs_to(d, names) for name, d in defs.items()):
        names = {name: f"{owner}.{name}" for name in defs}
    for name, d in defs.items():
        schemas[names[name]] = _refs_to(d, names)
    return _refs_to(schema, names)


def _refs_to(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [_refs_to(item, names) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _refs_to(value, names) for key, value in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        out["$ref"] = "#/components/schemas/" + names[ref.removeprefix("#/$defs/")]
    return out
