"""The sign-in and consent page at /oauth/authorize/{id}: small server-rendered HTML forms, no JavaScript.

One URL, whose content follows the request's state: email → code → workspace (when the email has several) →
consent. "Create a new business" (?new=business) runs signup instead, through the runner's own signup tools, and
signs the new owner in. The page belongs to the browser that opened it first (an HttpOnly cookie whose hash the
request keeps), and every form carries a token derived from that cookie, so another site cannot post to it (CSRF).
"""

from __future__ import annotations

import hmac
import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mcp.server.auth.provider import AuthorizationParams, construct_redirect_uri
from mcp.shared.auth import OAuthClientInformationFull
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from favmcp.auth.oauth.documents import is_document_url
from favmcp.auth.oauth.models import OAuthAuthorization
from favmcp.auth.oauth.provider import capped
from favmcp.auth.oauth.signin import Account, SignIn
from favmcp.auth.oauth.urls import base_url, resource_url, same_resource
from favmcp.core.contact import normalise_email
from favmcp.core.errors import FavError
from favmcp.registry.profiles import PROFILES

if TYPE_CHECKING:
    from favmcp.registry.results import CallResult
    from favmcp.registry.runner import Runner

COOKIE = "favmcp_oauth"
AGAIN = "Start again from your app."
LEVEL_WORDS = {
    "read": "see",
    "write": "see and change",
    "send": "see, change and send",
    "decide": "see, change and approve",
    "admin": "see, change and manage",
}
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5}"
    "input[type=email],input[type=text]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}"
    "button{padding:.5rem 1rem;font-size:1rem;margin:.5rem .5rem 0 0}.note{color:#555}.error{color:#a00}"
)


# The signup form's fields, and the labels the page gives the tool's argument names in its messages.
SIGNUP_FIELDS = {"business": "Business name", "name": "Your name", "email": "Your email", "country": "Country"}
ARGUMENT_FIELDS = {"organisation_name": "business", "owner_name": "name", "email": "email", "country": "country"}
NEW_BUSINESS = "business"


@dataclass(frozen=True)
class Signup:
    """A signup under way on the page. Its state travels in the form, not in the request: what was typed, and once
    the code is sent, the sealed handle of the code request (SignIn.signup_token)."""

    fields: dict[str, str] = field(default_factory=dict)
    token: str = ""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)} · favmcp</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f"<body><h1>{_e(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=HEADERS)


def client_name(client: OAuthClientInformationFull) -> str:
    return client.client_name or client.client_id


class Pages:
    def __init__(self, signin: SignIn, runner: Runner) -> None:
        self.signin = signin
        self.settings = signin.settings
        self.runner = runner

    async def authorize(self, request: Request) -> Response:
        found = await self.signin.load(request.path_params["request_id"])
        if found is None:
            return _page("Link expired", f"<p>This sign-in link has expired or was used. {AGAIN}</p>", 404)
        row, client = found
        base = base_url(request, self.settings)
        if base is None:
            return _page("Unknown address", "<p>This server does not answer to this address.</p>", 421)
        browser = request.cookies.get(COOKIE)
        new_cookie = None
        if row.browser_hash is None:
            new_cookie = browser or self.signin.provider.random.token(30)
            if request.method != "GET" or not await self.signin.bind(row, new_cookie):
                return _elsewhere()
            browser = new_cookie
        elif not self.signin.holds(row, browser):
            return _elsewhere()
        assert browser is not None
        params = AuthorizationParams.model_validate(row.params)
        resource = resource_url(base)
        if params.resource is not None and not same_resource(params.resource, resource):
            answer = await self.signin.refuse(row, "invalid_target", f"This server is the resource {resource}.")
            return self._back(params, base, answer)
        message = ""
        signup = Signup() if request.query_params.get("new") == NEW_BUSINESS else None
        if request.method == "POST":
            form = await request.form()
            sent = str(form.get("form_token", "")).encode()
            expected = self.signin.form_token(row, browser).encode()
            if not hmac.compare_digest(sent, expected) or not _same_origin(request, base):
                return _page("Refused", "<p>This form was not sent from this page. Reload it and try again.</p>", 403)
            action = str(form.get("action", ""))
            if action in {"allow", "deny"}:
                profile = str(form.get("profile", "owner"))
                if profile not in PROFILES or PROFILES[profile].keys_only:
                    return _page("Refused", "<p>Pick one of the profiles listed. Reload the page.</p>", 400)
                answer = await self.signin.answer(row, action == "allow", resource, profile)
                return self._back(params, base, answer)
            if action in {"signup", "signup_code"}:
                step = await self._signup(row, browser, action, form, _address(request))
                if isinstance(step, Response):
                    return step
                message, signup = step
            else:
                message, signup = await self._act(row, action, form, request), None
            reloaded = await self.signin.load(row.id)
            if reloaded is None:
                return _page("Link expired", f"<p>This sign-in link has expired. {AGAIN}</p>", 404)
            row = reloaded[0]
        response = await self._render(row, client, browser, message, signup)
        if new_cookie is not None:
            response.set_cookie(
                COOKIE, new_cookie, max_age=3600, path="/oauth/", httponly=True, samesite="lax",
                secure=request.url.scheme == "https",
            )  # fmt: skip
        return response

    async def _act(self, row: OAuthAuthorization, action: str, form: FormData, request: Request) -> str:
        """One step of the form; returns a message to show (an error, or what happened)."""
        get = form.get
        if action == "email":
            try:
                email = normalise_email(str(get("email", "")))
            except ValueError as exc:
                return f"That email address is not valid: {exc}"
            try:
                await self.signin.send_code(row, email, _address(request))
            except FavError as exc:
                return exc.body.message
            return "If this address has an account, a 6-digit code is on its way. It is valid for 10 minutes."
        if action == "code":
            return await self.signin.check_code(row, str(get("code", ""))) or ""
        if action == "workspace":
            chosen = await self.signin.choose(row, str(get("user_id", "")))
            return "" if chosen else "Pick one of the workspaces listed."
        return "Unknown action."

    async def _signup(
        self, row: OAuthAuthorization, browser: str, action: str, form: FormData, address: str
    ) -> tuple[str, Signup | None] | Response:
        """A step of signup, by the same tools (and so the same codes, limits and workspace) as over MCP: the
        details (register_organisation_request emails the code), then the code (register_organisation_verify
        creates the workspace and its owner, who is then signed in here). Returns a message and what to show."""
        fields = {name: str(form.get(name, "")).strip() for name in SIGNUP_FIELDS}
        if action == "signup":
            arguments = {
                "email": fields["email"],
                "organisation_name": fields["business"],
                "owner_name": fields["name"],
            }
            if fields["country"]:
                arguments["country"] = fields["country"]
            result = await self.runner.call(
                "register_organisation_request", arguments, credential=None, client_address=address
            )
            if not result.ok:
                return _refusal(result), Signup(fields)
            return str(result.data["message"]), Signup(
                fields, self.signin.signup_token(row, browser, str(result.data["request_id"]))
            )
        token = str(form.get("signup", ""))
        signup_id = self.signin.signup_id(row, browser, token)
        if signup_id is None:
            return "This signup was not started on this page. Fill in your business again.", Signup(fields)
        code = str(form.get("code", "")).strip()
        result = await self.runner.call(
            "register_organisation_verify", {"request_id": signup_id, "code": code}, credential=None,
            client_address=address,
        )  # fmt: skip
        if not result.ok:
            return _refusal(result), Signup(fields, token)
        if not await self.signin.signed_up(row, str(result.data["user_id"]), str(result.data["key_id"])):
            return _page(
                "Business created",
                f"<p>Your business is ready, but this sign-in link has expired meanwhile. {AGAIN} Then sign in "
                "with your email.</p>",
                409,
            )
        return "", None

    async def _render(
        self,
        row: OAuthAuthorization,
        client: OAuthClientInformationFull,
        browser: str,
        message: str,
        signup: Signup | None,
    ) -> HTMLResponse:
        name = client_name(client)
        note = f'<p class="{"error" if _is_error(message) else "note"}">{_e(message)}</p>' if message else ""
        token = f'<input type="hidden" name="form_token" value="{_e(self.signin.form_token(row, browser))}">'
        if signup is not None:
            return _page(f"Create a business to connect {name}", note + _signup_form(signup, token))
        if row.signed_in_at is None:
            return _page(f"Sign in to connect {name}", note + self._email_form(row, token) + NEW_BUSINESS_LINK)
        accounts = await self.signin.accounts(row.email or "")
        if not accounts:
            return _page(
                "No account",
                "<p>No active account uses this email address. Ask your business's owner for an invite, or create "
                f"a new business.</p>{NEW_BUSINESS_LINK}",
            )
        account = next((a for a in accounts if a.user_id == row.user_id), None)
        if account is None:
            return _page("Choose a workspace", note + _workspace_form(accounts, token))
        return _page(f"Allow {name}?", note + _consent(client, account, row, token))

    def _email_form(self, row: OAuthAuthorization, token: str) -> str:
        email = _e(row.email or "")
        form = (
            f'<form method="post">{token}<input type="hidden" name="action" value="email">'
            f'<p><label>Your email<br><input type="email" name="email" value="{email}" required autofocus></label></p>'
            "<button>Email me a code</button></form>"
        )
        if row.code_hash is None:
            return form
        return (
            f'<form method="post">{token}<input type="hidden" name="action" value="code">'
            f'<p><label>The 6-digit code sent to {email}<br><input type="text" name="code" inputmode="numeric" '
            'pattern="[0-9]{6}" maxlength="6" required autofocus autocomplete="one-time-code"></label></p>'
            "<button>Sign in</button></form><p class=note>Wrong address or no email?</p>" + form
        )

    def _back(self, params: AuthorizationParams, base: str, answer: dict[str, str] | None) -> Response:
        """Send the browser back to the client with the answer (and the issuer, RFC 9207)."""
        if answer is None:
            return _page("Already answered", "<p>This request was answered already. Return to your app.</p>", 409)
        target = construct_redirect_uri(str(params.redirect_uri), **answer, state=params.state, iss=base)
        return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


NEW_BUSINESS_LINK = f'<p class=note>New here? <a href="?new={NEW_BUSINESS}">Create a new business</a></p>'


def _signup_form(signup: Signup, token: str) -> str:
    """The business's details; once its code is sent, the code form (the details ride along, for the page)."""
    values = {name: _e(signup.fields.get(name, "")) for name in SIGNUP_FIELDS}
    if signup.token:
        kept = "".join(f'<input type="hidden" name="{n}" value="{v}">' for n, v in values.items())
        return (
            f'<form method="post">{token}{kept}<input type="hidden" name="action" value="signup_code">'
            f'<input type="hidden" name="signup" value="{_e(signup.token)}">'
            f'<p><label>The 6-digit code sent to {values["email"]}<br><input type="text" name="code" '
            'inputmode="numeric" pattern="[0-9]{6}" maxlength="6" required autofocus autocomplete="one-time-code">'
            f"</label></p><button>Create {values['business']}</button></form>"
            f'<p class=note>Wrong address or no email? <a href="?new={NEW_BUSINESS}">Start again</a></p>'
        )
    inputs = (
        f'<p><label>Business name<br><input type="text" name="business" value="{values["business"]}" required '
        'maxlength="200" autofocus></label></p>'
        f'<p><label>Your name<br><input type="text" name="name" value="{values["name"]}" required maxlength="200">'
        "</label></p>"
        f'<p><label>Your email<br><input type="email" name="email" value="{values["email"]}" required></label></p>'
        f'<p><label>Country (optional, 2 letters such as NL)<br><input type="text" name="country" '
        f'value="{values["country"]}" maxlength="2"></label></p>'
    )
    return (
        f'<form method="post">{token}<input type="hidden" name="action" value="signup">{inputs}'
        "<button>Email me a code</button></form>"
        '<p class=note>Already have an account? <a href="?">Sign in</a></p>'
    )


def _refusal(result: CallResult) -> str:
    """A signup tool's refusal in the page's words: the form's labels instead of the tool's argument names."""
    error = result.error
    assert error is not None
    if not error.field_errors:
        return error.message
    problems = []
    for problem in error.field_errors:
        if problem.field == "code":
            problems.append("Code: the 6 digits from the email")
            continue
        label = SIGNUP_FIELDS.get(ARGUMENT_FIELDS.get(problem.field, ""), problem.field)
        problems.append(f"{label}: {problem.message.removeprefix('Value error, ')}")
    return "Please check: " + "; ".join(problems) + "."


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _workspace_form(accounts: list[Account], token: str) -> str:
    choices = "".join(
        f'<p><label><input type="radio" name="user_id" value="{_e(a.user_id)}" required> '
        f"{_e(a.workspace_name)} <span class=note>({_e(a.role)})</span></label></p>"
        for a in accounts
    )
    return (
        f'<p>Your email belongs to several workspaces. Which one may the app use?</p><form method="post">{token}'
        f'<input type="hidden" name="action" value="workspace">{choices}<button>Continue</button></form>'
    )


def _consent(client: OAuthClientInformationFull, account: Account, row: OAuthAuthorization, token: str) -> str:
    params = AuthorizationParams.model_validate(row.params)
    granted = capped(params.scopes, account.role)
    scopes = "".join(
        f"<li><code>{_e(s)}</code>: {_e(LEVEL_WORDS[s.partition(':')[2]])} {_e(s.partition(':')[0])}</li>"
        for s in granted
    )
    profiles = "".join(
        f'<p><label><input type="radio" name="profile" value="{_e(p.name)}"{" checked" * (p.name == "owner")}> '
        f"<strong>{_e(p.name)}</strong>: {_e(p.description)}</label></p>"
        for p in PROFILES.values()
        if not p.keys_only
    )
    if is_document_url(client.client_id):  # the one name a client cannot claim: where its document is published
        home = f" (published by {_e(urlsplit(client.client_id).hostname)})"
    else:
        home = f" ({_e(urlsplit(str(client.client_uri)).hostname)})" if client.client_uri else ""
    return (
        f"<p><strong>{_e(client_name(client))}</strong>{home} asks to act as <strong>{_e(account.user_name)}</strong> "
        f"({_e(account.role)}) in the workspace <strong>{_e(account.workspace_name)}</strong>, with these scopes:</p>"
        f"<ul>{scopes}</ul><p class=note>Then you go back to {_e(_where(str(params.redirect_uri)))}.</p>"
        f'<form method="post">{token}<fieldset><legend>Which tools may it use?</legend>{profiles}</fieldset>'
        '<button name="action" value="allow">Allow</button>'
        '<button name="action" value="deny">Deny</button></form>'
    )


def _where(uri: str) -> str:
    parts = urlsplit(uri)
    return parts.netloc or f"{parts.scheme}:"


def _elsewhere() -> HTMLResponse:
    return _page("Open in one browser", f"<p>This sign-in was started in another browser. {AGAIN}</p>", 403)


def _same_origin(request: Request, base: str) -> bool:
    """A browser names where a form was posted from; a post from another site is refused (the form token already
    is; this is the second lock)."""
    origin = request.headers.get("origin")
    return origin is None or origin.rstrip("/") == base.rstrip("/")


def _is_error(message: str) -> bool:
    return not message.startswith(("If this address", "If the address"))
