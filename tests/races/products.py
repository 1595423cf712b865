"""Races of the products domain: SKUs, updates, archiving and stock, twenty calls at once."""

from __future__ import annotations

from sqlmodel import col

from favmcp.domains.products.models import Product, StockMovement
from tests.race_kit import Call, N, Outcome, Scenario, Stage, as_owner, changed_by, ok, oks, rows


async def product(s: Stage, **fields: object) -> str:
    made = await ok(s, "create_product", {"name": "Mat", "unit_amount": 2500, **fields})
    return str(made["id"])


async def stock(s: Stage, product_id: str) -> tuple[int, int]:
    """stock_on_hand and the ledger sum, from the database."""
    [row] = await rows(s, Product, col(Product.id) == product_id)
    entries = await rows(s, StockMovement, col(StockMovement.product_id) == product_id)
    return row.stock_on_hand, sum(e.delta for e in entries)


async def nothing(s: Stage) -> None:
    s.sku = f"SKU-{id(s)}"


async def check_one_sku(s: Stage, outs: list[Outcome]) -> None:
    winners = oks(outs)
    assert len(winners) == 1, "one active product per SKU"
    winner = winners[0].result.data["id"]
    assert all(o.details["existing_product_id"] == winner for o in outs if not o.ok)
    listed = (await ok(s, "list_products", {"text": s.sku}))["items"]
    assert [p["id"] for p in listed] == [winner]


async def setup_product(s: Stage) -> None:
    s.product = await product(s, initial_stock=4)


async def check_updated(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N
    got = await ok(s, "get_product", {"product_id": s.product})
    i = int(got["name"].removeprefix("Mat "))
    assert got["unit_amount"] == 1000 + i, "name and price come from one call, never a mix"
    assert got["stock_on_hand"] == 4


async def check_archived_once(s: Stage, outs: list[Outcome]) -> None:
    assert len(oks(outs)) == N and all(o.result.data["status"] == "archived" for o in outs)
    assert len(await changed_by(s, outs)) == 1


def adjust(s: Stage, i: int) -> Call:
    return as_owner(s, "adjust_stock", {"product_id": s.product, "delta": -1 if i % 4 else 1, "reason": f"r{i}"})


async def check_stock(s: Stage, outs: list[Outcome]) -> None:
    on_hand, ledger = await stock(s, s.product)
    assert on_hand >= 0 and on_hand == ledger, "stock equals the ledger and never goes below zero"
    moved = sum(o.call.args["delta"] for o in oks(outs))
    assert on_hand == 4 + moved
    assert all(o.code == "conflict" and o.details["reason"] == "insufficient_stock" for o in outs if not o.ok)


SCENARIOS: dict[str, Scenario] = {
    "create_product: twenty creates of one SKU": Scenario(
        "create_product",
        nothing,
        lambda s, i: as_owner(s, "create_product", {"name": f"P{i}", "unit_amount": 100, "sku": s.sku}),
        check_one_sku,
        frozenset({"conflict"}),
    ),
    "update_product: twenty updates of one product": Scenario(
        "update_product",
        setup_product,
        lambda s, i: as_owner(
            s, "update_product", {"product_id": s.product, "name": f"Mat {i}", "unit_amount": 1000 + i}
        ),
        check_updated,
    ),
    "archive_product: twenty archives of one product": Scenario(
        "archive_product",
        setup_product,
        lambda s, i: as_owner(s, "archive_product", {"product_id": s.product}),
        check_archived_once,
    ),
    "adjust_stock: twenty adjustments of little stock": Scenario(
        "adjust_stock",
        setup_product,
        adjust,
        check_stock,
        frozenset({"conflict"}),
    ),
}
