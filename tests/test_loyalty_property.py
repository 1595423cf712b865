"""Property: random sequences of earn, redeem, adjust, payment, refund, expiry and reward calls, through the runner
on SQLite and Postgres, keep the points ledger whole: after every step a customer's balance equals the sum of their
ledger entries and of what their lots have left, it is never negative, a refused call changes nothing, and every
voucher is redeemed at most once however often its code is tried.

Each example is a new customer in one workspace (a spend rule earns 1 point per EUR paid; points expire after 30
days; a reward costs 100 points). The number of examples comes from the hypothesis profile: `loyalty-ci`
(default: derandomized, bounded) or `thorough` (HYPOTHESIS_PROFILE=thorough uv run pytest
tests/test_loyalty_property.py).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import col

from favmcp.app import App
from favmcp.domains.loyalty.models import LoyaltyAccount, PointsEntry, PointsLot, Voucher
from favmcp.domains.promotions.models import Redemption, RedemptionStatus
from tests.support import FakeClock, Owner, call, confirmed, unique_email

settings.register_profile(
    "loyalty-ci",
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "loyalty-thorough",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROFILE = settings.get_profile(f"loyalty-{os.environ.get('HYPOTHESIS_PROFILE', 'ci')}")

REWARD_COST = 100
STEP = st.one_of(
    st.tuples(st.just("earn"), st.integers(1, 400)),
    st.tuples(st.just("redeem"), st.integers(1, 500)),
    st.tuples(st.just("adjust"), st.integers(-300, -1) | st.integers(1, 300)),
    st.tuples(st.just("pay"), st.integers(50, 40_000)),
    st.tuples(st.just("refund"), st.integers(0, 5), st.integers(1, 100)),
    st.tuples(st.just("advance"), st.integers(1, 20)),
    st.tuples(st.just("expire")),
    st.tuples(st.just("reward")),
    st.tuples(st.just("use_voucher"), st.integers(0, 5)),
)


@dataclass
class Customer:
    id: str
    reward_id: str
    payments: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)


async def _ok(app: App, owner: Owner, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await call(app, owner.key, tool, args)
    assert result.ok, (tool, result.data)
    return result.data


async def _state(app: App, member_id: str) -> tuple[int, int, int]:
    """(balance, ledger sum, lots' remaining sum) as stored."""
    async with app.db.transaction() as session:
        balance = (
            await session.execute(select(LoyaltyAccount.balance).where(col(LoyaltyAccount.member_id) == member_id))
        ).scalar_one_or_none()
        ledger = (
            await session.execute(
                select(func.coalesce(func.sum(PointsEntry.points), 0)).where(col(PointsEntry.member_id) == member_id)
            )
        ).scalar_one()
        lots = (
            await session.execute(
                select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(col(PointsLot.member_id) == member_id)
            )
        ).scalar_one()
    return int(balance or 0), int(ledger), int(lots)


async def _voucher_uses(app: App, member_id: str) -> list[int]:
    """Per voucher of the customer: the redemptions of its code that count."""
    async with app.db.transaction() as session:
        vouchers = (await session.execute(select(Voucher).where(col(Voucher.member_id) == member_id))).scalars()
        uses = []
        for voucher in list(vouchers):
            counted = select(func.count()).where(
                col(Redemption.promotion_id) == voucher.promotion_id,
                col(Redemption.status) == RedemptionStatus.redeemed,
            )
            uses.append(int((await session.execute(counted)).scalar_one()))
    return uses


async def _paid_invoice(app: App, owner: Owner, member_id: str, amount: int, code: str | None = None) -> Any:
    line = {"description": "Visit", "quantity": 1, "unit_amount": amount, "tax_rate": "0"}
    made = await call(
        app, owner.key, "create_invoice", {"member_id": member_id, "lines": [line], "promotion_code": code}
    )
    if not made.ok:
        return made
    finalized = await _ok(app, owner, "finalize_invoice", {"invoice_id": made.data["id"]})
    if finalized["amount_remaining"] == 0:
        return made
    paid = {"invoice_id": finalized["id"], "amount": finalized["amount_remaining"], "method": "cash",
            "idempotency_key": uuid.uuid4().hex}  # fmt: skip
    return await call(app, owner.key, "record_payment", paid)


async def _step(app: App, owner: Owner, clock: FakeClock, who: Customer, step: tuple[Any, ...]) -> Any:
    """Run one step; the call's result (None for the clock)."""
    kind, *values = step
    member = {"member_id": who.id}
    if kind == "earn":
        return await call(app, owner.key, "earn_loyalty_points", {**member, "points": values[0], "reason": "gift"})
    if kind == "redeem":
        return await call(app, owner.key, "redeem_loyalty_points", {**member, "points": values[0]})
    if kind == "adjust":
        return await call(app, owner.key, "adjust_loyalty_points", {**member, "points": values[0], "reason": "fix"})
    if kind == "pay":
        paid = await _paid_invoice(app, owner, who.id, values[0])
        if paid.ok and paid.data["id"].startswith("pay"):
            who.payments.append(paid.data["id"])
        return paid
    if kind == "refund":
        if not who.payments:
            return None
        payment_id = who.payments[values[0] % len(who.payments)]
        payment = await _ok(app, owner, "get_payment", {"payment_id": payment_id})
        left = payment["amount"] - payment["amount_refunded"]
        if left <= 0:
            return None
        amount = max(1, left * values[1] // 100)
        args = {"payment_id": payment_id, "amount": amount, "currency": payment["currency"], "reason": "test",
                "idempotency_key": uuid.uuid4().hex}  # fmt: skip
        return await confirmed(app, owner.key, "refund_payment", args)
    if kind == "advance":
        clock.advance(days=values[0])
        return None
    if kind == "expire":
        return await call(app, owner.key, "expire_points", {})
    if kind == "reward":
        redeemed = await call(app, owner.key, "redeem_reward", {**member, "reward_id": who.reward_id})
        if redeemed.ok:
            who.codes.append(redeemed.data["code"])
        return redeemed
    assert kind == "use_voucher"
    if not who.codes:
        return None
    code = who.codes[values[0] % len(who.codes)]
    used = await _paid_invoice(app, owner, who.id, 5000, code)
    if used.ok and used.data["id"].startswith("pay"):
        who.payments.append(used.data["id"])
    again = await _paid_invoice(app, owner, who.id, 5000, code)
    assert not again.ok, "a voucher code works once"
    return used


@settings(PROFILE)
@given(steps=st.lists(STEP, min_size=1, max_size=14))
async def test_the_ledger_stays_whole_under_any_sequence(
    app: App, owner: Owner, clock: FakeClock, steps: list[tuple[Any, ...]]
) -> None:
    await _ok(
        app,
        owner,
        "update_loyalty_program",
        {"earn_rules": [{"kind": "spend", "points": 1, "currency": "EUR"}], "expiry_days": 30},
    )
    await _ok(app, owner, "update_workspace", {"currency": "EUR"})
    reward = await _ok(
        app, owner, "create_reward", {"name": "Ten off", "kind": "discount", "percent_off": "10",
                                      "points_cost": REWARD_COST},
    )  # fmt: skip
    member = await _ok(app, owner, "create_member", {"name": "Pat Random", "email": unique_email("pat")})
    who = Customer(member["id"], reward["id"])
    for step in steps:
        before = await _state(app, who.id)
        result = await _step(app, owner, clock, who, step)
        balance, ledger, lots = await _state(app, who.id)
        assert balance == ledger == lots, (step, balance, ledger, lots)
        assert balance >= 0, step
        if result is not None:
            event(f"{step[0]}: {'ok' if result.ok else result.data['error']['code']}")
        if result is not None and not result.ok:
            assert result.data["error"]["code"] != "internal_error", (step, result.data)
            assert (balance, ledger, lots) == before, ("a refused call changed the points", step, result.data)
        assert all(uses <= 1 for uses in await _voucher_uses(app, who.id)), step
