"""Promotions: codes, validity, limits counted under concurrency, and why a code does not apply."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from favmcp.app import App
from favmcp.core.errors import FavError
from favmcp.core.money import Money
from favmcp.domains.promotions import service as promotions
from favmcp.domains.promotions.models import Promotion, Redemption, RedemptionStatus
from tests.support import FakeClock, Owner, call, error_code, gather, signup
from tests.test_orders import new_member
from tests.test_products import N, new_product, ok


async def new_promotion(app: App, owner: Owner, **fields: Any) -> dict[str, Any]:
    return await ok(app, owner, "create_promotion", {"code": "summer10", "percent_off": "10", **fields})


async def check(app: App, owner: Owner, code: str, member_id: str, **basket: Any) -> dict[str, Any]:
    args = {"code": code, "member_id": member_id, **({} if "lines" in basket else {"subtotal": 10000}), **basket}
    return await ok(app, owner, "validate_promotion", args)


async def redemptions(app: App, promotion_id: str) -> list[Redemption]:
    async with app.db.transaction() as session:
        stmt = select(Redemption).where(col(Redemption.promotion_id) == promotion_id)
        return list((await session.execute(stmt)).scalars())


async def test_create_normalises_the_code_and_keeps_it_unique(app: App, owner: Owner) -> None:
    made = await new_promotion(app, owner, code="  Summer10 ")
    assert made["code"] == "SUMMER10" and made["kind"] == "percent" and made["percent_off"] == "10"
    assert made["currency"] == "EUR" and made["times_redeemed"] == 0 and made["remaining"] is None
    clash = await call(app, owner.key, "create_promotion", {"code": "SUMMER10", "amount_off": 500})
    assert error_code(clash) == "conflict"
    assert clash.data["error"]["details"]["existing_promotion_id"] == made["id"]
    for bad in (
        {"code": "X1"},
        {"code": "X1", "percent_off": "10", "amount_off": 100},
        {"code": "X1", "percent_off": "0"},
        {"code": "X 1", "amount_off": 100},
        {"code": "X1", "amount_off": 0},
        {"code": "X1", "amount_off": 100, "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"},
        {"code": "X1", "amount_off": 100, "ends_at": "2001-01-01T00:00:00Z"},
    ):
        assert error_code(await call(app, owner.key, "create_promotion", bad)) == "validation_failed", bad
    stopped = await ok(app, owner, "deactivate_promotion", {"promotion_id": made["id"]})
    assert stopped["status"] == "inactive"
    again = await ok(app, owner, "deactivate_promotion", {"promotion_id": made["id"]})
    assert again == stopped
    reused = await new_promotion(app, owner, code="summer10", amount_off=500, percent_off=None)
    assert reused["id"] != made["id"], "a deactivated code is free for a new promotion"


async def test_validate_gives_the_discount(app: App, owner: Owner) -> None:
    member = await new_member(app, owner)
    await new_promotion(app, owner, code="TEN")
    await new_promotion(app, owner, code="FIVER", amount_off=500, percent_off=None)
    got = await check(app, owner, "ten", member["id"], subtotal=1999)
    assert got["valid"] and got["reason"] is None and got["discount"] == 200
    assert got["currency"] == "EUR" and got["code"] == "TEN"
    fiver = await check(app, owner, "FIVER", member["id"], subtotal=300)
    assert fiver["discount"] == 300, "a fixed discount never exceeds the basket"
    product = await new_product(app, owner, unit_amount=1250)
    lines = await check(app, owner, "TEN", member["id"], lines=[{"product_id": product["id"], "quantity": 2}])
    assert lines["subtotal"] == 2500 and lines["discount"] == 250


async def test_validate_gives_each_reason(app: App, owner: Owner, clock: FakeClock) -> None:
    member = await new_member(app, owner)
    other = await new_member(app, owner)
    now = clock.now()
    await new_promotion(app, owner, code="LATER", starts_at=(now + timedelta(days=2)).isoformat())
    await new_promotion(app, owner, code="SOON", ends_at=(now + timedelta(days=1)).isoformat())
    stopped = await new_promotion(app, owner, code="STOPPED")
    await ok(app, owner, "deactivate_promotion", {"promotion_id": stopped["id"]})
    await new_promotion(app, owner, code="INVOICES", applies_to="invoices")
    await new_promotion(app, owner, code="BIG", min_subtotal=5000)
    await new_promotion(app, owner, code="ONCE", max_redemptions=1)
    await new_promotion(app, owner, code="MINE", max_per_customer=1)
    product = await new_product(app, owner, initial_stock=5)
    for code in ("ONCE", "MINE"):
        order = {"member_id": member["id"], "lines": [{"product_id": product["id"], "quantity": 1}]}
        await ok(app, owner, "create_order", {**order, "promotion_code": code})
    cases = {
        "NOPE": ("not_found", {}),
        "STOPPED": ("inactive", {}),
        "LATER": ("not_started", {}),
        "INVOICES": ("not_applicable", {}),
        "BIG": ("below_minimum", {"subtotal": 4999}),
        "ONCE": ("limit_reached", {}),
        "MINE": ("customer_limit_reached", {}),
        "SUMMER": ("currency_mismatch", {"subtotal": 100, "currency": "USD"}),
    }
    await new_promotion(app, owner, code="SUMMER")
    for code, (reason, basket) in cases.items():
        got = await check(app, owner, code, member["id"], **basket)
        assert not got["valid"] and got["reason"] == reason and got["discount"] == 0, (code, got)
        assert got["message"]
    assert (await check(app, owner, "MINE", other["id"]))["valid"], "the per-customer limit is per customer"
    assert (await check(app, owner, "BIG", member["id"], subtotal=5000))["valid"], "the minimum itself qualifies"
    assert (await check(app, owner, "INVOICES", member["id"], applies_to="invoices"))["valid"]
    assert (await check(app, owner, "SOON", member["id"]))["valid"]
    clock.advance(days=1)
    assert (await check(app, owner, "SOON", member["id"]))["reason"] == "expired"
    clock.advance(days=1)
    assert (await check(app, owner, "LATER", member["id"]))["valid"], "valid from starts_at itself"


async def test_list_promotions_counts_uses(app: App, owner: Owner) -> None:
    member = await new_member(app, owner)
    made = await new_promotion(app, owner, code="COUNT", max_redemptions=5)
    product = await new_product(app, owner, unit_amount=1000, tax_rate="0", track_stock=False)
    order = {
        "member_id": member["id"],
        "lines": [{"product_id": product["id"], "quantity": 1}],
        "promotion_code": "count",
    }
    first = await ok(app, owner, "create_order", order)
    await ok(app, owner, "create_order", order)
    await ok(
        app, owner, "cancel_order", {"order_id": first["id"], "confirmation_token": await token(app, owner, first)}
    )
    listed = await ok(app, owner, "list_promotions")
    row = next(p for p in listed["items"] if p["id"] == made["id"])
    assert row["times_redeemed"] == 1 and row["remaining"] == 4
    statuses = sorted(r.status for r in await redemptions(app, made["id"]))
    assert statuses == [RedemptionStatus.redeemed, RedemptionStatus.released], "a cancelled order's use is released"
    assert row["discount_given"] == 100
    assert (await ok(app, owner, "list_promotions", {"status": "inactive"}))["items"] == []


async def token(app: App, owner: Owner, order: dict[str, Any]) -> str:
    first = await call(app, owner.key, "cancel_order", {"order_id": order["id"]})
    assert error_code(first) == "confirmation_required", first.data
    return str(first.data["error"]["details"]["confirmation_token"])


async def test_total_limit_holds_under_twenty_concurrent_orders(app: App, owner: Owner) -> None:
    made = await new_promotion(app, owner, code="FIVE", max_redemptions=5)
    product = await new_product(app, owner, unit_amount=1000, initial_stock=100)
    members = [(await new_member(app, owner))["id"] for _ in range(N)]
    results = await gather(
        *[
            call(
                app,
                owner.key,
                "create_order",
                {"member_id": m, "promotion_code": "FIVE", "lines": [{"product_id": product["id"], "quantity": 1}]},
            )
            for m in members
        ]
    )
    winners = [r for r in results if r.ok]
    assert len(winners) == 5 and all(r.data["discount"] == 100 for r in winners)
    refusals = [r for r in results if not r.ok]
    assert all(
        error_code(r) == "conflict" and r.data["error"]["details"]["reason"] == "limit_reached" for r in refusals
    )
    assert len(await redemptions(app, made["id"])) == 5
    got = await ok(app, owner, "get_product", {"product_id": product["id"]})
    assert got["stock_on_hand"] == 95, "a refused order reserves nothing"


async def test_per_customer_limit_holds_under_twenty_concurrent_orders(app: App, owner: Owner) -> None:
    made = await new_promotion(app, owner, code="TWICE", max_per_customer=2)
    product = await new_product(app, owner, unit_amount=1000, track_stock=False)
    member = await new_member(app, owner)
    order = {
        "member_id": member["id"],
        "promotion_code": "twice",
        "lines": [{"product_id": product["id"], "quantity": 1}],
    }
    results = await gather(*[call(app, owner.key, "create_order", order) for _ in range(N)])
    assert len([r for r in results if r.ok]) == 2
    assert all(r.data["error"]["details"]["reason"] == "customer_limit_reached" for r in results if not r.ok)
    assert len(await redemptions(app, made["id"])) == 2


async def test_a_released_use_no_longer_counts(app: App, owner: Owner) -> None:
    await new_promotion(app, owner, code="SOLO", max_redemptions=1, max_per_customer=1)
    product = await new_product(app, owner, unit_amount=1000, track_stock=False)
    member = await new_member(app, owner)
    order = {
        "member_id": member["id"],
        "promotion_code": "SOLO",
        "lines": [{"product_id": product["id"], "quantity": 1}],
    }
    first = await ok(app, owner, "create_order", order)
    assert error_code(await call(app, owner.key, "create_order", order)) == "conflict"
    await ok(
        app, owner, "cancel_order", {"order_id": first["id"], "confirmation_token": await token(app, owner, first)}
    )
    second = await ok(app, owner, "create_order", order)
    assert second["discount"] == 100 and second["promotion_code"] == "SOLO"


async def test_redeem_and_release_for_an_invoice_target(app: App, owner: Owner) -> None:
    """The contract the invoices domain calls: one redemption per target, released once, refusals write nothing."""
    member = await new_member(app, owner)
    made = await new_promotion(app, owner, code="INV", amount_off=700, percent_off=None, applies_to="invoices")

    async def work(ctx: Any) -> Any:
        got = await promotions.redeem(
            ctx, code="inv", member_id=member["id"], subtotal=Money(5000, "EUR"), target="invoice:inv_1"
        )
        assert got.amount == Money(700, "EUR") and got.code == "INV" and got.promotion_id == made["id"]
        with pytest.raises(FavError) as twice:
            await promotions.redeem(
                ctx, code="INV", member_id=member["id"], subtotal=Money(5000, "EUR"), target="invoice:inv_1"
            )
        assert twice.value.code == "conflict" and (twice.value.body.details or {})["reason"] == "already_redeemed"
        with pytest.raises(FavError) as wrong_kind:
            await promotions.redeem(
                ctx, code="INV", member_id=member["id"], subtotal=Money(5000, "EUR"), target="order:ord_1"
            )
        assert (wrong_kind.value.body.details or {})["reason"] == "not_applicable"
        await promotions.release(ctx, "invoice:inv_1")
        await promotions.release(ctx, "invoice:inv_1")
        again = await promotions.redeem(
            ctx, code="INV", member_id=member["id"], subtotal=Money(300, "EUR"), target="invoice:inv_1"
        )
        assert again.amount == Money(300, "EUR")
        return None

    await app.runner.run_system(owner.workspace_id, "test", work)
    rows = await redemptions(app, made["id"])
    assert sorted(r.status for r in rows) == [RedemptionStatus.redeemed, RedemptionStatus.released]
    async with app.db.transaction() as session:
        promotion = (await session.execute(select(Promotion).where(col(Promotion.id) == made["id"]))).scalar_one()
    assert promotion.times_redeemed == 1


async def test_another_workspace_sees_nothing(app: App, owner: Owner) -> None:
    made = await new_promotion(app, owner, code="OWN")
    other = await signup(app)
    their_member = await new_member(app, other)
    assert error_code(await call(app, other.key, "deactivate_promotion", {"promotion_id": made["id"]})) == "not_found"
    assert (await ok(app, other, "list_promotions"))["items"] == []
    got = await check(app, other, "OWN", their_member["id"])
    assert got["reason"] == "not_found"
    assert (await call(app, other.key, "create_promotion", {"code": "OWN", "amount_off": 100})).ok
