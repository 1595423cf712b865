"""Signup of a new business from the OAuth sign-in page, end to end: a real `favmcp serve --http`, the browser of
tests/oauth_kit.py, the code read from a loopback SMTP server; SQLite and Postgres. The page runs the signup tools
through the runner, so what it creates is what register_organisation_verify creates."""

from __future__ import annotations

import re

import httpx
from sqlmodel import col, select

from favmcp.app import App
from favmcp.auth.models import User
from favmcp.db.tenancy import Workspace
from favmcp.domains.onboarding.tools import SENT
from tests import oauth_kit
from tests.oauth_kit import TIMEOUT, Browser, RawClient, mcp_session, pkce, redirected, whoami_with
from tests.servers import HttpServer
from tests.support import Owner, emails_to, unique_email

mailbox, server, browser = oauth_kit.mailbox, oauth_kit.server, oauth_kit.browser

NOT_VALID = "This code is invalid, used, expired or out of tries."


async def workspaces_of(app: App, email: str) -> list[Workspace]:
    async with app.db.read_sessions() as session:
        stmt = select(Workspace).where(col(Workspace.contact_email) == email).order_by(col(Workspace.created_at))
        return list((await session.execute(stmt)).scalars())


async def connect(server: HttpServer, http: httpx.AsyncClient) -> tuple[RawClient, str, str]:
    """A registered client and its authorization URL, with the PKCE verifier to exchange the code."""
    client = RawClient(server.base, http)
    await client.register()
    verifier, challenge = pkce()
    return client, client.authorize_url(challenge), verifier


async def test_a_new_person_creates_a_business_on_the_sign_in_page_and_connects_as_its_owner(
    server: HttpServer, browser: Browser, app: App
) -> None:
    email = unique_email("new")
    business = "Nia's <b>Yoga</b> & Tea"
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        client, url, verifier = await connect(server, http)
        consent = await browser.sign_up(url, email, business, name="Nia Owner", country="nl")
        assert "<b>Yoga</b>" not in consent.text and "Nia&#x27;s &lt;b&gt;Yoga&lt;/b&gt; &amp; Tea" in consent.text
        assert "<strong>Raw client</strong>" in consent.text and "<strong>Nia Owner</strong> (owner)" in consent.text
        [mail] = browser.mailbox.to(email)
        assert mail.message["Subject"] == "Your favmcp signup code"

        tokens = await client.exchange(redirected(await browser.post(consent, action="allow"))["code"], verifier)
        assert tokens.status_code == 200, tokens.text
        access = tokens.json()["access_token"]
    [workspace] = await workspaces_of(app, email)
    assert (workspace.name, workspace.country, workspace.timezone) == (business, "NL", "UTC")
    me = await whoami_with(server.url, access)
    assert (me["workspace_id"], me["workspace_name"], me["role"]) == (workspace.id, business, "owner")
    assert me["key_id"].startswith("ogr_") and "members:admin" in me["scopes"]

    async with mcp_session(server.url, access) as session:
        added = await session.call_tool("create_member", {"name": "First Customer", "email": unique_email("c")})
        keys = await session.call_tool("list_api_keys", {"include_revoked": True})
    assert not added.is_error, added
    assert keys.structured_content is not None, keys
    # The owner key register_organisation_verify mints was never shown to anyone: the grant is the credential.
    [key] = keys.structured_content["items"]
    assert (key["user_id"], key["status"]) == (me["user_id"], "revoked"), key


async def test_an_owner_of_a_workspace_can_create_another_business_the_same_way(
    server: HttpServer, browser: Browser, app: App, owner: Owner
) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        client, url, verifier = await connect(server, http)
        consent = await browser.sign_up(url, owner.email, "Second Studio")
        assert "workspace <strong>Second Studio</strong>" in consent.text, consent.text
        answer = redirected(await browser.post(consent, action="allow"))
        access = (await client.exchange(answer["code"], verifier)).json()["access_token"]
    first, second = await workspaces_of(app, owner.email)
    assert first.id == owner.workspace_id
    me = await whoami_with(server.url, access)
    assert (me["workspace_id"], me["role"]) == (second.id, "owner")
    async with app.db.read_sessions() as session:
        owners = (await session.execute(select(User).where(col(User.email) == owner.email))).scalars().all()
    assert {u.workspace_id for u in owners} == {first.id, second.id}


async def test_refusals_say_why_on_the_page_and_create_nothing(server: HttpServer, browser: Browser, app: App) -> None:
    email = unique_email("careful")
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        _, url, _ = await connect(server, http)
    page = await browser.http.get(url, follow_redirects=True)
    page = await browser.http.get(page.url.join("?new=business"))
    assert page.status_code == 200 and 'name="business"' in page.text, page.text

    forged = await browser.http.post(
        str(page.url), data={"form_token": "forged", "action": "signup", "business": "B", "name": "N", "email": email}
    )
    assert forged.status_code == 403, forged.text
    invalid = await browser.post(page, action="signup", business=" ", name="Nia <i>", email="nia@", country="")
    assert invalid.status_code == 200 and "Please check: " in invalid.text, invalid.text
    assert "Business name: " in invalid.text and "Your email: " in invalid.text and "Your name: " not in invalid.text
    assert 'value="Nia &lt;i&gt;"' in invalid.text, "what was typed is kept, escaped"
    assert browser.mailbox.to(email) == [] and browser.mailbox.to("nia@") == []

    # Five wrong tries spend the code; then even the right one is refused. A malformed code costs no try.
    sent = await browser.post(page, action="signup", business="Careful Studio", name="Nia", email=email)
    assert SENT in sent.text, sent.text
    code = await browser.code(email, 0)
    wrong = "000000" if code != "000000" else "111111"
    malformed = await browser.submit(sent, code="12ab")
    assert "Code: the 6 digits from the email" in malformed.text, malformed.text
    for left in (4, 3, 2, 1):
        assert f"The code does not match; {left} tries left." in (await browser.submit(sent, code=wrong)).text
    assert "The code does not match." in (await browser.submit(sent, code=wrong)).text
    assert NOT_VALID in (await browser.submit(sent, code=code)).text
    # A signup handle this page did not issue is refused before any code is tried.
    handle = re.search(r'name="signup" value="([^"]+)"', sent.text)
    assert handle
    forged_handle = "otc_someoneelse." + handle.group(1).partition(".")[2]
    refused = await browser.submit(sent, code=code, signup=forged_handle)
    assert "not started on this page" in refused.text, refused.text
    assert await workspaces_of(app, email) == []

    # The right code works once: the same form again is refused and makes no second business.
    again = await browser.post(page, action="signup", business="Careful Studio", name="Nia", email=email)
    consent = await browser.submit(again, code=await browser.code(email, 1))
    assert "Allow" in consent.text, consent.text
    assert NOT_VALID in (await browser.submit(again, code=await browser.code(email, 1))).text
    assert len(await workspaces_of(app, email)) == 1

    # The tools' own limits: three signup requests an hour per email (and per address); the fourth sends nothing.
    await browser.post(page, action="signup", business="Third", name="Nia", email=email)
    limited = await browser.post(page, action="signup", business="Fourth", name="Nia", email=email)
    assert "Too many requests" in limited.text, limited.text
    assert len(await emails_to(app, email)) == 3
