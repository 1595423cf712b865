"""Invoices and credit notes: the rules of domain-rules.md "Invoices and credit notes", on SQLite and Postgres.

Tools are called through the runner; the payments contract (apply_payment, apply_refund, receivable) is called as
the payments domain calls it, inside a unit of work of the runner (run_system)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import col

from favmcp.app import App
from favmcp.core.errors import FavError
from favmcp.core.money import Money
from favmcp.db.tenancy import Workspace
from favmcp.domains.invoices import documents, service
from favmcp.domains.invoices.models import Invoice
from favmcp.effects.channels.email import SmtpChannel
from favmcp.effects.dispatcher import Dispatcher
from favmcp.effects.models import OutboxMessage
from favmcp.effects.outbox import open_body
from favmcp.registry.context import ToolContext
from tests.smtp_server import running_smtp_server
from tests.staff_kit import insert_booking, insert_service
from tests.support import FakeClock, Owner, call, confirmed, error_code, gather, join, signup, unique_email

T = TypeVar("T")


async def ok(app: App, owner: Owner, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await call(app, owner.key, tool, args or {})
    assert result.ok, (tool, result.data)
    return result.data


async def refused(app: App, owner: Owner, tool: str, args: dict[str, Any], code: str) -> dict[str, Any]:
    result = await call(app, owner.key, tool, args)
    assert error_code(result) == code, (tool, result.data)
    return dict(result.data["error"])


async def new_member(app: App, owner: Owner, **fields: Any) -> str:
    return str(
        (await ok(app, owner, "create_member", {"name": "Ada Client", "email": unique_email("ada"), **fields}))["id"]
    )


def line(
    description: str = "Massage", unit_amount: int = 5000, quantity: int = 1, tax_rate: str = "21"
) -> dict[str, Any]:
    return {"description": description, "unit_amount": unit_amount, "quantity": quantity, "tax_rate": tax_rate}


async def draft(app: App, owner: Owner, member_id: str | None = None, **fields: Any) -> dict[str, Any]:
    args = {"member_id": member_id or await new_member(app, owner), "lines": [line()], **fields}
    return await ok(app, owner, "create_invoice", args)


async def open_invoice(app: App, owner: Owner, **fields: Any) -> dict[str, Any]:
    made = await draft(app, owner, **fields)
    return await ok(app, owner, "finalize_invoice", {"invoice_id": made["id"]})


async def as_payments(app: App, owner: Owner, work: Callable[[ToolContext], Awaitable[T]]) -> T:
    """Run `work` as the payments domain does: inside one unit of work of the runner."""
    return await app.runner.run_system(owner.workspace_id, "test_payments", work)


async def pay(app: App, owner: Owner, invoice_id: str, amount: int, currency: str = "EUR") -> None:
    await as_payments(app, owner, lambda ctx: service.apply_payment(ctx, invoice_id, Money(amount, currency)))


async def refusal(app: App, owner: Owner, work: Callable[[ToolContext], Awaitable[Any]]) -> str:
    """The error code of contract work that must be refused (run_system hands the FavError back)."""
    with pytest.raises(FavError) as caught:
        await as_payments(app, owner, work)
    return caught.value.code.value


async def get(app: App, owner: Owner, invoice_id: str) -> dict[str, Any]:
    return await ok(app, owner, "get_invoice", {"invoice_id": invoice_id})


async def outbox_to(app: App, owner: Owner, recipient: str) -> list[OutboxMessage]:
    async with app.db.transaction() as session:
        stmt = select(OutboxMessage).where(
            col(OutboxMessage.recipient) == recipient, col(OutboxMessage.workspace_id) == owner.workspace_id
        )
        return list((await session.execute(stmt.order_by(col(OutboxMessage.id)))).scalars())


# -- totals ----------------------------------------------------------------------------------------------------


async def test_totals_are_sums_of_lines_rounded_once_each(app: App, owner: Owner) -> None:
    lines = [
        line("Class pack", 333, 3, "21"),
        line("Towel", 1005, 1, "9"),
        line("Tea", 250, 2, "9"),
        line("Gift", 999, 1, "0"),
    ]
    made = await draft(app, owner, lines=lines)
    got = [(li["net"], li["tax"], li["gross"]) for li in made["lines"]]
    # 999 x 21 % = 209.79 -> 210; 1005 x 9 % = 90.45 -> 90; 500 x 9 % = 45; 0 % -> 0
    assert got == [(999, 210, 1209), (1005, 90, 1095), (500, 45, 545), (999, 0, 999)]
    assert (made["subtotal"], made["tax"], made["total"]) == (3503, 345, 3848)
    assert made["currency"] == "EUR" and made["status"] == "draft"
    shown = await get(app, owner, made["id"])
    assert shown["number"] is None and shown["amount_remaining"] == 3848
    by_rate = {g["rate"]: (g["net"], g["tax"]) for g in shown["tax_by_rate"]}
    assert by_rate == {"0": (999, 0), "9": (1505, 135), "21": (999, 210)}
    assert [g["rate"] for g in shown["tax_by_rate"]] == ["0", "9", "21"]
    # Rounded per line, not on the sum: two lines of 0.5 tax each round up to 1 each.
    halves = await draft(app, owner, lines=[line("A", 50, 1, "1"), line("B", 50, 1, "1")])
    assert [li["tax"] for li in halves["lines"]] == [1, 1] and halves["tax"] == 2


async def test_prices_that_include_tax_have_the_tax_taken_out(app: App, owner: Owner) -> None:
    await ok(app, owner, "update_workspace", {"prices_include_tax": True})
    made = await draft(
        app, owner, lines=[line("Cut", 1210, 1, "21"), line("Dye", 1000, 1, "21"), line("Tip", 700, 1, "0")]
    )
    # 1210 incl. 21 %: tax 210; 1000 incl. 21 %: 173.55 -> 174, net 826; 0 %: all net.
    assert [(li["net"], li["tax"], li["gross"]) for li in made["lines"]] == [
        (1000, 210, 1210),
        (826, 174, 1000),
        (700, 0, 700),
    ]
    assert (made["subtotal"], made["tax"], made["total"]) == (2526, 384, 2910)


async def test_currency_defaults_to_the_workspace_and_can_be_chosen(app: App, owner: Owner) -> None:
    assert (await draft(app, owner))["currency"] == "EUR"
    yen = await draft(app, owner, currency="jpy", lines=[line("Session", 1200, 1, "10")])
    assert yen["currency"] == "JPY" and yen["total"] == 1320 and yen["lines"][0]["currency"] == "JPY"
    assert (
        error_code(await call(app, owner.key, "create_invoice", {"member_id": "mem_x", "lines": []}))
        == "validation_failed"
    )
    floats = {"member_id": "mem_x", "lines": [{"description": "x", "unit_amount": 12.5}]}
    assert error_code(await call(app, owner.key, "create_invoice", floats)) == "validation_failed"
    huge = [line("Huge", 2**53 - 1, 2, "0")]
    assert (
        error_code(await call(app, owner.key, "create_invoice", {"member_id": yen["member_id"], "lines": huge}))
        == "validation_failed"
    )


async def test_a_drafts_currency_can_change_and_credit_notes_keep_the_invoices(app: App, owner: Owner) -> None:
    made = await draft(app, owner, lines=[line("Session", 1250, 1, "0")])
    changed = await ok(app, owner, "update_invoice_draft", {"invoice_id": made["id"], "currency": "JPY"})
    assert changed["currency"] == "JPY" and changed["lines"][0]["currency"] == "JPY" and changed["total"] == 1250
    nulled = {"invoice_id": made["id"], "currency": None}
    assert error_code(await call(app, owner.key, "update_invoice_draft", nulled)) == "validation_failed"
    await ok(app, owner, "finalize_invoice", {"invoice_id": made["id"]})
    wrong = {"invoice_id": made["id"], "amount": 100, "currency": "EUR", "reason": "x"}
    error = await refused(app, owner, "create_credit_note", wrong, "validation_failed")
    assert error["details"] == {"expected_currency": "JPY", "currency": "EUR"}
    right = await ok(app, owner, "create_credit_note", {**wrong, "currency": "JPY"})
    assert (right["amount"], right["currency"]) == (100, "JPY")


async def test_only_active_members_are_invoiced(app: App, owner: Owner) -> None:
    assert await refused(app, owner, "create_invoice", {"member_id": "mem_nobody", "lines": [line()]}, "not_found")
    member_id = await new_member(app, owner)
    await confirmed(app, owner.key, "delete_member", {"member_id": member_id})
    error = await refused(app, owner, "create_invoice", {"member_id": member_id, "lines": [line()]}, "invalid_state")
    assert error["details"]["current"] == "erased"


# -- drafts and the state machine ------------------------------------------------------------------------------


async def test_lines_change_only_in_draft(app: App, owner: Owner, clock: FakeClock) -> None:
    made = await draft(app, owner, memo="Thanks!")
    due = (clock.now() + timedelta(days=10)).date().isoformat()
    changed = await ok(
        app,
        owner,
        "update_invoice_draft",
        {"invoice_id": made["id"], "lines": [line("Yoga", 1000, 2, "9")], "due_date": due},
    )
    assert [li["description"] for li in changed["lines"]] == ["Yoga"] and changed["total"] == 2180
    assert changed["memo"] == "Thanks!" and changed["due_date"] == due, "fields left out stay"
    cleared = await ok(app, owner, "update_invoice_draft", {"invoice_id": made["id"], "memo": None})
    assert cleared["memo"] is None and cleared["total"] == 2180
    no_lines = {"invoice_id": made["id"], "lines": None}
    assert error_code(await call(app, owner.key, "update_invoice_draft", no_lines)) == "validation_failed"
    past = {"invoice_id": made["id"], "due_date": (clock.now() - timedelta(days=3)).date().isoformat()}
    assert error_code(await call(app, owner.key, "update_invoice_draft", past)) == "validation_failed"

    opened = await ok(app, owner, "finalize_invoice", {"invoice_id": made["id"]})
    assert opened["status"] == "open" and opened["number"].startswith("INV-")
    error = await refused(
        app, owner, "update_invoice_draft", {"invoice_id": made["id"], "lines": [line("Sneaky", 1)]}, "invalid_state"
    )
    assert error["details"]["current"] == "open"
    assert error["details"]["allowed"] == ["paid", "void", "uncollectible"]
    assert "create_credit_note" in error["hint"]
    assert (await get(app, owner, made["id"]))["lines"][0]["description"] == "Yoga", "lines unchanged"


async def test_finalize_sets_number_due_date_and_is_idempotent(app: App, owner: Owner, clock: FakeClock) -> None:
    made = await draft(app, owner)
    first = await ok(app, owner, "finalize_invoice", {"invoice_id": made["id"]})
    assert first["status"] == "open" and (await get(app, owner, made["id"]))["finalized_at"] is not None
    local_day = clock.now().astimezone(ZoneInfo("Europe/Amsterdam")).date()  # the workspace's timezone at signup
    assert first["due_date"] == (local_day + timedelta(days=30)).isoformat()
    again = await ok(app, owner, "finalize_invoice", {"invoice_id": made["id"]})
    assert again["number"] == first["number"] and again["status"] == "open"
    zero = await open_invoice(app, owner, lines=[line("Free trial", 0, 1, "21")])
    assert zero["status"] == "paid" and zero["total"] == 0, "nothing owed: paid at once"
    assert (await get(app, owner, zero["id"]))["paid_at"] is not None


async def test_state_machine_refusals_name_current_and_allowed_states(app: App, owner: Owner) -> None:
    made = await draft(app, owner)
    error = await refused(app, owner, "void_invoice", {"invoice_id": made["id"]}, "invalid_state")
    assert error["details"]["current"] == "draft" and error["details"]["allowed"] == ["open"]
    error = await refused(app, owner, "mark_invoice_uncollectible", {"invoice_id": made["id"]}, "invalid_state")
    assert error["details"]["current"] == "draft" and error["details"]["tools"] == {"open": "finalize_invoice"}
    error = await refused(
        app, owner, "create_credit_note", {"invoice_id": made["id"], "amount": 1, "reason": "x"}, "invalid_state"
    )
    assert error["details"]["current"] == "draft"

    paid = await open_invoice(app, owner)
    await pay(app, owner, paid["id"], paid["total"])
    assert (await get(app, owner, paid["id"]))["status"] == "paid"
    error = await refused(app, owner, "void_invoice", {"invoice_id": paid["id"]}, "invalid_state")
    assert error["details"]["current"] == "paid" and error["details"]["allowed"] == []
    assert "create_credit_note" in error["hint"]
    error = await refused(app, owner, "mark_invoice_uncollectible", {"invoice_id": paid["id"]}, "invalid_state")
    assert error["details"]["current"] == "paid" and error["details"]["allowed"] == []

    part = await open_invoice(app, owner)
    await pay(app, owner, part["id"], 100)
    error = await refused(app, owner, "void_invoice", {"invoice_id": part["id"]}, "invalid_state")
    assert error["details"]["current"] == "open" and "create_credit_note" in error["hint"]


async def test_void_keeps_the_invoice_on_record_and_never_frees_its_number(app: App, owner: Owner) -> None:
    first = await open_invoice(app, owner)
    preview = await call(app, owner.key, "void_invoice", {"invoice_id": first["id"]})
    assert error_code(preview) == "confirmation_required"
    shown = preview.data["error"]["details"]["preview"]
    assert shown["number"] == first["number"] and shown["total"] == first["total"] and shown["currency"] == "EUR"
    voided = await confirmed(app, owner.key, "void_invoice", {"invoice_id": first["id"]})
    assert voided.ok and voided.data["status"] == "void" and voided.data["amount_remaining"] == 0
    assert voided.data["number"] == first["number"] and (await get(app, owner, first["id"]))["voided_at"]
    again = await call(app, owner.key, "void_invoice", {"invoice_id": first["id"]})
    assert again.ok and again.data["status"] == "void", "already void: acts at once, changes nothing"
    second = await open_invoice(app, owner)
    assert int(second["number"][4:]) == int(first["number"][4:]) + 1
    listed = await ok(app, owner, "list_invoices", {"status": "void"})
    assert [i["id"] for i in listed["items"]] == [first["id"]]
    assert (await ok(app, owner, "finalize_invoice", {"invoice_id": first["id"]}))["status"] == "void"
    assert await refusal(app, owner, lambda ctx: service.apply_payment(ctx, first["id"], Money(1, "EUR"))) == (
        "invalid_state"
    )


async def test_uncollectible_can_still_be_paid_or_voided(app: App, owner: Owner) -> None:
    bad_debt = await open_invoice(app, owner)
    marked = await confirmed(app, owner.key, "mark_invoice_uncollectible", {"invoice_id": bad_debt["id"]})
    assert marked.ok and marked.data["status"] == "uncollectible"
    assert (await get(app, owner, bad_debt["id"]))["marked_uncollectible_at"] is not None
    await pay(app, owner, bad_debt["id"], 1000)
    await pay(app, owner, bad_debt["id"], bad_debt["total"] - 1000)
    assert (await get(app, owner, bad_debt["id"]))["status"] == "paid"
    other = await open_invoice(app, owner)
    await confirmed(app, owner.key, "mark_invoice_uncollectible", {"invoice_id": other["id"]})
    assert (await confirmed(app, owner.key, "void_invoice", {"invoice_id": other["id"]})).data["status"] == "void"


# -- numbering -------------------------------------------------------------------------------------------------


async def test_twenty_concurrent_finalizes_take_twenty_consecutive_numbers(app: App, owner: Owner) -> None:
    member_id = await new_member(app, owner)
    drafts = [await draft(app, owner, member_id) for _ in range(20)]
    results = await gather(*[call(app, owner.key, "finalize_invoice", {"invoice_id": d["id"]}) for d in drafts])
    assert all(r.ok for r in results), [r.data for r in results if not r.ok]
    numbers = sorted(int(r.data["number"].removeprefix("INV-")) for r in results)
    assert numbers == list(range(1, 21)), numbers
    assert all(r.data["number"] == f"INV-{int(r.data['number'][4:]):06d}" for r in results)
    # Repeats of finalize (same drafts, concurrently) hand out nothing new.
    again = await gather(*[call(app, owner.key, "finalize_invoice", {"invoice_id": d["id"]}) for d in drafts[:5]])
    assert {r.data["number"] for r in again} == {r.data["number"] for r in results[:5]}
    await confirmed(app, owner.key, "void_invoice", {"invoice_id": drafts[19]["id"]})
    assert (await open_invoice(app, owner))["number"] == "INV-000021"
    # Numbers are per workspace.
    other = await signup(app)
    assert (await open_invoice(app, other))["number"] == "INV-000001"


# -- credit notes and payments ---------------------------------------------------------------------------------


async def test_credit_notes_never_exceed_the_total_and_lower_what_is_owed(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner, lines=[line("Course", 1000, 1, "0")])
    note = await ok(app, owner, "create_credit_note", {"invoice_id": inv["id"], "amount": 300, "reason": "late start"})
    assert (note["amount"], note["applied"], note["refund_due"], note["currency"]) == (300, 300, 0, "EUR")
    now = await get(app, owner, inv["id"])
    assert (now["amount_credited"], now["amount_remaining"], now["status"]) == (300, 700, "open")
    error = await refused(
        app, owner, "create_credit_note", {"invoice_id": inv["id"], "amount": 701, "reason": "x"}, "conflict"
    )
    assert error["details"] == {"creditable": 700, "currency": "EUR"}
    await pay(app, owner, inv["id"], 400)
    now = await get(app, owner, inv["id"])
    assert (now["amount_paid"], now["amount_remaining"], now["status"]) == (400, 300, "open")
    # 500 more: 300 clears what is owed, 200 was paid already and is owed back.
    note = await ok(app, owner, "create_credit_note", {"invoice_id": inv["id"], "amount": 500, "reason": "cancelled"})
    assert (note["applied"], note["refund_due"]) == (300, 200)
    now = await get(app, owner, inv["id"])
    assert (now["amount_credited"], now["amount_remaining"], now["refund_due"], now["status"]) == (800, 0, 200, "paid")
    assert [n["amount"] for n in now["credit_notes"]] == [300, 500]
    # On the paid invoice a credit note is all refund due; never beyond the total.
    note = await ok(app, owner, "create_credit_note", {"invoice_id": inv["id"], "amount": 200, "reason": "goodwill"})
    assert (note["applied"], note["refund_due"]) == (0, 200)
    await refused(app, owner, "create_credit_note", {"invoice_id": inv["id"], "amount": 1, "reason": "x"}, "conflict")
    # A refund recorded by payments settles refund_due; never more than paid.
    await as_payments(app, owner, lambda ctx: service.apply_refund(ctx, inv["id"], Money(250, "EUR")))
    now = await get(app, owner, inv["id"])
    assert (now["amount_refunded"], now["refund_due"], now["status"]) == (250, 150, "paid")
    more = Money(151, "EUR")
    assert await refusal(app, owner, lambda ctx: service.apply_refund(ctx, inv["id"], more)) == "conflict"


async def test_a_fully_credited_open_invoice_is_paid(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner)
    await ok(app, owner, "create_credit_note", {"invoice_id": inv["id"], "amount": inv["total"], "reason": "waived"})
    now = await get(app, owner, inv["id"])
    assert (now["status"], now["amount_paid"], now["amount_remaining"], now["refund_due"]) == ("paid", 0, 0, 0)


async def test_payments_fit_what_is_owed(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner)
    owed = await as_payments(app, owner, lambda ctx: service.receivable(ctx, inv["id"]))
    assert (owed.kind, owed.total, owed.amount_remaining, owed.currency) == (
        "invoice",
        inv["total"],
        inv["total"],
        "EUR",
    )
    for bad, code in ((Money(inv["total"] + 1, "EUR"), "conflict"), (Money(100, "USD"), "validation_failed")):
        assert await refusal(app, owner, lambda ctx, m=bad: service.apply_payment(ctx, inv["id"], m)) == code
    await gather(*[pay(app, owner, inv["id"], 100) for _ in range(5)])
    summary = await as_payments(app, owner, lambda ctx: service.invoice_summary(ctx, inv["id"]))
    assert (summary.amount_paid, summary.amount_remaining, summary.status) == (500, inv["total"] - 500, "open")
    drafted = await draft(app, owner)
    assert await refusal(app, owner, lambda ctx: service.receivable(ctx, drafted["id"])) == "invalid_state"


# -- overdue and reminders -------------------------------------------------------------------------------------


async def test_overdue_is_judged_in_the_workspace_timezone(app: App, owner: Owner, clock: FakeClock) -> None:
    await ok(app, owner, "update_workspace", {"timezone": "Pacific/Auckland"})
    # 10:30 UTC on 10 January is 23:30 in Auckland (UTC+13): still the 10th there.
    clock.current = datetime(2030, 1, 10, 10, 30, tzinfo=UTC)
    member_id = await new_member(app, owner)
    old = await open_invoice(app, owner, member_id=member_id, due_date="2030-01-10")
    newer = await open_invoice(app, owner, member_id=member_id, due_date="2030-01-12")
    assert (await ok(app, owner, "list_overdue_invoices"))["items"] == []
    clock.advance(hours=1)  # 11:30 UTC, still the 10th in UTC, but the 11th in Auckland
    overdue = (await ok(app, owner, "list_overdue_invoices"))["items"]
    assert [(i["id"], i["days_overdue"], i["reminders_sent"]) for i in overdue] == [(old["id"], 1, 0)]
    clock.advance(days=3)
    overdue = await ok(app, owner, "list_overdue_invoices", {"limit": 1})
    assert [(i["id"], i["days_overdue"]) for i in overdue["items"]] == [(old["id"], 4)], "oldest due first"
    rest = await ok(app, owner, "list_overdue_invoices", {"limit": 1, "cursor": overdue["next_cursor"]})
    assert [(i["id"], i["days_overdue"]) for i in rest["items"]] == [(newer["id"], 2)] and not rest["has_more"]
    await pay(app, owner, old["id"], old["total"])
    assert [i["id"] for i in (await ok(app, owner, "list_overdue_invoices"))["items"]] == [newer["id"]]


async def test_send_invoice_emails_the_details(app: App, owner: Owner) -> None:
    email = unique_email("bill")
    member_id = await new_member(app, owner, email=email, name="Noor Jansen")
    inv = await open_invoice(
        app, owner, member_id=member_id, lines=[line("Deep tissue", 6000, 2, "21")], memo="Thank you"
    )
    sent = await ok(app, owner, "send_invoice", {"invoice_id": inv["id"]})
    assert sent["status"] == "done" and sent["recipient"] == email and sent["number"] == inv["number"]
    [message] = await outbox_to(app, owner, email)
    assert message.id == sent["message_id"] and inv["number"] in message.subject
    body = open_body(app.settings, message)
    for text in ("Noor Jansen", inv["number"], "Deep tissue", "€120.00", "€25.20", "€145.20", "Thank you"):
        assert text in body, (text, body)
    assert (await get(app, owner, inv["id"]))["sent_at"] is not None
    # The policy decides: transactional email waits for a person when the owner says so.
    policy = {"rules": [{"channel": "email", "kind": "transactional", "needs_approval": True}]}
    await ok(app, owner, "set_approval_policy", policy)
    held = await ok(app, owner, "send_invoice", {"invoice_id": inv["id"]})
    assert held["status"] == "pending_approval" and held["approval_id"] and held["message_id"] is None
    assert len(await outbox_to(app, owner, email)) == 1, "nothing sent while it waits"
    approval = await ok(app, owner, "get_approval", {"approval_id": held["approval_id"]})
    assert approval["recipient"] == email and inv["number"] in approval["summary"]
    manager = await join(app, owner, "manager")
    decided = await call(app, manager.key, "approve_request", {"approval_id": held["approval_id"]})
    assert decided.ok and decided.data["execution"]["ok"], decided.data
    assert decided.data["execution"]["result"]["status"] == "done"
    assert len(await outbox_to(app, owner, email)) == 2, "the approved send ran once"


async def test_the_invoice_email_reaches_an_smtp_server_as_text_and_html(app: App, owner: Owner) -> None:
    email = unique_email("smtp")
    member_id = await new_member(app, owner, email=email, name="Iris Vos")
    inv = await open_invoice(app, owner, member_id=member_id, lines=[line("Facial", 4500, 1, "21")])
    await ok(app, owner, "send_invoice", {"invoice_id": inv["id"]})
    with running_smtp_server() as smtp:
        channel = SmtpChannel("127.0.0.1", smtp.port, "studio <billing@studio.test>")
        worker = Dispatcher(app.db, channel, app.settings.secret_keys)
        while not smtp.to(email):
            assert await worker.run_once(), "the invoice email was delivered"
    [received] = smtp.to(email)
    mail = received.message
    assert mail.get_content_type() == "multipart/alternative"
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert text is not None and html is not None
    for shown in (text.get_content(), html.get_content()):
        assert inv["number"] in shown and "Facial" in shown and "€54.45" in shown, shown


async def test_the_email_is_rendered_in_the_workspace_locale(app: App, owner: Owner) -> None:
    await ok(app, owner, "update_workspace", {"locale": "nl-NL"})
    email = unique_email("nl")
    inv = await open_invoice(
        app, owner, member_id=await new_member(app, owner, email=email), lines=[line("Knippen", 2500, 1, "21")]
    )
    await ok(app, owner, "send_invoice", {"invoice_id": inv["id"]})
    [message] = await outbox_to(app, owner, email)
    assert "€\xa030,25" in open_body(app.settings, message), "Dutch: symbol, no-break space, decimal comma"
    async with app.db.transaction() as session:
        row = (await session.execute(select(Invoice).where(col(Invoice.id) == inv["id"]))).scalar_one()
        workspace = (
            await session.execute(select(Workspace).where(col(Workspace.id) == owner.workspace_id))
        ).scalar_one()
    html = documents.render(workspace, row, [], greeting_name="Sam").html
    assert "€\xa030,25" in html and "<table>" in html and inv["number"] in html
    hostile = row.model_copy(update={"memo": "<script>x</script>"})
    assert "<script>" not in documents.render(workspace, hostile, [], greeting_name="<b>").html


async def test_sends_are_refused_without_email_or_for_erased_members(app: App, owner: Owner) -> None:
    phone_only = await new_member(app, owner, email=None, phone="+31612340000")
    inv = await open_invoice(app, owner, member_id=phone_only)
    error = await refused(app, owner, "send_invoice", {"invoice_id": inv["id"]}, "invalid_state")
    assert error["details"]["current"] == "no_email" and "update_member" in error["hint"]
    erased = await new_member(app, owner)
    gone = await open_invoice(app, owner, member_id=erased)
    await confirmed(app, owner.key, "delete_member", {"member_id": erased})
    error = await refused(app, owner, "send_invoice", {"invoice_id": gone["id"]}, "invalid_state")
    assert error["details"]["current"] == "erased"
    kept = await get(app, owner, gone["id"])
    assert kept["bill_to_name"] is None and kept["bill_to_email"] is None and kept["total"] == gone["total"]
    drafted = await draft(app, owner)
    assert (await refused(app, owner, "send_invoice", {"invoice_id": drafted["id"]}, "invalid_state"))["details"][
        "current"
    ] == "draft"


async def test_payment_reminders_for_overdue_invoices(app: App, owner: Owner, clock: FakeClock) -> None:
    email = unique_email("late")
    member_id = await new_member(app, owner, email=email)
    due = (clock.now().astimezone(UTC) + timedelta(days=2)).date()
    inv = await open_invoice(app, owner, member_id=member_id, due_date=due.isoformat())
    error = await refused(app, owner, "send_payment_reminder", {"invoice_id": inv["id"]}, "invalid_state")
    assert error["details"]["current"] == "not_overdue"
    clock.advance(days=4)
    sent = await ok(app, owner, "send_payment_reminder", {"invoice_id": inv["id"]})
    assert sent["status"] == "done" and sent["reminders_sent"] == 1 and sent["recipient"] == email
    [message] = await outbox_to(app, owner, email)
    assert "overdue" in message.subject.lower() and inv["number"] in open_body(app.settings, message)
    await refused(app, owner, "send_payment_reminder", {"invoice_id": inv["id"]}, "rate_limited")
    clock.advance(hours=25)
    assert (await ok(app, owner, "send_payment_reminder", {"invoice_id": inv["id"]}))["reminders_sent"] == 2
    [listed] = (await ok(app, owner, "list_overdue_invoices"))["items"]
    assert listed["reminders_sent"] == 2 and listed["last_reminder_at"] is not None
    channel = {"invoice_id": inv["id"], "channel": "sms"}
    assert error_code(await call(app, owner.key, "send_payment_reminder", channel)) == "validation_failed"


# -- people, workspaces, scopes --------------------------------------------------------------------------------


async def test_another_workspaces_invoice_answers_not_found(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner)
    other = await signup(app)
    for tool, args in (
        ("get_invoice", {"invoice_id": inv["id"]}),
        ("finalize_invoice", {"invoice_id": inv["id"]}),
        ("update_invoice_draft", {"invoice_id": inv["id"], "memo": "x"}),
        ("send_invoice", {"invoice_id": inv["id"]}),
        ("void_invoice", {"invoice_id": inv["id"]}),
        ("mark_invoice_uncollectible", {"invoice_id": inv["id"]}),
        ("create_credit_note", {"invoice_id": inv["id"], "amount": 1, "reason": "x"}),
        ("send_payment_reminder", {"invoice_id": inv["id"]}),
    ):
        assert error_code(await call(app, other.key, tool, args)) == "not_found", tool
    assert (await ok(app, other, "list_invoices"))["items"] == []
    theirs = await new_member(app, other)
    assert (
        error_code(await call(app, owner.key, "create_invoice", {"member_id": theirs, "lines": [line()]}))
        == "not_found"
    )


async def test_staff_see_no_invoices_and_managers_cannot_void(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner)
    staff = await join(app, owner, "staff")
    assert error_code(await call(app, staff.key, "get_invoice", {"invoice_id": inv["id"]})) == "forbidden"
    assert error_code(await call(app, staff.key, "list_invoices")) == "forbidden"
    manager = await join(app, owner, "manager")
    assert (await call(app, manager.key, "get_invoice", {"invoice_id": inv["id"]})).ok
    assert error_code(await call(app, manager.key, "void_invoice", {"invoice_id": inv["id"]})) == "forbidden"
    note = {"invoice_id": inv["id"], "amount": 1, "reason": "x"}
    assert error_code(await call(app, manager.key, "create_credit_note", note)) == "forbidden"


async def test_merge_moves_invoices_and_export_includes_them(app: App, owner: Owner) -> None:
    survivor, duplicate = await new_member(app, owner), await new_member(app, owner)
    inv = await open_invoice(app, owner, member_id=duplicate)
    await ok(app, owner, "create_credit_note", {"invoice_id": inv["id"], "amount": 10, "reason": "x"})
    await confirmed(app, owner.key, "merge_members", {"survivor_id": survivor, "duplicate_id": duplicate})
    assert (await get(app, owner, inv["id"]))["member_id"] == survivor
    listed = await ok(app, owner, "list_invoices", {"member_id": survivor})
    assert [i["id"] for i in listed["items"]] == [inv["id"]]
    exported = await ok(app, owner, "export_member_data", {"member_id": survivor})
    assert [i["id"] for i in exported["records"]["invoices"]] == [inv["id"]]
    assert len(exported["records"]["credit_notes"]) == 1


async def test_the_member_profile_shows_unpaid_invoices_to_those_who_may_see_revenue(app: App, owner: Owner) -> None:
    member_id = await new_member(app, owner)
    later = await open_invoice(app, owner, member_id=member_id)
    first = await open_invoice(
        app, owner, member_id=member_id, due_date=(await get(app, owner, later["id"]))["due_date"]
    )
    paid = await open_invoice(app, owner, member_id=member_id)
    await pay(app, owner, paid["id"], paid["total"])
    await draft(app, owner, member_id)
    await pay(app, owner, first["id"], 100)
    money = (await ok(app, owner, "get_member_profile", {"member_id": member_id}))["money"]
    shown = [(i["id"], i["amount_remaining"], i["currency"]) for i in money["open_invoices"]]
    assert shown == [(later["id"], later["total"], "EUR"), (first["id"], first["total"] - 100, "EUR")]
    staff = await join(app, owner, "staff")
    service_id = await insert_service(app, owner.workspace_id)
    starts_at = app.runner.clock.now() + timedelta(days=1)
    await insert_booking(
        app, owner.workspace_id, member_id=member_id, staff_user_id=staff.user_id, service_id=service_id,
        starts_at=starts_at,
    )  # fmt: skip
    seen = await call(app, staff.key, "get_member_profile", {"member_id": member_id})
    assert seen.ok and seen.data["money"] is None, "staff see no revenue, even of their own customers"


async def test_list_invoices_filters_by_status_member_and_days(app: App, owner: Owner, clock: FakeClock) -> None:
    member_id = await new_member(app, owner)
    first = await draft(app, owner, member_id)
    clock.advance(days=2)
    second = await open_invoice(app, owner, member_id=member_id)
    day = clock.now().astimezone(ZoneInfo("Europe/Amsterdam")).date()  # days are the workspace's, not UTC's
    assert [i["id"] for i in (await ok(app, owner, "list_invoices", {"status": "open"}))["items"]] == [second["id"]]
    recent = await ok(app, owner, "list_invoices", {"created_from": (day - timedelta(days=1)).isoformat()})
    assert [i["id"] for i in recent["items"]] == [second["id"]]
    page = await ok(app, owner, "list_invoices", {"member_id": member_id, "limit": 1})
    assert [i["id"] for i in page["items"]] == [second["id"]] and page["has_more"]
    rest = await ok(app, owner, "list_invoices", {"member_id": member_id, "limit": 1, "cursor": page["next_cursor"]})
    assert [i["id"] for i in rest["items"]] == [first["id"]] and not rest["has_more"]


# -- promotions ------------------------------------------------------------------------------------------------


async def promotion(app: App, owner: Owner, **fields: Any) -> dict[str, Any]:
    return await ok(app, owner, "create_promotion", {"code": f"SAVE{uuid.uuid4().hex[:8].upper()}", **fields})


async def redeemed(app: App, owner: Owner, promotion_id: str) -> int:
    listed = await ok(app, owner, "list_promotions", {"limit": 100})
    return int(next(p for p in listed["items"] if p["id"] == promotion_id)["times_redeemed"])


async def test_a_promotion_is_spread_over_the_lines_before_tax(app: App, owner: Owner) -> None:
    promo = await promotion(app, owner, amount_off=1000, max_redemptions=5)
    lines = [line("A", 3000, 1, "21"), line("B", 2000, 1, "9"), line("C", 1000, 1, "0")]
    made = await draft(app, owner, lines=lines, promotion_code=promo["code"])
    # 1000 off 6000 by share: 500, 333.33, 166.67 -> 500, 333, 167 (largest remainder)
    assert [li["discount"] for li in made["lines"]] == [500, 333, 167]
    assert [(li["net"], li["tax"]) for li in made["lines"]] == [(2500, 525), (1667, 150), (833, 0)]
    assert (made["discount"], made["subtotal"], made["tax"], made["total"]) == (1000, 5000, 675, 5675)
    assert made["promotion_code"] == promo["code"] and await redeemed(app, owner, promo["id"]) == 1
    # New lines redeem the code again for the new subtotal; removing it gives the use back.
    changed = await ok(
        app, owner, "update_invoice_draft", {"invoice_id": made["id"], "lines": [line("D", 500, 1, "0")]}
    )
    assert changed["discount"] == 500 and changed["total"] == 0 and await redeemed(app, owner, promo["id"]) == 1
    removed = await ok(app, owner, "update_invoice_draft", {"invoice_id": made["id"], "promotion_code": None})
    assert removed["discount"] == 0 and removed["total"] == 500 and removed["promotion_code"] is None
    assert await redeemed(app, owner, promo["id"]) == 0
    again = await ok(app, owner, "update_invoice_draft", {"invoice_id": made["id"], "promotion_code": promo["code"]})
    assert again["discount"] == 500 and await redeemed(app, owner, promo["id"]) == 1
    await ok(app, owner, "update_invoice_draft", {"invoice_id": made["id"], "lines": [line("E", 4000, 1, "0")]})
    opened = await ok(app, owner, "finalize_invoice", {"invoice_id": made["id"]})
    assert opened["total"] == 3000
    await confirmed(app, owner.key, "void_invoice", {"invoice_id": made["id"]})
    assert await redeemed(app, owner, promo["id"]) == 0, "a void gives the use back"
    assert (await get(app, owner, made["id"]))["promotion_code"] == promo["code"], "kept on record"


async def test_a_promotion_that_does_not_apply_is_refused_with_its_reason(app: App, owner: Owner) -> None:
    promo = await promotion(app, owner, percent_off="10", min_subtotal=10_000)
    result = await call(
        app,
        owner.key,
        "create_invoice",
        {"member_id": await new_member(app, owner), "lines": [line()], "promotion_code": promo["code"]},
    )
    assert error_code(result) == "validation_failed" and result.data["error"]["details"]["reason"] == "below_minimum"
    assert (await ok(app, owner, "list_invoices"))["items"] == [], "a refusal writes nothing"


async def test_prices_including_tax_take_the_discount_off_the_gross(app: App, owner: Owner) -> None:
    await ok(app, owner, "update_workspace", {"prices_include_tax": True})
    promo = await promotion(app, owner, percent_off="10")
    made = await draft(app, owner, lines=[line("Cut", 1210, 1, "21")], promotion_code=promo["code"])
    # 10 % of 1210 = 121 off the gross: 1089 incl. 21 % = 900 net + 189 tax.
    [only] = made["lines"]
    assert (only["discount"], only["net"], only["tax"], only["gross"]) == (121, 900, 189, 1089)
    assert (made["discount"], made["total"]) == (121, 1089)


# -- the property ----------------------------------------------------------------------------------------------

STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("lines"),
            st.lists(
                st.tuples(st.integers(1, 3), st.integers(0, 5000), st.sampled_from(["0", "9", "21", "8.875"])),
                min_size=1,
                max_size=4,
            ),
        ),
        st.tuples(st.just("finalize"), st.none()),
        st.tuples(st.just("credit"), st.integers(1, 8000)),
        st.tuples(st.just("pay"), st.integers(1, 8000)),
        st.tuples(st.just("refund"), st.integers(1, 3000)),
        st.tuples(st.just("void"), st.none()),
        st.tuples(st.just("uncollectible"), st.none()),
    ),
    min_size=1,
    max_size=10,
)


async def step(app: App, owner: Owner, invoice_id: str, kind: str, value: Any) -> bool:
    """One action; True when it was accepted."""
    if kind == "lines":
        lines = [line(f"L{i}", unit, qty, rate) for i, (qty, unit, rate) in enumerate(value)]
        return (await call(app, owner.key, "update_invoice_draft", {"invoice_id": invoice_id, "lines": lines})).ok
    if kind == "finalize":
        return (await call(app, owner.key, "finalize_invoice", {"invoice_id": invoice_id})).ok
    if kind == "credit":
        note = {"invoice_id": invoice_id, "amount": value, "reason": "property"}
        return (await call(app, owner.key, "create_credit_note", note)).ok
    if kind in ("void", "uncollectible"):
        tool = "void_invoice" if kind == "void" else "mark_invoice_uncollectible"
        first = await call(app, owner.key, tool, {"invoice_id": invoice_id})
        if error_code(first) != "confirmation_required":
            return first.ok
        token = first.data["error"]["details"]["confirmation_token"]
        return (await call(app, owner.key, tool, {"invoice_id": invoice_id, "confirmation_token": token})).ok
    work = service.apply_payment if kind == "pay" else service.apply_refund
    try:
        await as_payments(app, owner, lambda ctx: work(ctx, invoice_id, Money(value, "EUR")))
    except FavError as exc:
        assert exc.code in ("conflict", "invalid_state"), exc
        return False
    return True


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
async def test_balances_and_status_stay_consistent(app: App, owner: Owner, steps: list[tuple[str, Any]]) -> None:
    inv = await draft(app, owner)
    paid = credited = refunded = refund_due = 0
    for kind, value in steps:
        before = await get(app, owner, inv["id"])
        accepted = await step(app, owner, inv["id"], kind, value)
        now = await get(app, owner, inv["id"])
        if kind == "pay" and accepted:
            paid += value
        if kind == "credit" and accepted:
            credited += value
        if kind == "refund" and accepted:
            refunded += value
        assert (now["amount_paid"], now["amount_credited"], now["amount_refunded"]) == (paid, credited, refunded)
        assert sum(n["amount"] for n in now["credit_notes"]) == credited <= now["total"]
        assert refunded <= paid
        assert now["total"] == sum(li["gross"] for li in now["lines"]) == now["subtotal"] + now["tax"]
        if now["status"] == "void":
            assert now["amount_remaining"] == 0 and paid == 0
        else:
            assert now["amount_remaining"] == max(0, now["total"] - credited - paid)
        if kind == "credit" and accepted:
            refund_due += value - min(value, before["amount_remaining"])
        if kind == "refund" and accepted:
            refund_due = max(0, refund_due - value)
        assert now["refund_due"] == refund_due
        if now["status"] in ("open", "uncollectible"):
            assert now["amount_remaining"] > 0
        if now["status"] == "paid":
            assert now["amount_remaining"] == 0 and before["status"] in ("open", "uncollectible", "draft", "paid")
        if before["status"] != "draft":
            assert now["lines"] == before["lines"] and now["number"] == before["number"], "frozen once finalized"
        assert not (accepted and kind == "lines" and before["status"] != "draft")
