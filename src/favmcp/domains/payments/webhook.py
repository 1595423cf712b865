"""POST /hooks/stripe/{workspace_id}: Stripe's events for one workspace.

The signature is checked with the workspace's webhook secret before anything is written; a request that fails it
(or names a workspace without Stripe) answers 400 and changes nothing. A verified event is applied once, in one
unit of work as the system; a duplicate answers 200 like the first, so Stripe stops sending it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from favmcp.core.errors import ErrorCode, FavError
from favmcp.domains.payments import provider, stripe_sync
from favmcp.effects.channels import stripe as stripe_api
from favmcp.registry.context import ToolContext

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from favmcp.registry.runner import Runner

log = structlog.get_logger("favmcp.payments")

PATH = "/hooks/stripe/{workspace_id}"
MAX_PAYLOAD = 512 * 1024  # Stripe's events are a few kilobytes
NAME = "hook:stripe"


class Refused(Exception):
    """The request is not a verified Stripe event for this workspace."""


async def _webhook_secret(ctx: ToolContext) -> str:
    config = provider.stripe_config(ctx.settings, await ctx.db.workspace())
    if config is None or not config.webhook_secret:
        raise Refused("no Stripe webhook secret for this workspace")
    return config.webhook_secret


async def stripe_webhook(request: Request, runner: Runner) -> Response:
    from starlette.responses import JSONResponse  # served over HTTP only: a stdio process never loads Starlette

    workspace_id = str(request.path_params.get("workspace_id", ""))
    payload = await request.body()
    signature = request.headers.get("stripe-signature")
    if len(payload) > MAX_PAYLOAD or not signature:
        return _refused("missing signature or payload too large")
    # Checked before any write: a forged or replayed request never takes the write lock.
    try:
        secret = await runner.read_system(workspace_id, NAME, _webhook_secret)
        event = stripe_sync.verify(payload, signature, secret)
    except Refused as exc:
        return _refused(str(exc))
    except (stripe_api.signature_error(), ValueError) as exc:
        return _refused(f"signature: {exc}")
    except FavError as exc:
        if exc.code == ErrorCode.not_found:  # no such workspace: the same answer as a bad signature
            return _refused("unknown workspace")
        raise

    async def apply(ctx: ToolContext) -> bool:
        return await stripe_sync.process_event(ctx, event)

    fresh = await runner.run_system(workspace_id, NAME, apply)
    return JSONResponse({"received": True, "applied": fresh})


async def paid_page(request: Request, runner: Runner) -> Response:
    return _page("Thank you: your payment was received. You can close this page.")


async def cancelled_page(request: Request, runner: Runner) -> Response:
    return _page("The payment was cancelled; nothing was charged. You can close this page.")


def _page(text: str) -> Response:
    from starlette.responses import HTMLResponse

    return HTMLResponse(f"<!doctype html><html><body><p>{text}</p></body></html>")


def _refused(why: str) -> Response:
    from starlette.responses import JSONResponse

    log.warning("stripe_webhook_refused", reason=why)
    body: dict[str, Any] = {"error": "invalid signature"}
    return JSONResponse(body, status_code=400)
