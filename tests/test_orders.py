"""Orders: server-computed totals, stock reserved all or nothing, the lifecycle, payments and refunds through the
contract, cancellation that gives stock and codes back exactly once; on SQLite and Postgres."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from favmcp.app import App
from favmcp.core.errors import FavError
from favmcp.core.money import Money
from favmcp.domains.orders import service as orders
from favmcp.domains.products.models import MovementKind
from favmcp.domains.promotions.models import Redemption, RedemptionStatus
from favmcp.registry.models import EventRecord
from tests.support import FakeClock, Owner, call, confirmed, error_code, gather, signup, unique_email
from tests.test_products import N, ledger, new_product, ok


async def new_member(app: App, owner: Owner, **fields: Any) -> dict[str, Any]:
    return await ok(app, owner, "create_member", {"name": "Sam Lee", "email": unique_email("sam"), **fields})


def order_args(member_id: str, *lines: tuple[str, int], **more: Any) -> dict[str, Any]:
    return {"member_id": member_id, "lines": [{"product_id": p, "quantity": q} for p, q in lines], **more}


async def pay(app: App, owner: Owner, order_id: str, amount: int, currency: str = "EUR") -> None:
    async def work(ctx: Any) -> None:
        await orders.apply_payment(ctx, order_id, Money(amount, currency))

    await app.runner.run_system(owner.workspace_id, "test_payment", work)


async def refund(app: App, owner: Owner, order_id: str, amount: int) -> None:
    async def work(ctx: Any) -> None:
        await orders.apply_refund(ctx, order_id, Money(amount, "EUR"))

    await app.runner.run_system(owner.workspace_id, "test_refund", work)


async def events(app: App, name: str, order_id: str) -> list[EventRecord]:
    async with app.db.transaction() as session:
        rows = (await session.execute(select(EventRecord).where(col(EventRecord.name) == name))).scalars()
        return [e for e in rows if e.payload.get("order_id") == order_id]


async def test_totals_are_computed_from_the_products(app: App, owner: Owner) -> None:
    member = await new_member(app, owner)
    mat = await new_product(app, owner, unit_amount=2500, tax_rate="21", initial_stock=10, sku="MAT")
    tea = await new_product(app, owner, name="Tea", unit_amount=1000, tax_rate="9", track_stock=False)
    made = await ok(app, owner, "create_order", order_args(member["id"], (mat["id"], 2), (tea["id"], 1)))
    assert made["status"] == "open" and made["customer_name"] == "Sam Lee" and made["currency"] == "EUR"
    assert [(line["net"], line["tax"], line["total"]) for line in made["lines"]] == [
        (5000, 1050, 6050),
        (1000, 90, 1090),
    ]
    assert (made["subtotal"], made["discount"], made["tax"], made["total"]) == (6000, 0, 1140, 7140)
    assert made["lines"][0]["name"] == "Mat" and made["lines"][0]["unit_amount"] == 2500
    assert made["amount_paid"] == 0 and made["amount_remaining"] == 7140 and made["refund_due"] == 0
    assert (await ok(app, owner, "get_product", {"product_id": mat["id"]}))["stock_on_hand"] == 8
    await ok(app, owner, "update_product", {"product_id": mat["id"], "unit_amount": 9999, "name": "New"})
    again = await ok(app, owner, "get_order", {"order_id": made["id"]})
    assert again["lines"] == made["lines"] and again["total"] == 7140, "lines are a snapshot of the order's moment"
    assert len(await events(app, "order.created", made["id"])) == 1


async def test_prices_that_include_tax(app: App, owner: Owner) -> None:
    await ok(app, owner, "update_workspace", {"prices_include_tax": True})
    member = await new_member(app, owner)
    product = await new_product(app, owner, unit_amount=1210, tax_rate="21", track_stock=False)
    made = await ok(app, owner, "create_order", order_args(member["id"], (product["id"], 1)))
    assert (made["subtotal"], made["tax"], made["total"]) == (1000, 210, 1210)


async def test_a_promotion_discount_is_spread_over_the_lines(app: App, owner: Owner) -> None:
    member = await new_member(app, owner)
    a = await new_product(app, owner, unit_amount=333, tax_rate="21", track_stock=False)
    b = await new_product(app, owner, unit_amount=667, tax_rate="0", track_stock=False)
    await ok(app, owner, "create_promotion", {"code": "OFF", "amount_off": 101})
    made = await ok(
        app, owner, "create_order", order_args(member["id"], (a["id"], 1), (b["id"], 1), promotion_code="off")
    )
    assert made["discount"] == 101 and sum(line["discount"] for line in made["lines"]) == 101
    assert [line["discount"] for line in made["lines"]] == [34, 67]
    assert made["subtotal"] == 1000 - 101 and made["total"] == made["subtotal"] + made["tax"]
    assert made["promotion_code"] == "OFF"
    refused = await call(app, owner.key, "create_order", order_args(member["id"], (a["id"], 1), promotion_code="nope"))
    assert error_code(refused) == "validation_failed" and refused.data["error"]["details"]["reason"] == "not_found"


async def test_a_line_short_of_stock_refuses_the_whole_order(app: App, owner: Owner) -> None:
    member = await new_member(app, owner)
    plenty = await new_product(app, owner, initial_stock=10)
    scarce = await new_product(app, owner, name="Rare", initial_stock=2)
    args = order_args(member["id"], (plenty["id"], 3), (scarce["id"], 2), (scarce["id"], 1))
    refused = await call(app, owner.key, "create_order", args)
    assert error_code(refused) == "conflict"
    details = refused.data["error"]["details"]
    assert details == {"reason": "insufficient_stock", "product_id": scarce["id"], "available": 2, "requested": 3}
    assert "Rare" in refused.data["error"]["message"]
    assert (await ok(app, owner, "get_product", {"product_id": plenty["id"]}))["stock_on_hand"] == 10
    assert (await ok(app, owner, "list_orders"))["items"] == []


async def test_archived_products_and_inactive_members_cannot_order(app: App, owner: Owner) -> None:
    member = await new_member(app, owner)
    product = await new_product(app, owner, initial_stock=3)
    await ok(app, owner, "archive_product", {"product_id": product["id"]})
    refused = await call(app, owner.key, "create_order", order_args(member["id"], (product["id"], 1)))
    assert error_code(refused) == "invalid_state" and product["id"] in refused.data["error"]["message"]
    live = await new_product(app, owner)
    live_member = await new_member(app, owner)
    assert (
        error_code(await call(app, owner.key, "create_order", order_args("mem_nope", (live["id"], 1)))) == "not_found"
    )
    await confirmed(app, owner.key, "delete_member", {"member_id": member["id"]})
    refused = await call(app, owner.key, "create_order", order_args(member["id"], (live["id"], 1)))
    assert error_code(refused) == "invalid_state"
    huge = await new_product(app, owner, unit_amount=2**53 - 1, track_stock=False)
    too_big = await call(app, owner.key, "create_order", order_args(live_member["id"], (huge["id"], 100_000)))
    assert error_code(too_big) == "validation_failed"
    usd = await new_product(app, owner, currency="USD", track_stock=False)
    other = await new_member(app, owner)
    mixed = await call(app, owner.key, "create_order", order_args(other["id"], (live["id"], 1), (usd["id"], 1)))
    assert error_code(mixed) == "validation_failed"


async def test_lifecycle_payments_and_fulfilment(app: App, owner: Owner) -> None:
    member = await new_member(app, owner)
    product = await new_product(app, owner, unit_amount=1000, tax_rate="0", initial_stock=5)
    made = await ok(app, owner, "create_order", order_args(member["id"], (product["id"], 2)))
    early = await call(app, owner.key, "fulfil_order", {"order_id": made["id"]})
    assert error_code(early) == "invalid_state" and early.data["error"]["details"]["current"] == "open"
    await pay(app, owner, made["id"], 500)
    got = await ok(app, owner, "get_order", {"order_id": made["id"]})
    assert got["status"] == "open" and got["amount_paid"] == 500 and got["amount_remaining"] == 1500
    with pytest.raises(FavError) as over:
        await pay(app, owner, made["id"], 1501)
    assert over.value.code == "conflict" and (over.value.body.details or {})["amount_remaining"] == 1500
    with pytest.raises(FavError) as currency:
        await pay(app, owner, made["id"], 100, "USD")
    assert currency.value.code == "validation_failed"
    await pay(app, owner, made["id"], 1500)
    got = await ok(app, owner, "get_order", {"order_id": made["id"]})
    assert got["status"] == "paid" and got["amount_remaining"] == 0
    assert [e.payload for e in await events(app, "order.paid", made["id"])] == [
        {"order_id": made["id"], "member_id": member["id"]}
    ]
    with pytest.raises(FavError) as closed:
        await pay(app, owner, made["id"], 1)
    assert closed.value.code == "invalid_state"

    async def read(ctx: Any) -> None:
        await orders.receivable(ctx, made["id"])

    with pytest.raises(FavError) as not_open:
        await app.runner.run_system(owner.workspace_id, "test", read)
    assert not_open.value.code == "invalid_state"
    done = await ok(app, owner, "fulfil_order", {"order_id": made["id"]})
    again = await ok(app, owner, "fulfil_order", {"order_id": made["id"]})
    assert done["status"] == "fulfilled" and again == done
    assert len(await events(app, "order.fulfilled", made["id"])) == 1
    late = await call(app, owner.key, "cancel_order", {"order_id": made["id"]})
    assert error_code(late) == "invalid_state" and late.data["error"]["details"]["current"] == "fulfilled"


async def test_receivable_reads_what_is_owed(app: App, owner: Owner) -> None:
    member = await new_member(app, owner)
    product = await new_product(app, owner, unit_amount=1000, tax_rate="0", track_stock=False)
    made = await ok(app, owner, "create_order", order_args(member["id"], (product["id"], 3)))
    await pay(app, owner, made["id"], 1000)

    async def read(ctx: Any) -> Any:
        return await orders.receivable(ctx, made["id"])

    owed = await app.runner.run_system(owner.workspace_id, "test", read)
    assert (owed.kind, owed.id, owed.member_id, owed.currency) == ("order", made["id"], member["id"], "EUR")
    assert (owed.total, owed.amount_paid, owed.amount_remaining) == (3000, 1000, 2000)


async def test_cancelling_a_paid_order_leaves_a_refund_due(app: App, owner: Owner) -> None:
    member = await new_member(app, owner)
    product = await new_product(app, owner, unit_amount=1000, tax_rate="0", initial_stock=5)
    made = await ok(app, owner, "create_order", order_args(member["id"], (product["id"], 2)))
    await pay(app, owner, made["id"], 2000)
    preview = await call(app, owner.key, "cancel_order", {"order_id": made["id"]})
    assert error_code(preview) == "confirmation_required"
    shown = preview.data["error"]["details"]["preview"]
    assert shown["refund_due"] == 2000 and shown["stock_released"][0]["quantity"] == 2
    cancelled = await confirmed(app, owner.key, "cancel_order", {"order_id": made["id"]})
    assert cancelled.ok, cancelled.data
    assert cancelled.data["status"] == "cancelled" and cancelled.data["refund_due"] == 2000
    assert (await ok(app, owner, "get_product", {"product_id": product["id"]}))["stock_on_hand"] == 5
    await refund(app, owner, made["id"], 1500)
    assert (await ok(app, owner, "get_order", {"order_id": made["id"]}))["refund_due"] == 500
    with pytest.raises(FavError) as over:
        await refund(app, owner, made["id"], 501)
    assert over.value.code == "conflict"
    again = await call(app, owner.key, "cancel_order", {"order_id": made["id"]})
    assert again.ok and again.data["status"] == "cancelled", "an already cancelled order answers at once"
    assert len(await events(app, "order.cancelled", made["id"])) == 1


async def test_a_zero_total_order_is_paid_at_once(app: App, owner: Owner) -> None:
    member = await new_member(app, owner)
    product = await new_product(app, owner, unit_amount=1000, track_stock=False)
    await ok(app, owner, "create_promotion", {"code": "FREE", "percent_off": "100"})
    made = await ok(app, owner, "create_order", order_args(member["id"], (product["id"], 1), promotion_code="FREE"))
    assert made["total"] == 0 and made["status"] == "paid"


async def test_stock_never_negative_under_twenty_concurrent_orders(app: App, owner: Owner) -> None:
    product = await new_product(app, owner, initial_stock=7)
    members = [(await new_member(app, owner))["id"] for _ in range(4)]
    results = await gather(
        *[
            call(app, owner.key, "create_order", order_args(members[i % 4], (product["id"], 1 + i % 2)))
            if i % 5
            else call(app, owner.key, "adjust_stock", {"product_id": product["id"], "delta": -1, "reason": "count"})
            for i in range(N)
        ]
    )
    assert all(r.ok or error_code(r) == "conflict" for r in results)
    on_hand, entries = await ledger(app, product["id"])
    assert on_hand >= 0 and on_hand == sum(e.delta for e in entries)
    reserved = sum(-e.delta for e in entries if e.kind == MovementKind.order_reserve)
    adjusted = sum(-e.delta for e in entries if e.kind == MovementKind.adjust and e.delta < 0)
    assert reserved + adjusted == 7 - on_hand
    placed = [r.data for r in results if r.ok and "lines" in r.data]
    assert reserved == sum(o["lines"][0]["quantity"] for o in placed)
    assert on_hand < 2, "orders were refused only when stock ran short"


async def test_twenty_concurrent_cancels_release_stock_once(app: App, owner: Owner) -> None:
    member = await new_member(app, owner)
    product = await new_product(app, owner, initial_stock=10)
    await ok(app, owner, "create_promotion", {"code": "ONE", "percent_off": "5", "max_redemptions": 3})
    made = await ok(app, owner, "create_order", order_args(member["id"], (product["id"], 4), promotion_code="ONE"))
    previews = await gather(*[call(app, owner.key, "cancel_order", {"order_id": made["id"]}) for _ in range(N)])
    tokens = [p.data["error"]["details"]["confirmation_token"] for p in previews]
    results = await gather(
        *[call(app, owner.key, "cancel_order", {"order_id": made["id"], "confirmation_token": t}) for t in tokens]
    )
    assert all(r.ok and r.data["status"] == "cancelled" for r in results), [r.data for r in results if not r.ok]
    on_hand, entries = await ledger(app, product["id"])
    assert on_hand == 10 == sum(e.delta for e in entries)
    assert len([e for e in entries if e.kind == MovementKind.order_release]) == 1
    promotion = (await ok(app, owner, "list_promotions"))["items"][0]
    assert promotion["times_redeemed"] == 0 and promotion["remaining"] == 3
    async with app.db.transaction() as session:
        used = list((await session.execute(select(Redemption))).scalars())
    assert [r.status for r in used if r.target == f"order:{made['id']}"] == [RedemptionStatus.released]
    assert len(await events(app, "order.cancelled", made["id"])) == 1


async def test_list_orders_filters_and_pages(app: App, owner: Owner, clock: FakeClock) -> None:
    ann, bob = await new_member(app, owner, name="Ann"), await new_member(app, owner, name="Bob")
    product = await new_product(app, owner, unit_amount=100, tax_rate="0", track_stock=False)
    start = clock.now()
    made = []
    for i in range(5):
        made.append(await ok(app, owner, "create_order", order_args((ann if i % 2 else bob)["id"], (product["id"], 1))))
        clock.advance(days=1)
    await pay(app, owner, made[0]["id"], 100)
    by_ann = await ok(app, owner, "list_orders", {"member_id": ann["id"]})
    assert [o["id"] for o in by_ann["items"]] == [made[3]["id"], made[1]["id"]]
    paid = await ok(app, owner, "list_orders", {"status": "paid"})
    assert [o["id"] for o in paid["items"]] == [made[0]["id"]] and paid["items"][0]["amount_remaining"] == 0
    window = {
        "created_from": (start + timedelta(days=1)).isoformat(),
        "created_to": (start + timedelta(days=3)).isoformat(),
    }
    assert [o["id"] for o in (await ok(app, owner, "list_orders", window))["items"]] == [made[2]["id"], made[1]["id"]]
    seen, cursor = [], None
    while True:
        page = await ok(app, owner, "list_orders", {"limit": 2, **({"cursor": cursor} if cursor else {})})
        seen += [o["id"] for o in page["items"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == [o["id"] for o in reversed(made)]
    bad = await call(
        app, owner.key, "list_orders", {"created_from": window["created_to"], "created_to": window["created_from"]}
    )
    assert error_code(bad) == "validation_failed"


async def test_erase_merge_and_export_carry_the_orders(app: App, owner: Owner) -> None:
    ann, dup = await new_member(app, owner, name="Ann"), await new_member(app, owner, name="Ann Dup")
    product = await new_product(app, owner, track_stock=False)
    await ok(app, owner, "create_promotion", {"code": "HI", "percent_off": "10"})
    first = await ok(
        app,
        owner,
        "create_order",
        order_args(dup["id"], (product["id"], 1), promotion_code="HI", note="leave at the door"),
    )
    merged = await confirmed(app, owner.key, "merge_members", {"survivor_id": ann["id"], "duplicate_id": dup["id"]})
    assert merged.ok, merged.data
    moved = await ok(app, owner, "get_order", {"order_id": first["id"]})
    assert moved["member_id"] == ann["id"]
    by_old_id = await ok(app, owner, "list_orders", {"member_id": dup["id"]})
    assert [o["id"] for o in by_old_id["items"]] == [first["id"]], "the merged id lists the survivor's orders"
    export = await ok(app, owner, "export_member_data", {"member_id": ann["id"]})
    assert [o["id"] for o in export["records"]["orders"]] == [first["id"]]
    assert export["records"]["promotion_redemptions"][0]["target"] == f"order:{first['id']}"
    erased = await confirmed(app, owner.key, "delete_member", {"member_id": ann["id"]})
    assert erased.ok, erased.data
    kept = await ok(app, owner, "get_order", {"order_id": first["id"]})
    assert kept["member_id"] == ann["id"] and kept["customer_name"] is None and kept["note"] is None
    assert kept["total"] == first["total"]


async def test_another_workspace_sees_nothing(app: App, owner: Owner) -> None:
    member = await new_member(app, owner)
    product = await new_product(app, owner, initial_stock=2)
    made = await ok(app, owner, "create_order", order_args(member["id"], (product["id"], 1)))
    other = await signup(app)
    theirs = await new_member(app, other)
    for tool, args in (
        ("get_order", {"order_id": made["id"]}),
        ("fulfil_order", {"order_id": made["id"]}),
        ("cancel_order", {"order_id": made["id"]}),
        ("create_order", order_args(theirs["id"], (product["id"], 1))),
        ("create_order", order_args(member["id"], (product["id"], 1))),
    ):
        assert error_code(await call(app, other.key, tool, args)) == "not_found", tool
    assert (await ok(app, other, "list_orders"))["items"] == []
    assert error_code(await call(app, other.key, "list_orders", {"member_id": member["id"]})) == "not_found"


async def test_unpaid_orders_show_on_the_customers_profile(app: App, owner: Owner) -> None:
    member = await new_member(app, owner)
    mat = await new_product(app, owner, unit_amount=2500, initial_stock=10, sku="MATS")
    first = await ok(app, owner, "create_order", order_args(member["id"], (mat["id"], 2)))
    second = await ok(app, owner, "create_order", order_args(member["id"], (mat["id"], 1)))
    await pay(app, owner, first["id"], 1000)
    await pay(app, owner, second["id"], second["total"])
    money = (await ok(app, owner, "get_member_profile", {"member_id": member["id"]}))["money"]
    assert [(o["id"], o["total"], o["amount_remaining"], o["currency"]) for o in money["open_orders"]] == [
        (first["id"], first["total"], first["total"] - 1000, "EUR")
    ], "the paid order no longer owes anything"
