"""Where this server is, as OAuth names it: the issuer (the server's base URL), the protected resource (/mcp) and
the resource's metadata document (RFC 9728)."""

from __future__ import annotations

from starlette.requests import Request

from favmcp.config import Settings

MCP_PATH = "/mcp"
PUBLIC_MCP_PATH = "/mcp/public"
PROFILE_PREFIX = "/mcp/p/"  # /mcp/p/<profile>: the same resource, narrowed to a profile's tools
PROTECTED_RESOURCE_METADATA = "/.well-known/oauth-protected-resource" + MCP_PATH
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def base_url(request: Request, settings: Settings) -> str | None:
    """FAVMCP_PUBLIC_URL; without it the address the request was made to, when its Host is one this server answers
    to (loopback or FAVMCP_ALLOWED_HOSTS): a forged Host never becomes an issuer. None: a Host not ours."""
    if settings.public_url:
        return settings.public_url
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if name not in LOCAL_HOSTS and not any(_matches(host, allowed) for allowed in settings.allowed_hosts):
        return None
    return f"{request.url.scheme}://{host}"


def _matches(host: str, pattern: str) -> bool:
    if pattern.endswith(":*"):
        return host == pattern[:-2] or host.startswith(pattern[:-1])
    return host == pattern


def profile_path(name: str) -> str:
    return PROFILE_PREFIX + name


def resource_url(base: str) -> str:
    return base + MCP_PATH


def same_resource(a: str, b: str) -> bool:
    """RFC 8707 resources compared as the SDK compares them: a trailing slash aside."""
    return a.rstrip("/") == b.rstrip("/")
