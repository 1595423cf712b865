"""What every operation of the generated client shares: the HTTP call, the placement of its arguments, a held call
(202) and refusals (RFC 9457 problems) as FavmcpError. Written by hand; client.py and models.py are generated."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

import httpx

QUERY_METHODS = frozenset({"GET", "DELETE"})
# Arguments that travel as headers, so that a body or query never carries them twice.
HEADERS = {"idempotency_key": "Idempotency-Key", "confirmation_token": "Confirmation-Token"}


class Unset:
    """The default of an argument left out: the tool applies its own default, and an update keeps the value (None
    sends null, which clears it)."""

    _instance: Unset | None = None

    def __new__(cls) -> Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()


@dataclass(frozen=True)
class PendingApproval:
    """A send the workspace's approval policy holds (202): nothing is sent until a person approves approval_id."""

    approval_id: str
    location: str | None
    answer: dict[str, Any]


@dataclass
class FieldError:
    field: str
    message: str


class FavmcpError(Exception):
    """A refusal: the problem's favmcp error object (code, message, field_errors, hint, details, request_id,
    retry_after) and the HTTP status."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.code: str = str(problem.get("code", "internal_error"))
        self.message: str = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        self.field_errors = [
            FieldError(str(e.get("field", "")), str(e.get("message", "")))
            for e in problem.get("field_errors") or []
            if isinstance(e, dict)
        ]
        self.hint: str | None = problem.get("hint")
        self.details: dict[str, Any] = problem.get("details") or {}
        self.request_id: str | None = problem.get("request_id")
        self.retryable: bool = bool(problem.get("retryable", False))
        self.retry_after: int | None = problem.get("retry_after")
        fields = "; ".join(f"{e.field}: {e.message}" for e in self.field_errors)
        super().__init__(f"{self.code}: {self.message}" + (f" ({fields})" if fields else ""))

    @property
    def confirmation_token(self) -> str | None:
        """For confirmation_required: the token to repeat the same call with, once the preview is approved."""
        token = self.details.get("confirmation_token")
        return token if isinstance(token, str) else None

    @classmethod
    def from_response(cls, response: httpx.Response) -> FavmcpError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "code" not in body:
            # Not one of ours (a proxy's page, say): the status tells what there is to tell.
            body = {"code": "internal_error", "detail": response.text[:500] or response.reason_phrase}
        if response.status_code == 429 and body.get("retry_after") is None:
            retry = response.headers.get("retry-after", "")
            body = {**body, "retry_after": int(retry)} if retry.isdigit() else body
        return cls(response.status_code, body)


@dataclass
class BaseClient:
    """The connection: base_url (the server, e.g. http://127.0.0.1:8765) and api_key (a fav_mcp_ key; None for the
    public tools). Pass http to share an httpx.AsyncClient; otherwise the client owns one, closed by aclose() or
    `async with`."""

    base_url: str
    api_key: str | None = None
    http: httpx.AsyncClient | None = None
    timeout: float = 30.0
    _owned: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    async def __aenter__(self) -> BaseClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned is not None:
            await self._owned.aclose()
            self._owned = None

    def _http(self) -> httpx.AsyncClient:
        if self.http is not None:
            return self.http
        if self._owned is None:
            self._owned = httpx.AsyncClient(timeout=self.timeout)
        return self._owned

    async def _call(self, method: str, path: str, arguments: dict[str, Any]) -> Any:
        """Runs one operation: path arguments into the path, the two header arguments into headers, the rest into
        the query (GET, DELETE) or the JSON body. Arguments left UNSET are not sent."""
        given = {name: value for name, value in arguments.items() if value is not UNSET}
        in_path = set(re.findall(r"\{(\w+)\}", path))
        url = self.base_url.rstrip("/") + re.sub(r"\{(\w+)\}", lambda m: quote(str(given[m[1]]), safe=""), path)
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        headers |= {HEADERS[name]: str(value) for name, value in given.items() if name in HEADERS}
        rest = {name: value for name, value in given.items() if name not in in_path and name not in HEADERS}
        if method in QUERY_METHODS:
            response = await self._http().request(method, url, params=rest, headers=headers)
        else:
            response = await self._http().request(method, url, json=rest, headers=headers)
        if response.status_code == 202:
            answer = response.json()
            return PendingApproval(str(answer.get("approval_id", "")), response.headers.get("location"), answer)
        if not response.is_success:
            raise FavmcpError.from_response(response)
        return response.json()
