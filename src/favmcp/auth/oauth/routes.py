"""The authorization server over HTTP, and the guard in front of /mcp.

Metadata (RFC 8414 for the server, RFC 9728 for /mcp) is written per request from the server's address, so one
process answers for 127.0.0.1 and localhost alike unless FAVMCP_PUBLIC_URL names the one address. /authorize,
/token, /register and /revoke are the SDK's handlers over `Provider`; the page a person sees is `pages.py` (which
signs up a new business through the runner's signup tools).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.revoke import RevocationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.json_response import PydanticJSONResponse
from mcp.server.auth.middleware.client_auth import ClientAuthenticator
from mcp.server.auth.settings import ClientRegistrationOptions
from mcp.server.transport_security import RequestBodyLimitMiddleware
from mcp.shared.auth import OAuthMetadata, ProtectedResourceMetadata
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from favmcp.auth import credentials, ratelimit
from favmcp.auth.credentials import ACCESS_TOKEN_PREFIX, REQUEST_CALLER, REQUEST_PROFILE, REQUEST_RESOURCE, Caller
from favmcp.auth.keys import PREFIX as API_KEY_PREFIX
from favmcp.auth.oauth.pages import Pages
from favmcp.auth.oauth.provider import SCOPES_SUPPORTED, VALID_SCOPES, Provider
from favmcp.auth.oauth.signin import SignIn
from favmcp.auth.oauth.urls import (
    MCP_PATH,
    PROFILE_PREFIX,
    PROTECTED_RESOURCE_METADATA,
    PUBLIC_MCP_PATH,
    base_url,
    resource_url,
    same_resource,
)
from favmcp.core.errors import FavError
from favmcp.registry.profiles import PROFILES

if TYPE_CHECKING:
    from favmcp.registry.runner import Runner

MAX_BODY = 64_000  # an OAuth request is a short form or a small JSON document
REGISTRATIONS_PER_HOUR = 20  # per client address: registration is open to anyone, so it is bounded
REGISTRATION = ClientRegistrationOptions(enabled=True, valid_scopes=VALID_SCOPES, default_scopes=SCOPES_SUPPORTED)
Handler = Callable[[Request], Awaitable[Response]]


def _wrapped(handler: Handler, methods: list[str], *, cors: bool = True) -> ASGIApp:
    app: ASGIApp = RequestBodyLimitMiddleware(request_response(handler), MAX_BODY)
    if not cors:  # /authorize and the pages are for browsers to navigate to, never for scripts of other sites
        return app
    return CORSMiddleware(
        app=app, allow_origins=["*"], allow_methods=methods, allow_headers=[MCP_PROTOCOL_VERSION_HEADER]
    )


def _not_ours() -> JSONResponse:
    return JSONResponse({"error": "invalid_request", "error_description": "unknown host"}, status_code=421)


def server_metadata(base: str) -> OAuthMetadata:
    return OAuthMetadata.model_validate(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "registration_endpoint": f"{base}/register",
            "revocation_endpoint": f"{base}/revoke",
            "scopes_supported": SCOPES_SUPPORTED,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "client_id_metadata_document_supported": True,
        }
    )


def resource_metadata(base: str) -> ProtectedResourceMetadata:
    return ProtectedResourceMetadata.model_validate(
        {
            "resource": resource_url(base),
            "authorization_servers": [base],
            "scopes_supported": SCOPES_SUPPORTED,
            "bearer_methods_supported": ["header"],
            "resource_name": "favmcp",
        }
    )


def routes(provider: Provider, runner: Runner) -> list[Route]:
    settings = provider.settings
    authenticator = ClientAuthenticator(provider)
    registration = RegistrationHandler(provider, REGISTRATION)
    pages = Pages(SignIn(provider), runner)

    def metadata(document: Callable[[str], Any]) -> Handler:
        async def handle(request: Request) -> Response:
            base = base_url(request, settings)
            if base is None:
                return _not_ours()
            return PydanticJSONResponse(document(base), headers={"Cache-Control": "no-cache"})

        return handle

    async def register(request: Request) -> Response:
        address = request.client.host if request.client else "unknown"
        bucket = hmac.new(settings.secret_key, address.encode(), hashlib.sha256).hexdigest()  # never the address
        try:
            async with provider.db.transaction() as session:
                await ratelimit.hit(
                    session, f"oauth:register:{bucket}", REGISTRATIONS_PER_HOUR, ratelimit.HOUR, provider.clock.now()
                )
        except FavError as exc:
            return JSONResponse(
                {"error": "invalid_client_metadata", "error_description": exc.body.message},
                status_code=429,
                headers={"Retry-After": str(exc.body.retry_after or 3600)},
            )
        return await registration.handle(request)

    tokens = TokenHandler(provider, authenticator)

    async def token(request: Request) -> Response:
        """RFC 8707 at the token endpoint too: a `resource` other than this server's /mcp is invalid_target (the
        handler reads the same parsed form afterwards)."""
        named = (await request.form()).get("resource")
        base = base_url(request, settings)
        if isinstance(named, str) and (base is None or not same_resource(named, resource_url(base))):
            return JSONResponse(
                {"error": "invalid_target", "error_description": "This server's only resource is its /mcp."},
                status_code=400,
                headers={"Cache-Control": "no-store"},
            )
        return await tokens.handle(request)

    post = ["POST", "OPTIONS"]
    return [
        Route(
            "/.well-known/oauth-authorization-server",
            _wrapped(metadata(server_metadata), ["GET", "OPTIONS"]),
            methods=["GET", "OPTIONS"],
        ),
        Route(
            PROTECTED_RESOURCE_METADATA,
            _wrapped(metadata(resource_metadata), ["GET", "OPTIONS"]),
            methods=["GET", "OPTIONS"],
        ),
        Route("/authorize", _wrapped(AuthorizationHandler(provider).handle, [], cors=False), methods=["GET", "POST"]),
        Route("/token", _wrapped(token, post), methods=post),
        Route("/register", _wrapped(register, post), methods=post),
        Route("/revoke", _wrapped(RevocationHandler(provider, authenticator).handle, post), methods=post),
        Route("/oauth/authorize/{request_id}", _wrapped(pages.authorize, [], cors=False), methods=["GET", "POST"]),
    ]


def challenge(base: str, error: str | None = None, description: str | None = None) -> JSONResponse:
    """401 with the pointer to this resource's metadata, where an OAuth client starts (RFC 9728 §5.1)."""
    quoted = (description or "").replace('"', "'")
    parts = [f'error="{error}"', f'error_description="{quoted}"'] if error else []
    parts.append(f'resource_metadata="{base}{PROTECTED_RESOURCE_METADATA}"')
    body = {
        "error": error or "unauthorized",
        "error_description": description
        or f"{MCP_PATH} needs a credential: an OAuth access token, or an API key as Authorization: Bearer fav_mcp_…; "
        f"the tools that need none (signup, whoami, discovery) are at {PUBLIC_MCP_PATH}.",
    }
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer " + ", ".join(parts)})


class McpGuard:
    """In front of the MCP endpoints. /mcp answers any request without a credential (initialize included) with 401
    and the resource metadata's address, which is how an OAuth client learns where to sign in. An OAuth access token
    is checked here, so a revoked, expired or foreign one is a 401 too (the client then refreshes or signs in again),
    and the request's call takes the caller from this check; API keys are checked by the runner on every call, as
    over stdio. /mcp/public takes no credential at all.

    /mcp/p/<profile> is /mcp narrowed to a profile: every credential is checked here, and one bound to another
    profile is refused with 403 (the profile URLs pay that read; /mcp does not for API keys)."""

    def __init__(self, app: ASGIApp, provider: Provider) -> None:
        self.app = app
        self.provider = provider

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if path == PUBLIC_MCP_PATH:
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"authorization"]
            await self.app({**scope, "headers": headers}, receive, send)
            return
        profile = path.removeprefix(PROFILE_PREFIX) if path and path.startswith(PROFILE_PREFIX) else None
        if path != MCP_PATH and (profile not in PROFILES or PROFILES[profile].keys_only):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        base = base_url(request, self.provider.settings)
        if base is None:  # the transport refuses a Host it does not serve (DNS rebinding)
            await self.app(scope, receive, send)
            return
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        secret = secret.strip() if scheme.lower() == "bearer" else ""
        if not secret:
            await challenge(base)(scope, receive, send)
            return
        bound = REQUEST_RESOURCE.set(resource_url(base))
        named = REQUEST_PROFILE.set(profile)
        remembered = None
        try:
            if profile is not None or not secret.startswith(API_KEY_PREFIX):
                checked = await self._checked(secret, profile)
                if isinstance(checked, Response):
                    await checked(scope, receive, send)
                    return
                if isinstance(checked, str):
                    await challenge(base, "invalid_token", checked)(scope, receive, send)
                    return
                remembered = REQUEST_CALLER.set((secret, checked))
            await self.app(scope, receive, send)
        finally:
            if remembered is not None:
                REQUEST_CALLER.reset(remembered)
            REQUEST_PROFILE.reset(named)
            REQUEST_RESOURCE.reset(bound)

    async def _checked(self, secret: str, profile: str | None) -> str | Response | Caller:
        """Why the credential is refused (a message for a 401, or a 403 for one bound to another profile), or whom
        it belongs to."""
        if not secret.startswith((ACCESS_TOKEN_PREFIX, API_KEY_PREFIX)):
            return "Not a favmcp access token or API key."
        try:
            caller = await credentials.resolve(self.provider.db, secret, self.provider.clock.now())
        except FavError as exc:
            return exc.body.message
        if profile is not None and caller.profile is not None and caller.profile != profile:
            description = f"This credential is bound to the {caller.profile} profile, not {profile}."
            return JSONResponse({"error": "forbidden", "error_description": description}, status_code=403)
        return caller
