"""Payments and refunds (domain-rules.md "Payments and refunds"), on SQLite and Postgres, through the runner."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from favmcp.app import App
from favmcp.domains.payments.models import Payment
from favmcp.registry.models import EventRecord
from tests.support import FakeClock, Owner, call, confirmed, error_code, gather, join, unique_email

N = 20


async def ok(app: App, owner: Owner, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await call(app, owner.key, tool, args or {})
    assert result.ok, (tool, result.data)
    return result.data


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


async def open_invoice(app: App, owner: Owner, amount: int = 10000, member_id: str | None = None) -> dict[str, Any]:
    member_id = (
        member_id or (await ok(app, owner, "create_member", {"name": "Ada Client", "email": unique_email("ada")}))["id"]
    )
    line = {"description": "Course", "unit_amount": amount, "quantity": 1, "tax_rate": "0"}
    made = await ok(app, owner, "create_invoice", {"member_id": member_id, "lines": [line]})
    return await ok(app, owner, "finalize_invoice", {"invoice_id": made["id"]})


async def open_order(app: App, owner: Owner, amount: int = 4000) -> dict[str, Any]:
    member = await ok(app, owner, "create_member", {"name": "Sam Lee", "email": unique_email("sam")})
    product = await ok(
        app, owner, "create_product", {"name": "Mat", "unit_amount": amount, "tax_rate": "0", "track_stock": False}
    )
    line = {"product_id": product["id"], "quantity": 1}
    return await ok(app, owner, "create_order", {"member_id": member["id"], "lines": [line]})


async def record(app: App, owner: Owner, amount: int, **target: str) -> dict[str, Any]:
    args = {"method": "cash", "amount": amount, "idempotency_key": key(), **target}
    return await ok(app, owner, "record_payment", args)


async def refund(app: App, owner: Owner, payment_id: str, amount: int | None = None) -> Any:
    args: dict[str, Any] = {"payment_id": payment_id, "idempotency_key": key()}
    if amount is not None:
        args["amount"] = amount
    return await confirmed(app, owner.key, "refund_payment", args)


async def invoice(app: App, owner: Owner, invoice_id: str) -> dict[str, Any]:
    return await ok(app, owner, "get_invoice", {"invoice_id": invoice_id})


async def test_partial_payments_leave_amount_remaining_then_pay_the_invoice(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner, 10000)
    first = await record(app, owner, 3000, invoice_id=inv["id"])
    assert (first["status"], first["amount"], first["currency"], first["amount_remaining"]) == (
        "succeeded", 3000, "EUR", 7000,
    )  # fmt: skip
    assert (await invoice(app, owner, inv["id"]))["status"] == "open"
    too_much = await call(
        app, owner.key, "record_payment",
        {"method": "bank_transfer", "amount": 7001, "invoice_id": inv["id"], "idempotency_key": key()},
    )  # fmt: skip
    assert error_code(too_much) == "conflict"
    assert too_much.data["error"]["details"]["amount_remaining"] == 7000
    last = await record(app, owner, 7000, invoice_id=inv["id"])
    assert last["amount_remaining"] == 0
    after = await invoice(app, owner, inv["id"])
    assert (after["status"], after["amount_paid"], after["amount_remaining"]) == ("paid", 10000, 0)
    listed = await ok(app, owner, "list_payments", {"invoice_id": inv["id"]})
    assert sorted(p["amount"] for p in listed["items"]) == [3000, 7000]
    paid_again = await call(
        app, owner.key, "record_payment",
        {"method": "cash", "amount": 1, "invoice_id": inv["id"], "idempotency_key": key()},
    )  # fmt: skip
    assert error_code(paid_again) == "invalid_state"


async def test_record_payment_needs_a_key_one_target_and_the_right_currency(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner)
    no_key = await call(app, owner.key, "record_payment", {"method": "cash", "amount": 10, "invoice_id": inv["id"]})
    assert error_code(no_key) == "validation_failed"
    both = await call(
        app, owner.key, "record_payment",
        {"method": "cash", "amount": 10, "invoice_id": inv["id"], "order_id": "ord_x", "idempotency_key": key()},
    )  # fmt: skip
    assert error_code(both) == "validation_failed"
    usd = await call(
        app, owner.key, "record_payment",
        {"method": "cash", "amount": 10, "currency": "USD", "invoice_id": inv["id"], "idempotency_key": key()},
    )  # fmt: skip
    assert error_code(usd) == "validation_failed"
    unknown = await call(
        app, owner.key, "record_payment",
        {"method": "cash", "amount": 10, "invoice_id": "inv_nope", "idempotency_key": key()},
    )  # fmt: skip
    assert error_code(unknown) == "not_found"


async def test_a_payment_on_an_order_pays_it(app: App, owner: Owner) -> None:
    order = await open_order(app, owner, 4000)
    paid = await record(app, owner, 4000, order_id=order["id"])
    assert (paid["order_id"], paid["amount_remaining"]) == (order["id"], 0)
    assert (await ok(app, owner, "get_order", {"order_id": order["id"]}))["status"] == "paid"
    back = await refund(app, owner, paid["id"], 1500)
    assert back.ok and back.data["status"] == "succeeded"


async def test_twenty_calls_with_one_key_move_money_once(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner, 10000)
    args = {"method": "card_terminal", "amount": 2500, "invoice_id": inv["id"], "idempotency_key": key()}
    answers = await gather(*[call(app, owner.key, "record_payment", dict(args)) for _ in range(N)])
    assert all(a.ok for a in answers), [a.data for a in answers if not a.ok]
    assert len({repr(a.data) for a in answers}) == 1
    assert (await invoice(app, owner, inv["id"]))["amount_paid"] == 2500
    assert len((await ok(app, owner, "list_payments", {"invoice_id": inv["id"]}))["items"]) == 1


async def test_refunds_add_up_to_partially_refunded_then_refunded(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner, 10000)
    paid = await record(app, owner, 10000, invoice_id=inv["id"])
    first = await refund(app, owner, paid["id"], 4000)
    assert first.ok and (first.data["status"], first.data["amount"]) == ("succeeded", 4000)
    payment = await ok(app, owner, "get_payment", {"payment_id": paid["id"]})
    assert (payment["status"], payment["amount_refunded"], payment["amount_refundable"]) == (
        "partially_refunded", 4000, 6000,
    )  # fmt: skip
    beyond = await call(
        app, owner.key, "refund_payment", {"payment_id": paid["id"], "amount": 6001, "idempotency_key": key()}
    )  # refused at the preview already: there is nothing to confirm
    assert error_code(beyond) == "conflict" and beyond.data["error"]["details"]["amount_refundable"] == 6000
    rest = await refund(app, owner, paid["id"])  # no amount: all that is refundable
    assert rest.ok and rest.data["amount"] == 6000
    payment = await ok(app, owner, "get_payment", {"payment_id": paid["id"]})
    assert (payment["status"], payment["amount_refunded"], len(payment["refunds"])) == ("refunded", 10000, 2)
    assert (await invoice(app, owner, inv["id"]))["amount_refunded"] == 10000
    nothing = await call(app, owner.key, "refund_payment", {"payment_id": paid["id"], "idempotency_key": key()})
    assert error_code(nothing) == "invalid_state"
    refunds = await ok(app, owner, "list_refunds", {"payment_id": paid["id"]})
    assert [r["amount"] for r in refunds["items"]] == [6000, 4000]
    async with app.db.transaction() as session:
        mine = col(EventRecord.workspace_id) == owner.workspace_id
        names = (await session.execute(select(col(EventRecord.name)).where(mine))).scalars().all()
    assert names.count("payment.refunded") == 2 and names.count("payment.succeeded") == 1


async def test_two_simultaneous_refunds_of_60_on_100_one_succeeds(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner, 100)
    paid = await record(app, owner, 100, invoice_id=inv["id"])
    args = [{"payment_id": paid["id"], "amount": 60, "idempotency_key": key()} for _ in range(2)]
    previews = await gather(*[call(app, owner.key, "refund_payment", a) for a in args])
    tokens = [p.data["error"]["details"]["confirmation_token"] for p in previews]
    results = await gather(
        *[
            call(app, owner.key, "refund_payment", {**a, "confirmation_token": t})
            for a, t in zip(args, tokens, strict=True)
        ]
    )
    assert sorted(str(error_code(r)) for r in results) == ["None", "conflict"]
    payment = await ok(app, owner, "get_payment", {"payment_id": paid["id"]})
    assert (payment["amount_refunded"], payment["amount_refundable"]) == (60, 40)


async def test_twenty_concurrent_refunds_never_exceed_the_payment(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner, 1000)
    paid = await record(app, owner, 1000, invoice_id=inv["id"])
    args = [{"payment_id": paid["id"], "amount": 300, "idempotency_key": key()} for _ in range(N)]
    previews = await gather(*[call(app, owner.key, "refund_payment", a) for a in args])
    tokens = [p.data["error"]["details"]["confirmation_token"] for p in previews]
    results = await gather(
        *[
            call(app, owner.key, "refund_payment", {**a, "confirmation_token": t})
            for a, t in zip(args, tokens, strict=True)
        ]
    )
    assert sum(r.ok for r in results) == 3
    assert {error_code(r) for r in results if not r.ok} == {"conflict"}
    payment = await ok(app, owner, "get_payment", {"payment_id": paid["id"]})
    assert (payment["amount_refunded"], payment["status"]) == (900, "partially_refunded")


async def test_staff_cannot_refund_and_previews_change_nothing(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner, 1000)
    paid = await record(app, owner, 1000, invoice_id=inv["id"])
    staff = await join(app, owner, role="staff")
    denied = await call(app, staff.key, "refund_payment", {"payment_id": paid["id"], "idempotency_key": key()})
    assert error_code(denied) == "forbidden"
    preview = await call(app, owner.key, "refund_payment", {"payment_id": paid["id"], "idempotency_key": key()})
    assert error_code(preview) == "confirmation_required"
    shown = preview.data["error"]["details"]["preview"]
    assert (shown["amount"], shown["amount_refundable"], shown["through_provider"]) == (1000, 1000, False)
    assert (await ok(app, owner, "get_payment", {"payment_id": paid["id"]}))["amount_refunded"] == 0


async def test_lists_filter_and_page(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner, 10000)
    for amount in (100, 200, 300):
        await record(app, owner, amount, invoice_id=inv["id"])
    await ok(
        app, owner, "record_payment",
        {"method": "bank_transfer", "amount": 400, "invoice_id": inv["id"], "idempotency_key": key()},
    )  # fmt: skip
    first = await ok(app, owner, "list_payments", {"limit": 2, "method": "cash"})
    assert [p["amount"] for p in first["items"]] == [300, 200] and first["has_more"]
    rest = await ok(app, owner, "list_payments", {"limit": 2, "method": "cash", "cursor": first["next_cursor"]})
    assert [p["amount"] for p in rest["items"]] == [100] and not rest["has_more"]
    assert [p["amount"] for p in (await ok(app, owner, "list_payments", {"method": "bank_transfer"}))["items"]] == [400]
    member = (await invoice(app, owner, inv["id"]))["member_id"]
    assert len((await ok(app, owner, "list_payments", {"member_id": member}))["items"]) == 4
    other = await call(app, (await _other(app)).key, "get_payment", {"payment_id": first["items"][0]["id"]})
    assert error_code(other) == "not_found"


async def _other(app: App) -> Owner:
    from tests.support import signup

    return await signup(app)


async def test_a_payment_counts_as_the_customers_activity_and_spend(app: App, owner: Owner, clock: FakeClock) -> None:
    inv = await open_invoice(app, owner, 5000)
    clock.advance(days=3)
    paid = await record(app, owner, 5000, invoice_id=inv["id"])
    profile = await ok(app, owner, "get_member_profile", {"member_id": inv["member_id"]})
    assert profile["money"]["lifetime_spend"] == 5000
    assert datetime.fromisoformat(profile["last_activity_at"]) == clock.now()
    clock.advance(days=1)
    await refund(app, owner, paid["id"], 2000)
    profile = await ok(app, owner, "get_member_profile", {"member_id": inv["member_id"]})
    assert profile["money"]["lifetime_spend"] == 3000
    assert datetime.fromisoformat(profile["last_activity_at"]) < clock.now(), "a refund is not the customer's doing"
    async with app.db.transaction() as session:
        rows = (await session.execute(select(Payment).where(col(Payment.invoice_id) == inv["id"]))).scalars().all()
        assert len(rows) == 1 and rows[0].amount_applied == 5000


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("pay"), st.integers(min_value=1, max_value=700)),
        st.tuples(st.just("refund"), st.tuples(st.integers(0, 5), st.integers(min_value=1, max_value=400))),
        st.tuples(st.just("refund_all"), st.tuples(st.integers(0, 5), st.just(0))),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
async def test_paid_refunded_remaining_and_status_agree_with_the_ledgers(
    app: App, owner: Owner, steps: list[tuple[str, Any]]
) -> None:
    inv = await open_invoice(app, owner, 1000)
    paid: dict[str, int] = {}  # payment id -> amount
    refunded: dict[str, int] = {}
    for kind, value in steps:
        if kind == "pay":
            answer = await call(
                app, owner.key, "record_payment",
                {"method": "cash", "amount": value, "invoice_id": inv["id"], "idempotency_key": key()},
            )  # fmt: skip
            fits = sum(paid.values()) + value <= 1000 and sum(paid.values()) < 1000
            assert answer.ok == fits, answer.data
            if answer.ok:
                paid[answer.data["id"]] = value
                refunded[answer.data["id"]] = 0
        elif paid:
            index, amount = value
            payment_id = list(paid)[index % len(paid)]
            left = paid[payment_id] - refunded[payment_id]
            wanted = amount or left
            args: dict[str, Any] = {"payment_id": payment_id, "idempotency_key": key()}
            if amount:
                args["amount"] = amount
            answer = await call(app, owner.key, "refund_payment", args)
            if 0 < wanted <= left:
                token = answer.data["error"]["details"]["confirmation_token"]
                done = await call(app, owner.key, "refund_payment", {**args, "confirmation_token": token})
                assert done.ok and done.data["status"] == "succeeded", done.data
                refunded[payment_id] += wanted
            else:
                assert error_code(answer) in ("conflict", "invalid_state"), answer.data
        now = await invoice(app, owner, inv["id"])
        assert now["amount_paid"] == sum(paid.values())
        assert now["amount_refunded"] == sum(refunded.values())
        assert now["amount_remaining"] == 1000 - sum(paid.values())
        assert now["status"] == ("paid" if sum(paid.values()) == 1000 else "open")
        for payment_id, amount in paid.items():
            shown = await ok(app, owner, "get_payment", {"payment_id": payment_id})
            back = refunded[payment_id]
            status = "succeeded" if back == 0 else "refunded" if back == amount else "partially_refunded"
            assert (shown["amount"], shown["amount_refunded"], shown["status"]) == (amount, back, status)
            assert shown["amount_refundable"] == amount - back
            assert sum(r["amount"] for r in shown["refunds"] if r["status"] == "succeeded") == back


async def test_merge_moves_payments_export_shows_them_and_erase_keeps_them_pseudonymous(app: App, owner: Owner) -> None:
    inv = await open_invoice(app, owner, 2000)
    paid = await ok(
        app, owner, "record_payment",
        {"method": "bank_transfer", "amount": 2000, "invoice_id": inv["id"], "reference": "Transfer A. Client",
         "idempotency_key": key()},
    )  # fmt: skip
    await refund(app, owner, paid["id"], 500)
    survivor = (await ok(app, owner, "create_member", {"name": "Ada C.", "email": unique_email("ada2")}))["id"]
    merged = await confirmed(
        app, owner.key, "merge_members", {"survivor_id": survivor, "duplicate_id": inv["member_id"]}
    )
    assert merged.ok, merged.data
    moved = await ok(app, owner, "get_payment", {"payment_id": paid["id"]})
    assert moved["member_id"] == survivor
    exported = await ok(app, owner, "export_member_data", {"member_id": survivor})
    assert [p["id"] for p in exported["records"]["payments"]] == [paid["id"]]
    assert [r["amount"] for r in exported["records"]["refunds"]] == [500]
    erased = await confirmed(app, owner.key, "delete_member", {"member_id": survivor})
    assert erased.ok, erased.data
    kept = await ok(app, owner, "get_payment", {"payment_id": paid["id"]})
    assert (kept["member_id"], kept["amount"], kept["amount_refunded"], kept["reference"]) == (
        survivor, 2000, 500, None,
    )  # fmt: skip
