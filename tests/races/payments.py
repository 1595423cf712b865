"""Races of the payments domain: 20 concurrent calls of each mutating tool on shared invoices and payments."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlmodel import col

from favmcp.domains.payments.models import Payment
from tests.race_kit import RACER, Call, N, Outcome, Scenario, Stage, as_owner, member, ok, oks, rows, tokens
from tests.stripe_server import StripeServer
from tests.support import call


def key() -> str:
    return f"race-setup-{uuid.uuid4().hex}"


async def an_open_invoice(s: Stage, amount: int) -> str:
    s.member = await member(s, "Payer")
    line = {"description": "Course", "unit_amount": amount, "quantity": 1, "tax_rate": "0"}
    made = await ok(s, "create_invoice", {"member_id": s.member, "lines": [line]})
    await ok(s, "finalize_invoice", {"invoice_id": made["id"]})
    return str(made["id"])


async def invoice(s: Stage) -> dict[str, Any]:
    return await ok(s, "get_invoice", {"invoice_id": s.invoice})


# -- record_payment --------------------------------------------------------------------------------------------


async def setup_invoice_of_1000(s: Stage) -> None:
    s.invoice = await an_open_invoice(s, 1000)


def pay_250(s: Stage, i: int) -> Call:
    return as_owner(s, "record_payment", {"method": "cash", "amount": 250, "invoice_id": s.invoice})


async def check_one_key_moves_money_once(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.ok for o in outs) and len({repr(o.result.data) for o in outs}) == 1, "20 identical answers"
    assert (await invoice(s))["amount_paid"] == 250
    assert len(await rows(s, Payment, col(Payment.invoice_id) == s.invoice)) == 1


def pay_100(s: Stage, i: int) -> Call:
    return as_owner(s, "record_payment", {"method": "bank_transfer", "amount": 100, "invoice_id": s.invoice})


async def check_never_overpaid(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 10, "ten payments of 100 settle an invoice of 1000, no more"
    after = await invoice(s)
    assert (after["status"], after["amount_paid"], after["amount_remaining"]) == ("paid", 1000, 0)
    assert len(await rows(s, Payment, col(Payment.invoice_id) == s.invoice)) == 10


# -- refund_payment --------------------------------------------------------------------------------------------


async def setup_payment_of_100(s: Stage) -> None:
    s.invoice = await an_open_invoice(s, 100)
    paid = await ok(
        s, "record_payment", {"method": "cash", "amount": 100, "invoice_id": s.invoice, "idempotency_key": key()}
    )
    s.payment = paid["id"]
    args = {"payment_id": s.payment, "amount": 60}
    previews = await asyncio.gather(
        *[call(s.app, s.owner.key, "refund_payment", {**args, "idempotency_key": key()}) for _ in range(N)]
    )
    s.tokens = [p.data["error"]["details"]["confirmation_token"] for p in previews]


def refund_60(s: Stage, i: int) -> Call:
    return as_owner(s, "refund_payment", {"payment_id": s.payment, "amount": 60, "confirmation_token": s.tokens[i]})


async def check_one_refund_of_60(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == 1, "of refunds of 60 on a payment of 100 exactly one succeeds"
    assert all(o.details.get("reason") == "beyond_refundable" for o in outs if not o.ok)
    payment = await ok(s, "get_payment", {"payment_id": s.payment})
    assert (payment["amount_refunded"], payment["amount_refundable"], payment["status"]) == (
        60, 40, "partially_refunded",
    )  # fmt: skip
    assert (await invoice(s))["amount_refunded"] == 60


# -- create_payment_link ---------------------------------------------------------------------------------------


async def setup_stripe_invoice(s: Stage) -> None:
    s.stripe = StripeServer().__enter__()
    s.app.settings.stripe_api_base = s.stripe.base
    provider = {"secret_key": "sk_test_race0000000000", "webhook_secret": "whsec_race000000000"}
    await ok(s, "update_workspace", {"payment_provider": provider})
    s.invoice = await an_open_invoice(s, 5000)


def link(s: Stage, i: int) -> Call:
    return as_owner(s, "create_payment_link", {"invoice_id": s.invoice})


async def check_one_session(s: Stage, outs: list[Outcome]) -> None:
    try:
        assert len({o.result.data["id"] for o in outs if o.ok}) == 1 and len(oks(outs)) == N
        # Each call asks Stripe before taking the invoice's lock, all with one Idempotency-Key: one session.
        assert len(s.stripe.sessions) == 1, "one Checkout Session for one amount"
    finally:
        s.stripe.__exit__(None, None, None)


# -- money moving while the customer is erased ------------------------------------------------------------------


async def setup_erase_racing_money(s: Stage) -> None:
    await setup_invoice_of_1000(s)
    paid = await ok(
        s, "record_payment", {"method": "cash", "amount": 100, "invoice_id": s.invoice, "idempotency_key": key()}
    )
    s.payment = paid["id"]
    refund = {"payment_id": s.payment, "amount": 10, "idempotency_key": key()}
    s.refund_tokens = await tokens(s, "refund_payment", refund, N)
    [s.erase_token] = await tokens(s, "delete_member", {"member_id": s.member}, 1)


def erase_racing_money(s: Stage, i: int) -> Call:
    """The erase locks the customer, then their invoices and payments; a payment or refund locks the customer
    first too, so none of them waits on another in a cycle (a deadlock would answer internal_error)."""
    if i == RACER:
        return as_owner(s, "delete_member", {"member_id": s.member, "confirmation_token": s.erase_token})
    if i % 2:
        return as_owner(s, "record_payment", {"method": "cash", "amount": 50, "invoice_id": s.invoice})
    refund = {"payment_id": s.payment, "amount": 10, "confirmation_token": s.refund_tokens[i]}
    return as_owner(s, "refund_payment", refund)


async def check_erase_racing_money(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.ok for o in outs), [o.result.data for o in outs if not o.ok]
    payments = await rows(s, Payment, col(Payment.invoice_id) == s.invoice)
    assert all(p.member_id == s.member and p.reference is None for p in payments), "kept under the pseudonym"
    after = await invoice(s)
    assert after["amount_paid"] == 100 + 50 * (N // 2) and after["bill_to_name"] is None
    refunded = await ok(s, "get_payment", {"payment_id": s.payment})
    assert refunded["amount_refunded"] == 10 * (N // 2 - 1)


SCENARIOS: dict[str, Scenario] = {
    "record_payment_one_key": Scenario(
        "record_payment", setup_invoice_of_1000, pay_250, check_one_key_moves_money_once, one_key=True
    ),
    "record_payment_never_overpays": Scenario(
        "record_payment", setup_invoice_of_1000, pay_100, check_never_overpaid,
        refusals=frozenset({"conflict", "invalid_state"}),
    ),
    "refund_payment_two_of_60_on_100": Scenario(
        "refund_payment", setup_payment_of_100, refund_60, check_one_refund_of_60, refusals=frozenset({"conflict"})
    ),
    "create_payment_link_one_session": Scenario("create_payment_link", setup_stripe_invoice, link, check_one_session),
    "record_payment_and_refunds_racing_an_erase": Scenario(
        "record_payment", setup_erase_racing_money, erase_racing_money, check_erase_racing_money
    ),
}  # fmt: skip
