"""Secrets and personal data at rest: codes and invite tokens are sealed in the outbox, FAVMCP_HOME and the SQLite
files are private to their owner, and the server secret can be rotated (`favmcp secrets reseal`)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import bindparam, select, text
from sqlmodel import col

from favmcp.app import App
from favmcp.config import Settings
from favmcp.core.sealing import reseal, seal, unseal
from favmcp.db import migrate
from favmcp.db.engine import Database
from favmcp.effects.channels.email import SmtpChannel
from favmcp.effects.dispatcher import Dispatcher
from favmcp.effects.models import OutboxMessage
from favmcp.effects.outbox import open_body
from favmcp.registry.models import IdempotencyRecord
from tests.smtp_server import SmtpServer, running_smtp_server
from tests.support import FakeClock, Owner, call, emails_to, make_settings, signup, unique_email

CODE = re.compile(r"\b(\d{6})\b")
INVITE_TOKEN = re.compile(r"\bfav_inv_\w+")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which files are created 0644 and directories 0755 unless asked otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


# -- sealed in the outbox ----------------------------------------------------------------------------------


async def raw_outbox(app: App, recipients: list[str]) -> str:
    """Every column of these recipients' outbox rows as the database holds them: what a backup or a query shows."""
    async with app.db.transaction() as session:
        rows = await session.execute(
            text("SELECT * FROM outbox WHERE recipient IN :to").bindparams(bindparam("to", expanding=True)),
            {"to": recipients},
        )
        return repr([tuple(row) for row in rows])


async def test_codes_and_invite_tokens_are_never_readable_from_the_database(app: App, owner: Owner) -> None:
    staff = unique_email("staff")
    invited = await call(
        app, owner.key, "create_team_member_invite", {"email": staff, "role": "staff", "name": "Sofia"}
    )
    assert invited.ok, invited.data
    [invite_mail] = await emails_to(app, staff)
    token = INVITE_TOKEN.search(open_body(app.settings, invite_mail))
    assert token, "the invite link is in the email"
    requested = await call(app, None, "accept_team_invite_request", {"invite_token": token.group(0)})
    assert requested.ok, requested.data

    owner_mails, staff_mails = await emails_to(app, owner.email), await emails_to(app, staff)
    secrets = [token.group(0)]
    for message in [*owner_mails, staff_mails[-1]]:
        code = CODE.search(open_body(app.settings, message))
        assert code, "the code is in the email"
        secrets.append(code.group(1))
    assert len(secrets) == 3

    stored = await raw_outbox(app, [owner.email, staff])
    assert owner.email in stored and staff in stored, "the query sees the rows"
    assert [secret for secret in secrets if secret in stored] == []
    with pytest.raises(InvalidTag):
        open_body(b"some-other-secret", invite_mail)


async def test_upgrading_clears_the_bodies_queued_in_plain_text(own_url: str) -> None:
    db = Database(own_url)
    try:
        await migrate.upgrade(db, "6e2a0c007696")  # the schema before bodies were sealed
        async with db.transaction() as session:
            for message_id, status in (("out_sent", "sent"), ("out_waiting", "pending")):
                await session.execute(
                    text(
                        "INSERT INTO outbox (id, channel, recipient, subject, body, payload, status, attempts,"
                        " next_attempt_at, created_at) VALUES (:id, 'email', 'ann@example.com', 'Your code',"
                        " 'Your code is 123456.', '{}', :status, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"id": message_id, "status": status},
                )
        await migrate.upgrade(db)
        async with db.transaction() as session:
            rows = await session.execute(text("SELECT id, kind, status, body, last_error FROM outbox ORDER BY id"))
            found = [tuple(row) for row in rows]
    finally:
        await db.dispose()
    assert found == [
        ("out_sent", "system", "sent", "", None),
        (
            "out_waiting",
            "system",
            "failed",
            "",
            "queued before message bodies were sealed: ask for a new code or invite",
        ),
    ]


def test_sealing_opens_with_any_of_several_keys_and_reseals_with_the_newest() -> None:
    old, new = b"old-secret", b"new-secret"
    token = seal(old, "outbox", "Your code is 123456.")
    assert unseal(old, "outbox", token) == unseal((new, old), "outbox", token) == "Your code is 123456."
    with pytest.raises(InvalidTag):
        unseal(new, "outbox", token)
    with pytest.raises(InvalidTag):
        unseal(old, "idempotency", token)  # sealed for one purpose, opened for that purpose only
    fresh = reseal((new, old), "outbox", token)
    assert fresh is not None and unseal(new, "outbox", fresh) == "Your code is 123456."
    assert reseal((new, old), "outbox", fresh) is None, "already sealed with the newest"


def test_secret_keys_newest_first(tmp_path: Path) -> None:
    def keys(**env: str) -> tuple[bytes, ...]:
        settings = Settings.from_env({"FAVMCP_HOME": str(tmp_path), **env})
        assert settings.secret_key == settings.secret_keys[0], "what is sealed and signed now"
        return settings.secret_keys

    assert keys(FAVMCP_SECRET_KEY="one") == (b"one",)
    assert keys(FAVMCP_SECRET_KEYS="two, one") == (b"two", b"one")
    assert keys(FAVMCP_SECRET_KEYS="two", FAVMCP_SECRET_KEY="one") == (b"two", b"one"), "the single key is the oldest"
    assert keys(FAVMCP_SECRET_KEYS="two,one", FAVMCP_SECRET_KEY="one") == (b"two", b"one")
    generated = keys()
    assert len(generated) == 1 and len(generated[0]) >= 32 and keys() == generated, "generated once, kept in home"


# -- private files -----------------------------------------------------------------------------------------


async def test_home_and_database_files_are_private_to_their_owner(
    database_url: str, tmp_path: Path, clock: FakeClock, umask_022: None
) -> None:
    home = tmp_path / "fresh" / "home"
    env = {"FAVMCP_HOME": str(home)}  # no secret key: one is generated into home
    if not database_url.startswith("sqlite"):
        env["FAVMCP_DATABASE_URL"] = database_url  # else SQLite in home, as with zero configuration
    app = await App.open(Settings.from_env(env), clock=clock)
    try:
        await signup(app)  # writes, so that SQLite has its -wal and -shm files
        assert mode(home) == 0o700
        files = {path.name: mode(path) for path in home.iterdir()}
        if database_url.startswith("sqlite"):
            assert files == {"secret_key": 0o600, "favmcp.db": 0o600, "favmcp.db-wal": 0o600, "favmcp.db-shm": 0o600}
        else:
            assert files == {"secret_key": 0o600}
    finally:
        await app.close()


async def test_an_existing_home_and_database_are_tightened(tmp_path: Path, clock: FakeClock, umask_022: None) -> None:
    home = tmp_path / "older"
    home.mkdir(mode=0o755)
    db = sqlite3.connect(home / "favmcp.db")  # as an older version (or SQLite itself) made it: 0644
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    assert {mode(home), mode(home / "favmcp.db"), mode(home / "favmcp.db-wal")} == {0o755, 0o644}

    app = await App.open(make_settings(home, f"sqlite+aiosqlite:///{home / 'favmcp.db'}"), clock=clock)
    try:
        await signup(app)
        assert {path.name: mode(path) for path in [home, *home.iterdir()]} == {
            "older": 0o700, "favmcp.db": 0o600, "favmcp.db-wal": 0o600, "favmcp.db-shm": 0o600,
        }  # fmt: skip
    finally:
        await app.close()
        db.close()


# -- rotating the secret -----------------------------------------------------------------------------------


def favmcp(home: Path, url: str, keys: str, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAVMCP_")}
    env |= {"FAVMCP_HOME": str(home), "FAVMCP_DATABASE_URL": url, "FAVMCP_SECRET_KEYS": keys}
    done = subprocess.run(
        [sys.executable, "-m", "favmcp", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == code, done.stdout + done.stderr
    return done


def reseal_cli(home: Path, url: str, keys: str, *, code: int = 0) -> subprocess.CompletedProcess[str]:
    return favmcp(home, url, keys, "secrets", "reseal", "--batch", "2", code=code)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp_server() as server:
        yield server


async def test_rotating_the_secret_reseals_every_stored_secret(
    own_url: str, tmp_path: Path, clock: FakeClock, smtp: SmtpServer
) -> None:
    before = await App.open(make_settings(tmp_path, own_url), clock=clock, upgrade=True)  # FAVMCP_SECRET_KEY
    try:
        owner = await signup(before)
        made = await call(before, owner.key, "create_api_key", {"name": "ops", "idempotency_key": "ops-key"})
        assert made.ok, made.data
        revoke = {"key_id": made.data["key"]["id"]}
        token = (await call(before, owner.key, "revoke_api_key", revoke)).data["error"]["details"]["confirmation_token"]
        stripe = {
            "payment_provider": {"secret_key": "sk_test_" + "rotation0000KEY1", "webhook_secret": "whsec_rotation1"}
        }
        assert (await call(before, owner.key, "update_workspace", stripe)).ok
        twilio = {"account_sid": "AC" + "0" * 32, "auth_token": "rotation-token", "from_number": "+15005550006"}
        assert (await call(before, owner.key, "configure_channel", {"channel": "sms", **twilio})).ok
        before.settings.allow_private_targets = True
        hook = {"url": "http://127.0.0.1:9/hook", "events": ["member.erased"]}
        assert (await call(before, owner.key, "create_webhook_endpoint", hook)).ok
        sealed_before = await stored_secrets(before)
    finally:
        await before.close()
    assert len(sealed_before) == 2, "the signup code's email and the new key's answer"

    both = {"FAVMCP_HOME": str(tmp_path), "FAVMCP_DATABASE_URL": own_url, "FAVMCP_SECRET_KEYS": "rotated,test-secret"}
    rotating = Settings.from_env(both)
    assert rotating.secret_keys == (b"rotated", b"test-secret") and rotating.secret_key == b"rotated"
    during = await App.open(rotating, clock=clock)
    try:
        email = unique_email()
        assert (await call(during, None, "register_organisation_request", new_signup(email))).ok
        # What was sealed or signed with the old secret still opens while both are configured.
        early = await call(during, owner.key, "create_api_key", {"name": "ops", "idempotency_key": "ops-key"})
        assert early.ok and early.data == made.data, "a replay before the reseal"
        spent = await call(during, owner.key, "revoke_api_key", {**revoke, "confirmation_token": token})
        assert spent.ok and spent.data["status"] == "revoked", "a confirmation token issued before the rotation"
        # A worker on the new keys delivers mail sealed before the rotation and after it.
        worker = Dispatcher(during.db, SmtpChannel("127.0.0.1", smtp.port, "favmcp <no-reply@favmcp.test>"),
                            rotating.secret_keys, clock=clock)  # fmt: skip
        assert await worker.run_once() == 2
        assert [CODE.search(m.body) is not None for m in smtp.messages] == [True, True]
    finally:
        await during.close()

    first = reseal_cli(tmp_path, own_url, "rotated,test-secret")
    assert first.stdout.splitlines() == [
        "outbox_bodies: 1 resealed, 1 current, 0 unreadable",
        "idempotency_records: 1 resealed, 0 current, 0 unreadable",
        "payment_provider_keys: 1 resealed, 0 current, 0 unreadable",
        "messaging_channel_secrets: 1 resealed, 0 current, 0 unreadable",
        "webhook_secrets: 1 resealed, 0 current, 0 unreadable",
    ]
    again = reseal_cli(tmp_path, own_url, "rotated,test-secret")
    assert again.stdout.splitlines() == [
        "outbox_bodies: 0 resealed, 2 current, 0 unreadable",
        "idempotency_records: 0 resealed, 1 current, 0 unreadable",
        "payment_provider_keys: 0 resealed, 1 current, 0 unreadable",
        "messaging_channel_secrets: 0 resealed, 1 current, 0 unreadable",
        "webhook_secrets: 0 resealed, 1 current, 0 unreadable",
    ]

    newest_only = make_settings(tmp_path, own_url, secret_key=b"rotated", secret_keys=(b"rotated",))
    after = await App.open(newest_only, clock=clock)
    try:
        sealed_after = await stored_secrets(after)
        assert set(sealed_after) == set(sealed_before) | {"outbox:" + email}
        for where, token in sealed_after.items():
            purpose = "outbox" if where.startswith("outbox:") else "idempotency"
            assert unseal(b"rotated", purpose, token) is not None
            with pytest.raises(InvalidTag):
                unseal(b"test-secret", purpose, token)
        replay = await call(after, owner.key, "create_api_key", {"name": "ops", "idempotency_key": "ops-key"})
        assert replay.ok and replay.data == made.data, "the retry gets the identical answer, under the new secret"
        shown = await call(after, owner.key, "get_workspace")
        assert shown.data["payment_provider"]["key_last4"] == "KEY1", "the Stripe keys open under the new secret"
    finally:
        await after.close()

    readable = json.loads(favmcp(tmp_path, own_url, "rotated", "outbox", "list", "--json").stdout)["messages"]
    assert [CODE.search(m["body"]) is not None for m in readable] == [True, True], "a local operator reads them"

    # A secret dropped before its values were resealed: they are lost, and said to be.
    lost = reseal_cli(tmp_path, own_url, "yet-another", code=1)
    assert "outbox_bodies: 0 resealed, 0 current, 2 unreadable" in lost.stdout
    assert lost.stderr.strip().splitlines() == [
        "favmcp: 6 sealed values open with none of the keys; add the key that sealed them to the list"
    ]
    unreadable = favmcp(tmp_path, own_url, "yet-another", "outbox", "list").stdout
    assert unreadable.count("(sealed with a secret key no longer configured)") == 2, unreadable


def new_signup(email: str) -> dict[str, str]:
    return {"email": email, "organisation_name": "Studio", "owner_name": "Ann Owner"}


async def stored_secrets(app: App) -> dict[str, str]:
    """Every sealed value in the database: outbox bodies by recipient, sealed answers by idempotency key."""
    async with app.db.transaction() as session:
        found = {
            f"outbox:{m.recipient}": m.body
            for m in (await session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id)))).scalars()
        }
        for record in (await session.execute(select(IdempotencyRecord))).scalars():
            if set(record.response) == {"sealed"}:
                found[f"idempotency:{record.tool}:{record.key}"] = record.response["sealed"]
    return found
