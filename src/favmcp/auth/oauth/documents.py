"""Client ID metadata documents: a client whose client_id is an HTTPS URL publishes its metadata there, and the
authorization server fetches it instead of asking the client to register (draft-ietf-oauth-client-id-metadata-
document, in the MCP authorization specification).

The fetch is someone else's URL, so it is bounded like a webhook: public addresses only unless the operator allows
private ones (`FAVMCP_ALLOW_PRIVATE_TARGETS`, which also allows plain http), sent to the address that was checked,
no redirects, a few seconds, a few kilobytes.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import ValidationError

from favmcp.effects.channels.webhook import TargetRefused, resolve_public

TIMEOUT = 5.0
MAX_BYTES = 5_120  # the draft's suggested bound for a metadata document
USER_AGENT = "favmcp-oauth/1"


class DocumentRefused(Exception):
    pass


def is_document_url(client_id: str) -> bool:
    """A client_id that names its metadata document: an http(s) URL with a path (never a registered client's id)."""
    parts = urlsplit(client_id)
    return parts.scheme in {"https", "http"} and bool(parts.hostname) and parts.path not in {"", "/"}


async def fetch_client(client_id: str, *, allow_private: bool) -> OAuthClientInformationFull:
    """The client described by the document at `client_id`. DocumentRefused says why not."""
    try:
        address = await resolve_public(client_id, allow_private=allow_private)
    except TargetRefused as exc:
        raise DocumentRefused(str(exc)) from None
    target, headers, extensions = client_id, {"accept": "application/json", "user-agent": USER_AGENT}, {}
    if address is not None:  # connect to the address checked, naming the host as the URL does
        parts = urlsplit(client_id)
        host = f"[{address}]" if address.version == 6 else str(address)
        target = urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))
        headers["host"] = parts.netloc
        extensions = {"sni_hostname": parts.hostname or ""}
    body = bytearray()
    try:
        with anyio.fail_after(TIMEOUT):
            async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as http:
                request = http.build_request("GET", target, headers=headers)
                request.extensions.update(extensions)
                response = await http.send(request, stream=True)
                try:
                    if response.status_code != 200:
                        raise DocumentRefused(f"the document answered HTTP {response.status_code}")
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_BYTES:
                            raise DocumentRefused(f"the document is larger than {MAX_BYTES} bytes")
                finally:
                    await response.aclose()
    except TimeoutError:
        raise DocumentRefused(f"no answer within {TIMEOUT:g} s") from None
    except httpx.HTTPError as exc:
        raise DocumentRefused(f"{type(exc).__name__}: {exc}") from None
    return _client(client_id, bytes(body))


def _client(client_id: str, body: bytes) -> OAuthClientInformationFull:
    try:
        document = json.loads(body)
    except ValueError:
        raise DocumentRefused("the document is not JSON") from None
    if not isinstance(document, dict) or document.get("client_id") != client_id:
        raise DocumentRefused("the document's client_id is not its own URL")
    if document.get("client_secret") is not None or document.get("token_endpoint_auth_method", "none") != "none":
        raise DocumentRefused("a client described by a document authenticates with PKCE alone (method none)")
    try:
        return OAuthClientInformationFull.model_validate({**document, "token_endpoint_auth_method": "none"})
    except ValidationError as exc:
        raise DocumentRefused(f"the document is not valid client metadata: {exc.errors()[0]['msg']}") from None
