"""Races of the orders domain: stock and promotion limits under twenty orders, one cancellation releasing stock
once, fulfilment racing cancellation."""

from __future__ import annotations

from typing import Any

from sqlmodel import col

from favmcp.core.money import Money
from favmcp.domains.orders import service as orders
from favmcp.domains.products.models import MovementKind, Product, StockMovement
from favmcp.domains.promotions.models import Redemption, RedemptionStatus
from favmcp.registry.models import StateTransition
from tests.race_kit import RACER, Call, N, Outcome, Scenario, Stage, as_owner, member, ok, oks, rows, tokens

STOCK = 5


async def ledger(s: Stage, product_id: str) -> tuple[int, list[StockMovement]]:
    [row] = await rows(s, Product, col(Product.id) == product_id)
    return row.stock_on_hand, await rows(s, StockMovement, col(StockMovement.product_id) == product_id)


def line(s: Stage, quantity: int = 1) -> list[dict[str, Any]]:
    return [{"product_id": s.product, "quantity": quantity}]


async def setup_scarce(s: Stage) -> None:
    s.product = (await ok(s, "create_product", {"name": "Rare", "unit_amount": 1000, "initial_stock": STOCK}))["id"]
    s.members = [await member(s, f"M{i}") for i in range(4)]


async def check_scarce(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == STOCK, "exactly the stock is sold"
    assert all(o.details["reason"] == "insufficient_stock" and o.details["available"] == 0 for o in outs if not o.ok)
    on_hand, entries = await ledger(s, s.product)
    assert on_hand == 0 == sum(e.delta for e in entries)
    reserved = sum(-e.delta for e in entries if e.kind == MovementKind.order_reserve)
    assert reserved == STOCK - on_hand and len([e for e in entries if e.kind == MovementKind.order_reserve]) == STOCK


LIMIT = 5


async def setup_limited_code(s: Stage) -> None:
    s.product = (await ok(s, "create_product", {"name": "Mat", "unit_amount": 1000, "initial_stock": 100}))["id"]
    s.promotion = (await ok(s, "create_promotion", {"code": "LIMITED", "percent_off": "10", "max_redemptions": LIMIT}))[
        "id"
    ]
    s.members = [await member(s, f"M{i}") for i in range(N)]


async def check_limited_code(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == LIMIT, "the code is used exactly its limit"
    assert all(o.result.data["discount"] == 100 for o in oks(outs))
    assert all(o.details["reason"] == "limit_reached" for o in outs if not o.ok)
    used = await rows(s, Redemption, col(Redemption.promotion_id) == s.promotion)
    assert len(used) == LIMIT and all(r.status == RedemptionStatus.redeemed for r in used)
    on_hand, entries = await ledger(s, s.product)
    assert on_hand == 100 - LIMIT == sum(e.delta for e in entries), "a refused order keeps no stock"


async def paid_order(s: Stage) -> None:
    s.product = (await ok(s, "create_product", {"name": "Mat", "unit_amount": 1000, "initial_stock": 10}))["id"]
    await ok(s, "create_promotion", {"code": "BACK", "amount_off": 100, "max_redemptions": 1})
    buyer = await member(s)
    made = await ok(s, "create_order", {"member_id": buyer, "lines": line(s, 3), "promotion_code": "BACK"})
    s.order = made["id"]

    async def pay(ctx: Any) -> None:
        await orders.apply_payment(ctx, s.order, Money(made["total"], "EUR"))

    await s.app.runner.run_system(s.owner.workspace_id, "race_payment", pay)
    s.total = made["total"]


async def setup_cancels(s: Stage) -> None:
    await paid_order(s)
    s.tokens = await tokens(s, "cancel_order", {"order_id": s.order}, N)


async def check_released_once(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.result.data["status"] == "cancelled" and o.result.data["refund_due"] == s.total for o in outs)
    on_hand, entries = await ledger(s, s.product)
    assert on_hand == 10 == sum(e.delta for e in entries)
    assert len([e for e in entries if e.kind == MovementKind.order_release]) == 1, "stock released exactly once"
    [promotion] = [p for p in (await ok(s, "list_promotions"))["items"] if p["code"] == "BACK"]
    assert promotion["times_redeemed"] == 0 and promotion["remaining"] == 1
    used = await rows(s, Redemption, col(Redemption.target) == f"order:{s.order}")
    assert [r.status for r in used] == [RedemptionStatus.released], "the code's use given back once"
    moves = await rows(s, StateTransition, col(StateTransition.entity_id) == s.order)
    assert [m.to_state for m in moves].count("cancelled") == 1


async def setup_fulfil(s: Stage) -> None:
    await paid_order(s)


async def check_fulfilled_once(s: Stage, outs: list[Outcome]) -> None:
    assert all(o.result.data["status"] == "fulfilled" for o in outs)
    moves = await rows(s, StateTransition, col(StateTransition.entity_id) == s.order)
    assert [m.to_state for m in moves].count("fulfilled") == 1


async def setup_cancel_racing_fulfil(s: Stage) -> None:
    await paid_order(s)
    [s.token] = await tokens(s, "cancel_order", {"order_id": s.order}, 1)


def cancel_racing_fulfil(s: Stage, i: int) -> Call:
    if i == RACER:
        return as_owner(s, "cancel_order", {"order_id": s.order, "confirmation_token": s.token})
    return as_owner(s, "fulfil_order", {"order_id": s.order})


async def check_cancel_racing_fulfil(s: Stage, outs: list[Outcome]) -> None:
    final = (await ok(s, "get_order", {"order_id": s.order}))["status"]
    on_hand, entries = await ledger(s, s.product)
    assert on_hand == sum(e.delta for e in entries)
    if final == "cancelled":
        assert outs[RACER].ok and not any(o.ok for o in outs if o.i != RACER)
        assert on_hand == 10
    else:
        assert final == "fulfilled" and not outs[RACER].ok and on_hand == 7
        assert all(o.ok for o in outs if o.i != RACER)
    assert all(o.details["current"] in {"cancelled", "fulfilled"} for o in outs if not o.ok)


async def setup_archive_racing_orders(s: Stage) -> None:
    s.product = (await ok(s, "create_product", {"name": "Last", "unit_amount": 500, "initial_stock": 100}))["id"]
    s.members = [await member(s, f"M{i}") for i in range(4)]


def archive_racing_orders(s: Stage, i: int) -> Call:
    if i == RACER:
        return as_owner(s, "archive_product", {"product_id": s.product})
    return as_owner(s, "create_order", {"member_id": s.members[i % 4], "lines": line(s, 2)})


async def check_archive_racing_orders(s: Stage, outs: list[Outcome]) -> None:
    assert outs[RACER].ok
    placed = [o for o in oks(outs) if o.i != RACER]
    assert all(o.details["current"] == "archived" for o in outs if not o.ok), "refused only as archived"
    on_hand, entries = await ledger(s, s.product)
    assert on_hand == 100 - 2 * len(placed) == sum(e.delta for e in entries)
    assert (await ok(s, "get_product", {"product_id": s.product}))["status"] == "archived"


SCENARIOS: dict[str, Scenario] = {
    "create_order: twenty orders for five in stock": Scenario(
        "create_order",
        setup_scarce,
        lambda s, i: as_owner(s, "create_order", {"member_id": s.members[i % 4], "lines": line(s)}),
        check_scarce,
        frozenset({"conflict"}),
    ),
    "create_order: twenty orders with a code limited to five": Scenario(
        "create_order",
        setup_limited_code,
        lambda s, i: as_owner(
            s, "create_order", {"member_id": s.members[i], "lines": line(s), "promotion_code": "limited"}
        ),
        check_limited_code,
        frozenset({"conflict"}),
    ),
    "cancel_order: twenty cancels of one paid order": Scenario(
        "cancel_order",
        setup_cancels,
        lambda s, i: as_owner(s, "cancel_order", {"order_id": s.order, "confirmation_token": s.tokens[i]}),
        check_released_once,
    ),
    "fulfil_order: twenty fulfilments of one paid order": Scenario(
        "fulfil_order",
        setup_fulfil,
        lambda s, i: as_owner(s, "fulfil_order", {"order_id": s.order}),
        check_fulfilled_once,
    ),
    "archive_product racing nineteen create_order": Scenario(
        "archive_product",
        setup_archive_racing_orders,
        archive_racing_orders,
        check_archive_racing_orders,
        frozenset({"invalid_state"}),
    ),
    "cancel_order racing nineteen fulfil_order": Scenario(
        "cancel_order",
        setup_cancel_racing_fulfil,
        cancel_racing_fulfil,
        check_cancel_racing_fulfil,
        frozenset({"invalid_state"}),
    ),
}
