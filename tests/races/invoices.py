"""Races of the invoices domain: 20 concurrent calls of each mutating tool on shared invoices."""

from __future__ import annotations

from typing import Any

from sqlmodel import col

from favmcp.domains.invoices.models import CreditNote, InvoiceReminder
from favmcp.effects.models import OutboxMessage
from favmcp.registry.models import StateTransition
from tests.race_kit import RACER, Call, N, Outcome, Scenario, Stage, as_owner, member, ok, oks, rows, tokens


def line(description: str, unit_amount: int = 1000, tax_rate: str = "0") -> dict[str, Any]:
    return {"description": description, "unit_amount": unit_amount, "quantity": 1, "tax_rate": tax_rate}


async def get(s: Stage, invoice_id: str) -> dict[str, Any]:
    return await ok(s, "get_invoice", {"invoice_id": invoice_id})


async def a_draft(s: Stage, member_id: str, amount: int = 1000) -> str:
    made = await ok(s, "create_invoice", {"member_id": member_id, "lines": [line("Session", amount)]})
    return str(made["id"])


async def an_open_invoice(s: Stage, amount: int = 1000, **fields: Any) -> str:
    s.member = await member(s, "Billed", **fields)
    invoice_id = await a_draft(s, s.member, amount)
    await ok(s, "finalize_invoice", {"invoice_id": invoice_id})
    return invoice_id


async def transitions(s: Stage, invoice_id: str, to_state: str) -> int:
    found = await rows(s, StateTransition, col(StateTransition.entity_id) == invoice_id)
    return len([t for t in found if t.to_state == to_state])


# -- create_invoice --------------------------------------------------------------------------------------------


async def setup_one_member(s: Stage) -> None:
    s.member = await member(s)


async def check_drafts(s: Stage, outs: list[Outcome]) -> None:
    listed = await ok(s, "list_invoices", {"member_id": s.member, "limit": 100})
    assert sorted(i["id"] for i in listed["items"]) == sorted(o.result.data["id"] for o in outs)
    assert all(i["status"] == "draft" and i["total"] == 1210 for i in listed["items"])


async def setup_limited_code(s: Stage) -> None:
    s.member = await member(s)
    s.code = (await ok(s, "create_promotion", {"code": "FIVEUSES", "amount_off": 100, "max_redemptions": 5}))["code"]


async def check_limited_code(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 5, "a code with 5 uses discounts exactly 5 invoices"
    assert all(o.details.get("reason") == "limit_reached" for o in outs if not o.ok)
    listed = (await ok(s, "list_invoices", {"member_id": s.member, "limit": 100}))["items"]
    assert len(listed) == 5 and all(i["total"] == 900 for i in listed), "a refused code writes no invoice"


# -- update_invoice_draft racing finalize ----------------------------------------------------------------------


async def setup_draft(s: Stage) -> None:
    s.member = await member(s)
    s.invoice = await a_draft(s, s.member)


def update_racing_finalize(s: Stage, i: int) -> Call:
    if i == RACER + N // 2:
        return as_owner(s, "finalize_invoice", {"invoice_id": s.invoice})
    return as_owner(s, "update_invoice_draft", {"invoice_id": s.invoice, "lines": [line(f"Line {i}", 100 + i)]})


async def check_update_racing_finalize(s: Stage, outs: list[Outcome]) -> None:
    final = await get(s, s.invoice)
    assert final["status"] == "open" and final["number"] == "INV-000001"
    updates = [o for o in outs if o.call.tool == "update_invoice_draft"]
    refused = [o for o in updates if not o.ok]
    assert all(o.code == "invalid_state" and o.details["current"] == "open" for o in refused)
    finalized = next(o for o in outs if o.call.tool == "finalize_invoice").result.data
    assert final["total"] == finalized["total"], "nothing changed the lines after finalizing"
    landed = [o.result.data["lines"] for o in updates if o.ok]
    assert final["lines"] in landed or (not landed and final["lines"][0]["description"] == "Session")
    assert final["total"] == sum(li["gross"] for li in final["lines"])


async def check_updates(s: Stage, outs: list[Outcome]) -> None:
    final = await get(s, s.invoice)
    assert final["lines"] in [o.result.data["lines"] for o in outs], "one update's lines, whole"
    assert len(final["lines"]) == 1 and final["total"] == final["lines"][0]["gross"]


async def setup_draft_racing_erase(s: Stage) -> None:
    s.member = await member(s)
    s.code = (await ok(s, "create_promotion", {"code": "TENOFF", "percent_off": "10"}))["code"]
    made = await ok(s, "create_invoice", {"member_id": s.member, "lines": [line("Cut")], "promotion_code": s.code})
    s.invoice = made["id"]
    s.tokens = await tokens(s, "delete_member", {"member_id": s.member}, 1)


def draft_racing_erase(s: Stage, i: int) -> Call:
    if i == RACER:
        return as_owner(s, "delete_member", {"member_id": s.member, "confirmation_token": s.tokens[0]})
    args = {"invoice_id": s.invoice, "lines": [line(f"Line {i}", 1000 + i)], "promotion_code": s.code}
    return as_owner(s, "update_invoice_draft", args)


async def check_draft_racing_erase(s: Stage, outs: list[Outcome]) -> None:
    """Draft changes and the member's erasure take the member's row first: they queue, never deadlock."""
    assert next(o for o in outs if o.i == RACER).ok
    assert all(o.code == "invalid_state" and o.details["current"] == "erased" for o in outs if not o.ok)
    final = await get(s, s.invoice)
    assert final["status"] == "draft" and final["bill_to_name"] is None and final["bill_to_email"] is None
    assert final["discount"] == round(final["lines"][0]["unit_amount"] / 10)


# -- finalize_invoice ------------------------------------------------------------------------------------------


async def setup_twenty_drafts(s: Stage) -> None:
    s.member = await member(s)
    s.drafts = [await a_draft(s, s.member) for _ in range(N)]


async def check_consecutive_numbers(s: Stage, outs: list[Outcome]) -> None:
    numbers = sorted(int(o.result.data["number"].removeprefix("INV-")) for o in outs)
    assert numbers == list(range(1, N + 1)), numbers


async def check_one_number(s: Stage, outs: list[Outcome]) -> None:
    assert {o.result.data["number"] for o in outs} == {"INV-000001"}
    assert await transitions(s, s.invoice, "open") == 1
    later = await a_draft(s, s.member)
    assert (await ok(s, "finalize_invoice", {"invoice_id": later}))["number"] == "INV-000002", "no number lost"


# -- send_invoice, send_payment_reminder -----------------------------------------------------------------------


async def setup_sendable(s: Stage) -> None:
    s.email = f"billed.{s.owner.workspace_id[-8:]}@example.com"
    s.invoice = await an_open_invoice(s, email=s.email)


async def check_sent(s: Stage, outs: list[Outcome]) -> None:
    sent = await rows(s, OutboxMessage, col(OutboxMessage.recipient) == s.email)
    assert sorted(m.id for m in sent) == sorted(o.result.data["message_id"] for o in outs), "one email per send"
    assert (await get(s, s.invoice))["sent_at"] is not None


async def setup_overdue(s: Stage) -> None:
    await setup_sendable(s)
    s.app.runner.clock.advance(days=45)  # type: ignore[attr-defined]  # the race's MovingClock


async def check_one_reminder(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 1, "one reminder a day, however many agents ask at once"
    assert all(o.code == "rate_limited" for o in outs if not o.ok)
    assert len(await rows(s, InvoiceReminder, col(InvoiceReminder.invoice_id) == s.invoice)) == 1
    assert len(await rows(s, OutboxMessage, col(OutboxMessage.recipient) == s.email)) == 1
    [listed] = (await ok(s, "list_overdue_invoices"))["items"]
    assert listed["reminders_sent"] == 1 and listed["days_overdue"] >= 14


# -- void_invoice, mark_invoice_uncollectible ------------------------------------------------------------------


async def setup_void(s: Stage) -> None:
    s.invoice = await an_open_invoice(s)
    s.tokens = await tokens(s, "void_invoice", {"invoice_id": s.invoice}, N)


async def check_voided_once(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.result.data["status"] == "void" for o in outs)
    assert await transitions(s, s.invoice, "void") == 1
    assert (await get(s, s.invoice))["amount_remaining"] == 0


async def setup_void_racing_credits(s: Stage) -> None:
    s.invoice = await an_open_invoice(s, 10_000)
    s.tokens = await tokens(s, "void_invoice", {"invoice_id": s.invoice}, 1)


def void_racing_credits(s: Stage, i: int) -> Call:
    if i == RACER:
        return as_owner(s, "void_invoice", {"invoice_id": s.invoice, "confirmation_token": s.tokens[0]})
    return as_owner(s, "create_credit_note", {"invoice_id": s.invoice, "amount": 100, "reason": f"credit {i}"})


async def check_void_racing_credits(s: Stage, outs: list[Outcome]) -> None:
    final = await get(s, s.invoice)
    credits = [o for o in outs if o.call.tool == "create_credit_note"]
    assert final["status"] == "void" and next(o for o in outs if o.i == RACER).ok
    assert all(o.code == "invalid_state" and o.details["current"] == "void" for o in credits if not o.ok)
    notes = await rows(s, CreditNote, col(CreditNote.invoice_id) == s.invoice)
    assert len(notes) == len(oks(credits)) and final["amount_credited"] == 100 * len(notes)
    assert final["amount_remaining"] == 0


async def setup_uncollectible(s: Stage) -> None:
    s.invoice = await an_open_invoice(s)
    s.tokens = await tokens(s, "mark_invoice_uncollectible", {"invoice_id": s.invoice}, N)


async def check_uncollectible_once(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.result.data["status"] == "uncollectible" for o in outs)
    assert await transitions(s, s.invoice, "uncollectible") == 1


async def setup_uncollectible_racing_void(s: Stage) -> None:
    s.invoice = await an_open_invoice(s)
    s.void_tokens = await tokens(s, "void_invoice", {"invoice_id": s.invoice}, N // 2)
    s.tokens = await tokens(s, "mark_invoice_uncollectible", {"invoice_id": s.invoice}, N // 2)


def uncollectible_racing_void(s: Stage, i: int) -> Call:
    if i % 2:
        return as_owner(s, "void_invoice", {"invoice_id": s.invoice, "confirmation_token": s.void_tokens[i // 2]})
    return as_owner(s, "mark_invoice_uncollectible", {"invoice_id": s.invoice, "confirmation_token": s.tokens[i // 2]})


async def check_uncollectible_racing_void(s: Stage, outs: list[Outcome]) -> None:
    """Void may follow uncollectible, never the other way: the invoice ends void."""
    final = await get(s, s.invoice)
    assert final["status"] == "void"
    assert all(o.ok for o in outs if o.call.tool == "void_invoice")
    marks = [o for o in outs if o.call.tool == "mark_invoice_uncollectible"]
    assert all(o.code == "invalid_state" and o.details["current"] == "void" for o in marks if not o.ok)
    assert await transitions(s, s.invoice, "void") == 1
    assert await transitions(s, s.invoice, "uncollectible") == (1 if any(o.ok for o in marks) else 0)


# -- create_credit_note ----------------------------------------------------------------------------------------


async def setup_credit(s: Stage) -> None:
    s.invoice = await an_open_invoice(s, 1000)


async def check_credit_within_total(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 10, "ten credit notes of 100 fill a total of 1000, no more"
    assert all(o.code == "conflict" for o in outs if not o.ok)
    final = await get(s, s.invoice)
    assert (final["amount_credited"], final["amount_remaining"], final["status"]) == (1000, 0, "paid")
    assert len(final["credit_notes"]) == 10 and sum(n["applied"] for n in final["credit_notes"]) == 1000
    assert await transitions(s, s.invoice, "paid") == 1


SCENARIOS: dict[str, Scenario] = {
    "create_invoice: twenty drafts for one member": Scenario(
        "create_invoice",
        setup_one_member,
        lambda s, i: as_owner(s, "create_invoice", {"member_id": s.member, "lines": [line("Cut", 1000, "21")]}),
        check_drafts,
    ),
    "create_invoice: a promotion code with five uses": Scenario(
        "create_invoice",
        setup_limited_code,
        lambda s, i: as_owner(
            s, "create_invoice", {"member_id": s.member, "lines": [line("Cut")], "promotion_code": s.code}
        ),
        check_limited_code,
        frozenset({"conflict"}),
    ),
    "update_invoice_draft: twenty replacements": Scenario(
        "update_invoice_draft",
        setup_draft,
        lambda s, i: as_owner(s, "update_invoice_draft", {"invoice_id": s.invoice, "lines": [line(f"L{i}", 10 + i)]}),
        check_updates,
    ),
    "update_invoice_draft racing finalize_invoice": Scenario(
        "update_invoice_draft",
        setup_draft,
        update_racing_finalize,
        check_update_racing_finalize,
        frozenset({"invalid_state"}),
    ),
    "update_invoice_draft racing the member's erasure": Scenario(
        "update_invoice_draft",
        setup_draft_racing_erase,
        draft_racing_erase,
        check_draft_racing_erase,
        frozenset({"invalid_state"}),
    ),
    "finalize_invoice: twenty drafts take consecutive numbers": Scenario(
        "finalize_invoice",
        setup_twenty_drafts,
        lambda s, i: as_owner(s, "finalize_invoice", {"invoice_id": s.drafts[i]}),
        check_consecutive_numbers,
    ),
    "finalize_invoice: one draft twenty times": Scenario(
        "finalize_invoice",
        setup_draft,
        lambda s, i: as_owner(s, "finalize_invoice", {"invoice_id": s.invoice}),
        check_one_number,
    ),
    "send_invoice: one invoice": Scenario(
        "send_invoice",
        setup_sendable,
        lambda s, i: as_owner(s, "send_invoice", {"invoice_id": s.invoice}),
        check_sent,
    ),
    "send_payment_reminder: one overdue invoice": Scenario(
        "send_payment_reminder",
        setup_overdue,
        lambda s, i: as_owner(s, "send_payment_reminder", {"invoice_id": s.invoice}),
        check_one_reminder,
        frozenset({"rate_limited"}),
    ),
    "void_invoice: a token each": Scenario(
        "void_invoice",
        setup_void,
        lambda s, i: as_owner(s, "void_invoice", {"invoice_id": s.invoice, "confirmation_token": s.tokens[i]}),
        check_voided_once,
    ),
    "void_invoice racing credit notes": Scenario(
        "void_invoice",
        setup_void_racing_credits,
        void_racing_credits,
        check_void_racing_credits,
        frozenset({"invalid_state"}),
    ),
    "mark_invoice_uncollectible: a token each": Scenario(
        "mark_invoice_uncollectible",
        setup_uncollectible,
        lambda s, i: as_owner(
            s, "mark_invoice_uncollectible", {"invoice_id": s.invoice, "confirmation_token": s.tokens[i]}
        ),
        check_uncollectible_once,
    ),
    "mark_invoice_uncollectible racing void_invoice": Scenario(
        "mark_invoice_uncollectible",
        setup_uncollectible_racing_void,
        uncollectible_racing_void,
        check_uncollectible_racing_void,
        frozenset({"invalid_state"}),
    ),
    "create_credit_note: twenty of 100 on a total of 1000": Scenario(
        "create_credit_note",
        setup_credit,
        lambda s, i: as_owner(s, "create_credit_note", {"invoice_id": s.invoice, "amount": 100, "reason": f"c{i}"}),
        check_credit_within_total,
        frozenset({"conflict"}),
    ),
}
