"""Sending one webhook: where a URL may point, and the signed POST (Standard Webhooks).

A target must be a public address unless the operator allows private ones (`allow_private_targets`): every
address its host name resolves to is checked, and the request then goes to the address that was checked (the Host
header and TLS name stay the URL's), so a name that resolves elsewhere a moment later (DNS rebinding) cannot steer
the request to a private address. Redirects are not followed: a 3xx is an answer like any other non-2xx.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import anyio
from standardwebhooks import Webhook

from favmcp.core.clock import Clock, SystemClock

if TYPE_CHECKING:
    import httpx

TIMEOUT = 10.0  # seconds for one POST, connecting included
RESOLVE_TIMEOUT = 5.0
USER_AGENT = "favmcp-webhooks/1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# A host name and port to the addresses it resolves to (the system's resolver unless a test brings its own).
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    with anyio.fail_after(RESOLVE_TIMEOUT):
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class TargetRefused(Exception):
    """The URL may not be called: not https, no host, or an address that is not public."""


def refused_address(address: IPAddress) -> str | None:
    """Why an address may not be a target (loopback, private, link-local, multicast, reserved ...), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "reserved", "unspecified", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:  # shared address space (100.64/10), documentation ranges and the like
        return "not global"
    return None


def check_url(url: str, *, allow_private: bool) -> tuple[str, str]:
    """The URL's (scheme, host) if its form may be a target: https (http too when private targets are allowed),
    a host, no user name or password in it."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError as exc:
        raise TargetRefused(f"not a URL: {exc}") from None
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise TargetRefused("the URL must start with https://")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("the URL may not carry a user name or password")
    return parts.scheme, parts.hostname


async def resolve_public(url: str, *, allow_private: bool, resolve: Resolver | None = None) -> IPAddress | None:
    """Check a URL as a target; return the public address to send to (None: send to the URL as it is, which is
    the case when private targets are allowed). Refused: TargetRefused; a name that does not resolve is refused
    too (at delivery time that is retried, as DNS may come back)."""
    scheme, host = check_url(url, allow_private=allow_private)
    if allow_private:
        return None
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        port = urlsplit(url).port or (443 if scheme == "https" else 80)
        try:
            found = await (resolve or system_resolve)(host, port)
        except (OSError, TimeoutError) as exc:
            raise TargetRefused(f"the host {host} does not resolve ({exc or type(exc).__name__})") from None
        addresses = [ipaddress.ip_address(a.split("%")[0]) for a in found]
        if not addresses:
            raise TargetRefused(f"the host {host} does not resolve")
    for address in addresses:
        why = refused_address(address)
        if why is not None:
            raise TargetRefused(f"{host} resolves to {address}, a {why} address")
    return addresses[0]


@dataclass(frozen=True)
class Outcome:
    """What one POST came back with: a status code (None when no answer came) and how long it took."""

    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signed_headers(secret: str, message_id: str, at: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers for `body`: webhook-id, webhook-timestamp (Unix seconds) and
    webhook-signature (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
    }


class WebhookSender:
    """POSTs signed JSON to a checked address. The webhook-timestamp is the wall clock's (receivers compare it
    with theirs, within minutes), not the injected clock that schedules retries."""

    def __init__(
        self,
        *,
        allow_private: bool,
        wall: Clock | None = None,
        timeout: float = TIMEOUT,
        resolve: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.wall = wall or SystemClock()
        self.timeout = timeout
        self.resolve = resolve
        self.transport = transport  # tests: the network's far side

    async def post(self, url: str, secret: str, message_id: str, body: str) -> Outcome:
        import httpx  # here, not at import: a process that sends nothing never loads it

        started = time.perf_counter()

        def took() -> int:
            return round((time.perf_counter() - started) * 1000)

        try:
            address = await resolve_public(url, allow_private=self.allow_private, resolve=self.resolve)
        except TargetRefused as exc:
            return Outcome(None, took(), f"target refused: {exc}"[:500])
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signed_headers(secret, message_id, self.wall.now(), body),
        }
        target, extensions = url, {}
        if address is not None:  # send to the address checked, naming the host as the URL does
            parts = urlsplit(url)
            host = f"[{address}]" if address.version == 6 else str(address)
            netloc = f"{host}:{parts.port}" if parts.port else host
            target = urlunsplit(parts._replace(netloc=netloc))
            headers["host"] = parts.netloc
            extensions = {"sni_hostname": parts.hostname or ""}
        try:
            with anyio.fail_after(self.timeout):  # the whole exchange, not each phase of it
                # No proxies from the environment: the address checked is the one connected to.
                async with httpx.AsyncClient(
                    timeout=self.timeout, follow_redirects=False, trust_env=False, transport=self.transport
                ) as client:
                    request = client.build_request("POST", target, content=body.encode(), headers=headers)
                    request.extensions.update(extensions)
                    response = await client.send(request, stream=True)  # the answer's body is never read
                    await response.aclose()
        except TimeoutError:
            return Outcome(None, took(), f"no answer within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return Outcome(None, took(), f"{type(exc).__name__}: {exc}"[:500])
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return Outcome(response.status_code, took(), error)
