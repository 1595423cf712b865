"""Products and stock: the Products rules of domain-rules.md, on SQLite and Postgres."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from favmcp.app import App
from favmcp.domains.products.models import Product, StockMovement
from tests.support import Owner, call, error_code, gather, signup

N = 20


async def ok(app: App, owner: Owner, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await call(app, owner.key, tool, args or {})
    assert result.ok, (tool, result.data)
    return result.data


async def new_product(app: App, owner: Owner, **fields: Any) -> dict[str, Any]:
    return await ok(app, owner, "create_product", {"name": "Mat", "unit_amount": 2500, "tax_rate": "21", **fields})


async def ledger(app: App, product_id: str) -> tuple[int, list[StockMovement]]:
    """The product's stock_on_hand and its ledger entries, straight from the database."""
    async with app.db.transaction() as session:
        product = (await session.execute(select(Product).where(col(Product.id) == product_id))).scalar_one()
        stmt = select(StockMovement).where(col(StockMovement.product_id) == product_id)
        return product.stock_on_hand, list((await session.execute(stmt)).scalars())


async def test_create_product_with_workspace_currency_and_initial_stock(app: App, owner: Owner) -> None:
    made = await new_product(app, owner, sku="MAT-1", initial_stock=7, description="Cork")
    assert made["currency"] == "EUR" and made["unit_amount"] == 2500 and made["tax_rate"] == "21"
    assert made["stock_on_hand"] == 7 and made["track_stock"] and made["status"] == "active"
    got = await ok(app, owner, "get_product", {"product_id": made["id"]})
    assert got["movements_total"] == 1 and got["recent_movements"][0]["kind"] == "adjust"
    usd = await new_product(app, owner, currency="usd", track_stock=False)
    assert usd["currency"] == "USD" and usd["stock_on_hand"] == 0
    refused = await call(
        app, owner.key, "create_product", {"name": "X", "unit_amount": 1, "track_stock": False, "initial_stock": 3}
    )
    assert error_code(refused) == "validation_failed"
    assert error_code(await call(app, owner.key, "create_product", {"name": "X", "unit_amount": 1.5})) == (
        "validation_failed"
    )


async def test_sku_is_unique_among_active_products(app: App, owner: Owner) -> None:
    first = await new_product(app, owner, sku="SKU-1")
    clash = await call(app, owner.key, "create_product", {"name": "Other", "unit_amount": 1, "sku": "SKU-1"})
    assert error_code(clash) == "conflict" and clash.data["error"]["details"]["existing_product_id"] == first["id"]
    other = await new_product(app, owner, sku="SKU-2")
    moved = await call(app, owner.key, "update_product", {"product_id": other["id"], "sku": "SKU-1"})
    assert error_code(moved) == "conflict"
    racing = await gather(
        *[call(app, owner.key, "create_product", {"name": f"R{i}", "unit_amount": 1, "sku": "RACE"}) for i in range(8)]
    )
    assert len([r for r in racing if r.ok]) == 1
    assert all(error_code(r) == "conflict" for r in racing if not r.ok)
    await ok(app, owner, "archive_product", {"product_id": first["id"]})
    again = await new_product(app, owner, sku="SKU-1")
    assert again["id"] != first["id"], "an archived product's SKU is free again"


async def test_update_keeps_fields_left_out_and_clears_nulls(app: App, owner: Owner) -> None:
    made = await new_product(app, owner, sku="A", description="Long text")
    updated = await ok(app, owner, "update_product", {"product_id": made["id"], "unit_amount": 3000})
    assert updated["unit_amount"] == 3000 and updated["sku"] == "A" and updated["description"] == "Long text"
    cleared = await ok(app, owner, "update_product", {"product_id": made["id"], "description": None, "tax_rate": "9"})
    assert cleared["description"] is None and cleared["tax_rate"] == "9" and cleared["name"] == "Mat"
    refused = await call(app, owner.key, "update_product", {"product_id": made["id"], "name": None})
    assert error_code(refused) == "validation_failed"


async def test_archive_is_idempotent_and_blocks_updates(app: App, owner: Owner) -> None:
    made = await new_product(app, owner)
    first = await ok(app, owner, "archive_product", {"product_id": made["id"]})
    again = await ok(app, owner, "archive_product", {"product_id": made["id"]})
    assert first["status"] == "archived" and again == first
    assert error_code(await call(app, owner.key, "update_product", {"product_id": made["id"], "name": "B"})) == (
        "invalid_state"
    )
    listed = await ok(app, owner, "list_products")
    assert made["id"] not in [p["id"] for p in listed["items"]]
    archived = await ok(app, owner, "list_products", {"status": "archived"})
    assert [p["id"] for p in archived["items"]] == [made["id"]]


async def test_list_products_pages_and_searches(app: App, owner: Owner) -> None:
    ids = [(await new_product(app, owner, name=f"Block {i}", sku=f"BLK-{i}"))["id"] for i in range(5)]
    await new_product(app, owner, name="Strap 100%")
    seen, cursor = [], None
    while True:
        page = await ok(
            app, owner, "list_products", {"limit": 2, "text": "blk", **({"cursor": cursor} if cursor else {})}
        )
        seen += [p["id"] for p in page["items"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == list(reversed(ids))
    assert [p["name"] for p in (await ok(app, owner, "list_products", {"text": "100%"}))["items"]] == ["Strap 100%"]
    assert (await ok(app, owner, "list_products", {"text": "%"}))["items"][0]["name"] == "Strap 100%"


async def test_adjust_stock_refuses_below_zero_naming_the_stock(app: App, owner: Owner) -> None:
    made = await new_product(app, owner, initial_stock=3)
    added = await ok(app, owner, "adjust_stock", {"product_id": made["id"], "delta": 5, "reason": "delivery"})
    assert added["product"]["stock_on_hand"] == 8 and added["movement"]["reason"] == "delivery"
    refused = await call(app, owner.key, "adjust_stock", {"product_id": made["id"], "delta": -9, "reason": "count"})
    assert error_code(refused) == "conflict"
    assert refused.data["error"]["details"]["available"] == 8 and "8 available" in refused.data["error"]["message"]
    for bad in ({"delta": 0, "reason": "x"}, {"delta": 1, "reason": ""}, {"delta": 1}):
        assert error_code(await call(app, owner.key, "adjust_stock", {"product_id": made["id"], **bad})) == (
            "validation_failed"
        )
    untracked = await new_product(app, owner, track_stock=False)
    refused = await call(app, owner.key, "adjust_stock", {"product_id": untracked["id"], "delta": 1, "reason": "x"})
    assert error_code(refused) == "invalid_state"
    on_hand, entries = await ledger(app, made["id"])
    assert on_hand == 8 == sum(e.delta for e in entries)


async def test_stock_never_goes_negative_under_twenty_adjustments(app: App, owner: Owner) -> None:
    made = await new_product(app, owner, initial_stock=5)
    results = await gather(
        *[
            call(app, owner.key, "adjust_stock", {"product_id": made["id"], "delta": -1, "reason": f"sold {i}"})
            for i in range(N)
        ]
    )
    assert len([r for r in results if r.ok]) == 5
    assert all(
        error_code(r) == "conflict" and r.data["error"]["details"]["available"] == 0 for r in results if not r.ok
    )
    on_hand, entries = await ledger(app, made["id"])
    assert on_hand == 0 == sum(e.delta for e in entries) and len(entries) == 6


async def test_another_workspace_sees_nothing(app: App, owner: Owner) -> None:
    made = await new_product(app, owner, sku="MINE")
    other = await signup(app)
    for tool, args in (
        ("get_product", {"product_id": made["id"]}),
        ("update_product", {"product_id": made["id"], "name": "Theirs"}),
        ("archive_product", {"product_id": made["id"]}),
        ("adjust_stock", {"product_id": made["id"], "delta": 1, "reason": "x"}),
    ):
        assert error_code(await call(app, other.key, tool, args)) == "not_found", tool
    assert (await ok(app, other, "list_products"))["items"] == []
    assert (await call(app, other.key, "create_product", {"name": "Same", "unit_amount": 1, "sku": "MINE"})).ok
