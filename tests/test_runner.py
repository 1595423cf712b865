"""The call path every tool shares: validation, idempotency, audit, filters and errors."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from favmcp.app import App
from favmcp.composition import all_specs, metadata, platform
from favmcp.core.ids import new_id
from favmcp.domains.members.events import MemberCreated
from favmcp.domains.members.models import Member, MemberTag
from favmcp.registry.context import ToolContext
from favmcp.registry.domain import Domain, Platform
from favmcp.registry.registry import Registry
from favmcp.registry.runner import Runner
from favmcp.registry.spec import ToolInput, WriteInput, tool
from tests.support import Owner, call, error_code, gather, signup

MALFORMED: dict[str, list[dict[str, Any]]] = {
    "register_organisation_request": [
        {"email": "not-an-email", "organisation_name": "x", "owner_name": "y"},
        {"email": "a@example.com", "organisation_name": "", "owner_name": "y"},
        {"email": "a@example.com", "organisation_name": "x", "owner_name": "y", "currency": "EURO"},
    ],
    "register_organisation_verify": [{"request_id": "otc_x", "code": "12ab56"}, {"code": "123456"}],
    "accept_team_invite_request": [{"invite_token": 5}, {"invite_token": "short"}],
    "accept_team_invite_verify": [{"request_id": "otc_x", "code": "1"}],
    "get_workspace": [{"id": "ws_other"}],
    "update_workspace": [{"timezone": "Mars/Olympus"}, {"currency": "XX1"}, {"contact_phone": "12"}],
    "set_business_hours": [
        {"weekly": {"mon": [{"open": "10:00", "close": "09:00"}]}},
        {"weekly": {"mon": [{"open": "09:00", "close": "12:00"}, {"open": "11:00", "close": "13:00"}]}},
        {"weekly": {"someday": []}},
    ],
    "whoami": [{"as": "someone"}],
    "create_api_key": [{"name": ""}, {"name": "k", "scopes": ["nope:read"]}, {"name": "k", "scopes": []}],
    "list_api_keys": [{"limit": 0}, {"limit": "many"}],
    "revoke_api_key": [{}, {"key_id": ""}],
    "list_audit_events": [{"since": "yesterday"}],
    "search_tools": [{"limit": 1000}, {"effect": "explosive"}],
    "describe_tool": [{}],
    "create_member": [{"name": "x"}, {"name": "x", "email": "nope"}, {"name": "x", "phone": "+1"}],
    "get_member_profile": [{}, {"member_id": ""}],
    "search_members": [{"inactive_days": 0}, {"lifecycle": "vip"}, {"limit": 500}],
    "update_member": [{"member_id": "mem_x", "email": "bad"}, {"name": "x"}, {"member_id": "mem_x", "name": None}],
    "delete_member": [{}],
    "merge_members": [{"survivor_id": "mem_a", "duplicate_id": "mem_a"}, {"survivor_id": "mem_a"}],
    "attach_tags": [{"member_ids": [], "tags": ["a"]}, {"member_ids": ["mem_a"], "tags": [" "]}],
    "detach_tags": [{"member_ids": ["mem_a"], "tags": []}],
    "list_tags": [{"tag": "x"}],
    "add_member_note": [{"member_id": "mem_a", "body": ""}, {"member_id": "mem_a", "body": "x", "written_by": "ai"}],
    "set_marketing_consent": [{"member_id": "mem_a", "channel": "fax", "granted": True, "source": "x"}],
    "get_member_timeline": [{"member_id": "mem_a", "limit": -1}],
    "export_member_data": [{}],
    "preview_member_import": [{"rows": []}, {"rows": [{"name": 5}]}],
    "commit_member_import": [{}],
    "create_team_member_invite": [
        {"email": "not-an-email", "role": "staff"},
        {"email": "a@example.com", "role": "owner"},
        {"email": "a@example.com"},
    ],
    "list_team_invites": [{"status": "lost"}, {"limit": 0}],
    "revoke_team_invite": [{}, {"invite_id": ""}],
    "list_team_members": [{"role": "boss"}, {"status": "asleep"}],
    "update_team_member_role": [{"user_id": "usr_x"}, {"user_id": "usr_x", "role": "king"}],
    "deactivate_team_member": [{}, {"user_id": ""}],
    "set_staff_working_hours": [
        {"user_id": "usr_x", "weekly": {"mon": [{"open": "10:00", "close": "09:00"}]}},
        {
            "user_id": "usr_x",
            "weekly": {"mon": [{"open": "09:00", "close": "12:00"}, {"open": "11:00", "close": "13:00"}]},
        },
        {"user_id": "usr_x", "weekly": {"someday": []}},
    ],
    "get_staff_schedule": [
        {"user_id": "usr_x", "from_date": "2027-01-01", "to_date": "2027-03-05"},
        {"user_id": "usr_x", "from_date": "2027-01-02", "to_date": "2027-01-01"},
        {"user_id": "usr_x", "from_date": "tomorrow", "to_date": "2027-01-01"},
    ],
    "add_staff_time_off": [
        {"user_id": "usr_x", "starts_at": "2027-01-01T09:00:00", "ends_at": "2027-01-01T17:00:00"},
        {"user_id": "usr_x", "starts_at": "2027-01-01T17:00:00Z", "ends_at": "2027-01-01T09:00:00Z"},
        {"user_id": "usr_x", "starts_at": "2027-01-01T00:00:00Z", "ends_at": "2028-01-03T00:00:00Z"},
    ],
    "remove_staff_time_off": [{}, {"time_off_id": ""}],
    "request_send_approval": [{"tool": "send_message"}, {"tool": "", "arguments": {}}, {"arguments": {}}],
    "list_approvals": [{"status": "maybe"}, {"limit": 0}],
    "get_approval": [{}, {"approval_id": ""}],
    "approve_request": [{}, {"approval_id": ""}],
    "reject_request": [{"approval_id": "apr_x"}, {"approval_id": "apr_x", "reason": ""}],
    "get_approval_policy": [{"channel": "sms"}],
    "set_approval_policy": [
        {"expiry_hours": 0},
        {"rules": [{"channel": "fax", "kind": "marketing", "needs_approval": True}]},
        {"allow_self_approval": None},
    ],
    "create_invoice": [
        {"member_id": "mem_a", "lines": []},
        {"member_id": "mem_a", "lines": [{"description": "x", "unit_amount": 12.5}]},
        {"member_id": "mem_a", "lines": [{"description": "x", "unit_amount": 100, "tax_rate": "21%"}]},
    ],
    "get_invoice": [{}, {"invoice_id": ""}],
    "list_invoices": [{"status": "late"}, {"limit": 0}],
    "update_invoice_draft": [{"invoice_id": "inv_a", "lines": None}, {"invoice_id": "inv_a", "due_date": "soon"}],
    "finalize_invoice": [{}],
    "send_invoice": [{"invoice_id": ""}],
    "void_invoice": [{}],
    "mark_invoice_uncollectible": [{"invoice_id": 5}],
    "create_credit_note": [
        {"invoice_id": "inv_a", "amount": 0, "reason": "x"},
        {"invoice_id": "inv_a", "amount": 10, "reason": ""},
    ],
    "list_overdue_invoices": [{"limit": 101}],
    "send_payment_reminder": [{"invoice_id": "inv_a", "channel": "sms"}],
    "create_product": [
        {"name": "Mat"},
        {"name": "Mat", "unit_amount": 12.5},
        {"name": "Mat", "unit_amount": 100, "tax_rate": "21%"},
    ],
    "list_products": [{"status": "gone"}, {"limit": 0}],
    "get_product": [{}, {"product_id": ""}],
    "update_product": [{"product_id": "prd_a", "name": None}, {"product_id": "prd_a", "unit_amount": -1}],
    "archive_product": [{}],
    "adjust_stock": [{"product_id": "prd_a", "delta": 0, "reason": "x"}, {"product_id": "prd_a", "delta": 1}],
    "create_order": [
        {"member_id": "mem_a", "lines": []},
        {"member_id": "mem_a", "lines": [{"product_id": "prd_a", "quantity": 0}]},
    ],
    "get_order": [{}],
    "list_orders": [{"status": "lost"}, {"created_from": "soon"}],
    "fulfil_order": [{"order_id": ""}],
    "cancel_order": [{}],
    "create_promotion": [
        {"code": "X"},
        {"code": "X", "percent_off": "10", "amount_off": 100},
        {"code": "a b", "amount_off": 100},
    ],
    "list_promotions": [{"status": "paused"}],
    "validate_promotion": [{"code": "X", "member_id": "mem_a"}, {"code": "X", "member_id": "mem_a", "subtotal": 1.5}],
    "deactivate_promotion": [{}],
    "record_payment": [
        {"method": "cash", "amount": 1, "invoice_id": "inv_x"},
        {"method": "cheque", "amount": 1, "invoice_id": "inv_x", "idempotency_key": "k"},
        {"method": "cash", "amount": 0, "invoice_id": "inv_x", "idempotency_key": "k"},
        {"method": "cash", "amount": 1, "invoice_id": "a", "order_id": "b", "idempotency_key": "k"},
    ],
    "get_payment": [{}],
    "list_payments": [{"limit": 0}],
    "list_refunds": [{"limit": 101}],
    "refund_payment": [{"payment_id": "pay_x"}, {"payment_id": "pay_x", "amount": 1.5, "idempotency_key": "k"}],
    "create_payment_link": [{}, {"invoice_id": "inv_x", "expires_in_hours": 25}],
    "create_plan": [
        {"kind": "membership", "name": "Monthly", "unit_amount": 12.5, "interval": "month"},
        {"kind": "subscription", "name": "Monthly", "unit_amount": 100},
        {"kind": "pack", "name": "Ten", "unit_amount": 100, "credits": 0, "validity_days": 30},
    ],
    "list_plans": [{"kind": "voucher"}, {"limit": 0}],
    "update_plan": [{"plan_id": "pln_a", "name": None}, {"plan_id": "pln_a", "unit_amount": 0}],
    "archive_plan": [{}],
    "subscribe_member": [{"member_id": "mem_a"}, {"member_id": "mem_a", "plan_id": "pln_a", "trial_days": -1}],
    "get_subscription": [{}],
    "list_subscriptions": [{"status": "lapsed"}],
    "pause_subscription": [{}, {"subscription_id": "sub_a", "resume_on": "later"}],
    "resume_subscription": [{"subscription_id": ""}],
    "cancel_subscription": [{}, {"subscription_id": "sub_a", "at_period_end": "maybe"}],
    "change_subscription_plan": [{"subscription_id": "sub_a"}],
    "run_subscription_billing": [{"up_to": "tomorrow"}],
    "create_service": [
        {"name": "Cut", "duration_minutes": 0, "unit_amount": 100},
        {"name": "Cut", "duration_minutes": 30, "unit_amount": 12.5},
        {"name": "Cut", "duration_minutes": 30, "unit_amount": 100, "capacity": 0},
        {"name": "Cut", "duration_minutes": 30, "unit_amount": 100, "buffer_after_minutes": -5},
    ],
    "list_services": [{"status": "gone"}, {"limit": 0}],
    "update_service": [{"service_id": "svc_a", "name": None}, {"service_id": "svc_a", "duration_minutes": -1}],
    "archive_service": [{}],
    "assign_staff_to_service": [{"service_id": "svc_a"}, {"service_id": "svc_a", "staff_ids": "usr_a"}],
    "get_available_slots": [
        {"service_id": "svc_a", "from_date": "2027-03-01"},
        {"service_id": "svc_a", "from_date": "2027-03-10", "to_date": "2027-03-01"},
        {"service_id": "svc_a", "from_date": "2027-01-01", "to_date": "2027-12-31"},
    ],
    "create_booking": [
        {"member_id": "mem_a"},
        {"member_id": "mem_a", "service_id": "svc_a", "starts_at": "2027-03-01T09:00:00"},
        {"member_id": "mem_a", "service_id": "svc_a", "starts_at": "2027-03-01T09:00:00Z", "use_credit": "perhaps"},
    ],
    "get_booking_detail": [{}, {"booking_id": ""}],
    "list_bookings": [{"status": "lost"}, {"limit": 0}, {"starts_from": "soon"}],
    "confirm_booking": [{}, {"booking_id": "bkg_a", "decline": "nope"}],
    "reschedule_booking": [{}, {"booking_id": "bkg_a", "starts_at": "tomorrow"}],
    "get_booking_stats": [{"from_date": "2027-03-01"}, {"from_date": "2027-03-10", "to_date": "2027-03-01"}],
    "cancel_booking": [{}, {"booking_id": "bkg_a", "waive_fee": "maybe"}],
    "check_in_booking": [{}],
    "complete_booking": [{"booking_id": ""}],
    "mark_no_show": [{}],
    "get_booking_settings": [],
    "update_booking_settings": [
        {"slot_step_minutes": 0},
        {"late_cancel_fee": -1},
        {"no_show_fee": 12.5},
        {"min_notice_minutes": None},
    ],
    "schedule_class_session": [
        {"service_id": "svc_a"},
        {"service_id": "svc_a", "staff_id": "usr_a", "starts_at": "2027-03-01T18:00:00", "capacity": 10},
        {"service_id": "svc_a", "staff_id": "usr_a", "capacity": 0, "starts_at": "2027-03-01T18:00:00Z"},
    ],
    "list_class_sessions": [{"status": "full"}, {"limit": 101}],
    "get_class_roster": [{}],
    "cancel_class_session": [{"class_session_id": ""}],
    "join_waitlist": [{"member_id": "mem_a"}, {"class_session_id": "cls_a"}],
    "leave_waitlist": [{"entry_id": ""}, {"member_id": 5, "class_session_id": "cls_a"}],
    "get_loyalty_program": [{"member_id": "mem_a"}],
    "update_loyalty_program": [
        {"expiry_days": 0},
        {"earn_rules": [{"kind": "visit", "points": 0}]},
        {"earn_rules": [{"kind": "spend", "points": 1}]},
        {"earn_rules": [{"kind": "stars", "points": 1}]},
        {"tier_basis": "visits"},
    ],
    "get_points_balance": [{}, {"member_id": ""}],
    "earn_loyalty_points": [
        {"member_id": "mem_a", "points": 10},
        {"member_id": "mem_a", "points": 0, "reason": "gift"},
        {"member_id": "mem_a", "points": "10", "reason": "gift"},
    ],
    "redeem_loyalty_points": [{"member_id": "mem_a"}, {"member_id": "mem_a", "points": -5}],
    "adjust_loyalty_points": [
        {"member_id": "mem_a", "points": 5},
        {"member_id": "mem_a", "points": 5, "reason": ""},
        {"member_id": "mem_a", "points": 10**9, "reason": "typo fix"},
    ],
    "list_points_transactions": [{"kind": "gift"}, {"limit": 0}],
    "expire_points": [{"up_to": "tomorrow"}],
    "list_rewards": [{"status": "gone"}],
    "create_reward": [
        {"name": "Free coffee", "kind": "discount"},
        {"name": "Free coffee", "kind": "voucher", "points_cost": 100},
        {"name": "", "kind": "discount", "percent_off": "10", "points_cost": 100},
        {"name": "Free coffee", "kind": "discount", "percent_off": "10", "points_cost": 0},
    ],
    "archive_reward": [{}, {"reward_id": "rwd_a", "withdraw_unused": "maybe"}],
    "redeem_reward": [{"member_id": "mem_a"}, {"reward_id": "rwd_a"}],
    "list_membership_tiers": [{"limit": 5}],
    "create_membership_tier": [
        {"name": "Gold"},
        {"name": "Gold", "threshold": -1},
        {"name": "Gold", "threshold": 100, "earn_multiplier": "11"},
        {"name": "Gold", "threshold": 100, "earn_multiplier": 1.5},
    ],
    "update_membership_tier": [{}, {"tier_id": "tier_a", "name": None}, {"tier_id": "tier_a", "threshold": -5}],
    "enrol_membership": [{"member_id": "mem_a"}, {"tier_id": "tier_a"}],
    "create_post": [
        {},
        {"title": ""},
        {"title": "Spring", "slug": "Not A Slug!"},
        {"title": "Spring", "blocks": [{"type": "video", "url": "https://example.com/v"}]},
        {"title": "Spring", "cover_image_url": "javascript:alert(1)"},
    ],
    "get_post": [{"post_id": ""}],
    "list_posts": [{"status": "live"}, {"limit": 0}],
    "update_post": [{}, {"post_id": "pst_a", "title": None}, {"post_id": "pst_a", "blocks": [{"type": "heading"}]}],
    "publish_post": [{}, {"post_id": "pst_a", "publish_at": "soon"}],
    "unpublish_post": [{}],
    "delete_post": [{}, {"post_id": 5}],
    "get_dashboard_stats": [{}, {"from_date": "2027-01-01", "to_date": "someday"}],
    "revenue_report": [
        {"from_date": "2027-01-01"},
        {"from_date": "2027-01-01", "to_date": "2027-02-01", "group_by": "hour"},
    ],
    "membership_report": [{"to_date": "2027-01-01"}],
    "no_show_report": [{"from_date": "2027-01-01", "to_date": "2027-02-01", "top": 0}],
    "inactive_members_report": [{}, {"days": 0}, {"days": 30, "chart": "maybe"}],
    "campaign_performance_report": [{"from_date": "2027-13-01"}],
    "get_channel_status": [{"channel": "whatsapp"}],
    "configure_channel": [
        {},
        {"channel": "fax"},
        {"channel": "sms", "from_number": "not a number"},
        {"channel": "email", "port": 70000},
        {"channel": "whatsapp", "quiet_hours": {"start": "25:00", "end": "09:00"}},
    ],
    "list_message_templates": [{"channel": "pigeon"}, {"limit": 101}],
    "create_message_template": [
        {},
        {"channel": "sms", "name": "hi", "kind": "marketing", "body": ""},
        {"channel": "sms", "name": "hi", "kind": "gossip", "body": "Hello"},
        {"channel": "sms", "name": "hi", "kind": "marketing", "body": "Hello {{first_name}", "variables": [5]},
    ],
    "update_message_template": [{}, {"template_id": "tpl_a", "body": None}, {"template_id": "tpl_a", "kind": "x"}],
    "delete_message_template": [{}, {"template_id": 5}],
    "send_message": [
        {},
        {"member_id": "mem_a", "channel": "telegram", "text": "Hi"},
        {"member_id": "mem_a", "channel": "sms", "variables": "first_name=Ann"},
    ],
    "list_messages": [{"direction": "sideways"}, {"status": "lost"}, {"limit": 0}],
    "get_conversation": [{}, {"member_id": "mem_a", "limit": 500}],
    "create_campaign": [
        {},
        {"name": "Win back", "channel": "sms"},
        {"name": "Win back", "channel": "sms", "template_id": "tpl_a", "inactive_days": -1},
        {"name": "Win back", "channel": "sms", "template_id": "tpl_a", "scheduled_at": "tomorrow"},
    ],
    "list_campaigns": [{"status": "paused"}],
    "get_campaign": [{}],
    "preview_campaign_audience": [{}, {"campaign_id": ["cmp_a"]}],
    "send_test_campaign": [{}, {"campaign_id": 7}],
    "send_campaign": [{}],
    "cancel_campaign": [{}, {"campaign_id": None}],
    "get_campaign_stats": [{}],
    "create_webhook_endpoint": [
        {},
        {"url": "not a url", "events": ["*"]},
        {"url": "https://hooks.example.com/in", "events": []},
        {"url": "ftp://hooks.example.com/in", "events": ["*"]},
    ],
    "list_webhook_endpoints": [{"limit": -1}],
    "delete_webhook_endpoint": [{}],
    "list_webhook_deliveries": [{"status": "lost"}],
    "redeliver_webhook": [{}, {"delivery_id": ""}],
}


async def row_counts(app: App) -> dict[str, int]:
    """Rows per table, but for the runner's call counters (rate limits), which any call may move."""
    async with app.db.transaction() as session:
        return {
            t.name: int((await session.execute(select(func.count()).select_from(t))).scalar_one())
            for t in metadata().sorted_tables
            if t.name != "rate_limit_buckets"
        }


def test_every_tool_has_malformed_cases() -> None:
    assert set(MALFORMED) == {s.name for s in all_specs()}


async def test_malformed_arguments_answer_validation_failed_and_write_nothing(app: App, owner: Owner) -> None:
    before = await row_counts(app)
    refused_writes = 0
    for name, cases in MALFORMED.items():
        for args in [*cases, {"unexpected_argument": True}]:
            result = await call(app, owner.key, name, args)
            assert error_code(result) == "validation_failed", (name, args, result.data)
            assert result.data["error"]["field_errors"], (name, args)
            refused_writes += app.registry.specs[name].mutating or app.registry.specs[name].audit_reads
    after = await row_counts(app)
    audited = after.pop("audit_events") - before.pop("audit_events")
    assert audited == refused_writes, "refused writes (and exports) are audited"
    assert after == before, "and nothing else is written"


async def test_idempotent_retries_replay_the_first_answer(app: App, owner: Owner) -> None:
    args = {"name": "agent", "idempotency_key": "create-agent-1"}
    results = await gather(*[call(app, owner.key, "create_api_key", args) for _ in range(20)])
    assert all(r.ok for r in results)
    assert len({str(r.data) for r in results}) == 1, "20 identical answers"
    keys = await call(app, owner.key, "list_api_keys", {"limit": 100})
    assert [k["name"] for k in keys.data["items"]].count("agent") == 1
    other = await call(app, owner.key, "create_api_key", {**args, "name": "other"})
    assert error_code(other) == "idempotency_mismatch"


async def test_errors_are_replayed_too_and_keys_expire_after_a_day(app: App, owner: Owner, clock: Any) -> None:
    args = {"idempotency_key": "k1"}
    first = await call(app, owner.key, "update_workspace", {"name": "New name", "idempotency_key": "k2"})
    again = await call(app, owner.key, "update_workspace", {"name": "New name", "idempotency_key": "k2"})
    assert first.data == again.data
    audit = await call(app, owner.key, "list_audit_events", {"tool": "update_workspace"})
    assert len(audit.data["items"]) == 1
    made = await call(app, owner.key, "create_api_key", {"name": "x", "scopes": ["access:admin"]})
    limited = made.data["api_key"]
    refused = await call(app, limited, "create_api_key", {"name": "y", "scopes": ["team:admin"], **args})
    replay = await call(app, limited, "create_api_key", {"name": "y", "scopes": ["team:admin"], **args})
    assert error_code(refused) == "forbidden" and replay.data == refused.data
    clock.advance(hours=24, seconds=1)
    fresh = await call(app, limited, "create_api_key", {"name": "z", **args})
    assert fresh.ok


async def test_idempotency_keys_are_per_credential(app: App) -> None:
    a, b = await signup(app), await signup(app)
    ra = await call(app, a.key, "create_api_key", {"name": "same", "idempotency_key": "shared"})
    rb = await call(app, b.key, "create_api_key", {"name": "same", "idempotency_key": "shared"})
    assert ra.ok and rb.ok and ra.data["api_key"] != rb.data["api_key"]


async def test_every_mutating_call_is_audited_with_caller_and_argument_hash(app: App, owner: Owner) -> None:
    await call(app, owner.key, "update_workspace", {"name": "Renamed"})
    await call(app, owner.key, "update_workspace", {"name": "Renamed"})
    await call(app, owner.key, "get_workspace")
    events = (await call(app, owner.key, "list_audit_events", {"tool": "update_workspace"})).data["items"]
    assert len(events) == 2 and events[0]["args_hash"] == events[1]["args_hash"]
    assert {e["user_id"] for e in events} == {owner.user_id} and {e["credential_id"] for e in events} == {owner.key_id}
    assert [e["changes"] for e in events] == [{}, {"fields": ["name"]}], "the repeat changed nothing"
    assert not (await call(app, owner.key, "list_audit_events", {"tool": "get_workspace"})).data["items"]


async def test_workspace_profile_and_hours(app: App, owner: Owner) -> None:
    updated = await call(
        app, owner.key, "update_workspace", {"currency": "gbp", "country": "gb", "contact_phone": "+44 20 7946 0958"}
    )
    assert updated.ok and updated.data["currency"] == "GBP" and updated.data["contact_phone"] == "+442079460958"
    hours = await call(
        app,
        owner.key,
        "set_business_hours",
        {"weekly": {"mon": [{"open": "09:00", "close": "17:00"}]}, "closures": [{"date": "2026-12-25"}]},
    )
    assert hours.ok and hours.data["business_hours"] == {"mon": [{"open": "09:00", "close": "17:00"}]}
    evening = await call(
        app, owner.key, "set_business_hours", {"weekly": {"fri": [{"open": "18:00", "close": "24:00"}]}}
    )
    assert evening.ok and evening.data["business_hours"] == {"fri": [{"open": "18:00", "close": "24:00"}]}
    for bad in (
        {"open": "24:00", "close": "24:00"},
        {"open": "09:00", "close": "24:30"},
        {"open": "9h", "close": "10:00"},
    ):
        refused = await call(app, owner.key, "set_business_hours", {"weekly": {"mon": [bad]}})
        assert error_code(refused) == "validation_failed", bad
    replaced = await call(
        app, owner.key, "set_business_hours", {"weekly": {"tue": [{"open": "10:00", "close": "12:00"}]}}
    )
    assert list(replaced.data["business_hours"]) == ["tue"] and replaced.data["closures"] == []
    refused = await call(app, owner.key, "update_workspace", {"name": None})
    assert error_code(refused) == "validation_failed" and refused.data["error"]["field_errors"][0]["field"] == "name"
    contact = await call(app, owner.key, "update_workspace", {"contact_phone": "+31201234567"})
    cleared = await call(app, owner.key, "update_workspace", {"contact_phone": None})
    assert contact.data["contact_phone"] and cleared.ok and cleared.data["contact_phone"] is None, "null clears"


async def test_a_read_only_key_cannot_write(app: App, owner: Owner) -> None:
    reader = (await call(app, owner.key, "create_api_key", {"name": "r", "scopes": ["workspace:read"]})).data["api_key"]
    refused = await call(app, reader, "set_business_hours", {"weekly": {}})
    assert error_code(refused) == "forbidden" and "workspace:admin" in refused.data["error"]["message"]


async def test_read_only_mode_lists_and_runs_only_read_tools(app: App, owner: Owner) -> None:
    registry = Registry(all_specs(), read_only=True)
    assert all(s.effect.read_only for s in registry.listed())
    runner = Runner(platform(), app.db, app.settings, registry=registry, clock=app.runner.clock)
    assert (await runner.call("whoami", {}, credential=owner.key)).ok
    refused = await runner.call("update_workspace", {"name": "x"}, credential=owner.key)
    assert error_code(refused) == "forbidden"


def test_toolsets_filter_listing_but_keep_discovery() -> None:
    registry = Registry(all_specs(), toolsets=frozenset({"workspace"}))
    names = {s.name for s in registry.listed()}
    assert names == {
        "get_workspace",
        "update_workspace",
        "set_business_hours",
        "whoami",
        "search_tools",
        "describe_tool",
    }
    with pytest.raises(ValueError, match="unknown toolsets"):
        Registry(all_specs(), toolsets=frozenset({"nonsense"}))


class BoomInput(WriteInput):
    pass


class BoomOutput(SQLModel):
    ok: bool


@tool(domain="members", title="Boom", hints="W", scope="members:write")
async def boom(ctx: ToolContext, args: BoomInput) -> BoomOutput:
    """Writes a member, a tag, an outbox email and an event, then fails unexpectedly."""
    member = ctx.db.add(Member(id=new_id("mem"), name="Ghost", email="ghost@example.com", **_times(ctx.now)))
    await ctx.db.flush()
    await ctx.db.insert_or_ignore(MemberTag, [{"member_id": member.id, "tag": "ghost", "created_at": ctx.now}])
    ctx.send_email(to="ghost@example.com", subject="boo", body="boo", workspace_id=ctx.workspace_id)
    ctx.emit(MemberCreated(member_id=member.id, source=None))
    await ctx.deliver_events()
    raise RuntimeError("secret internals")


def _times(now: datetime) -> dict[str, datetime]:
    return {"created_at": now, "updated_at": now, "last_activity_at": now}


async def test_unexpected_errors_answer_internal_error_and_change_nothing(app: App, owner: Owner) -> None:
    with_boom = Platform([*platform().domains, Domain(name="boom", tools=[boom])])
    runner = Runner(with_boom, app.db, app.settings, clock=app.runner.clock)
    before = await row_counts(app)
    result = await runner.call("boom", {}, credential=owner.key)
    assert error_code(result) == "internal_error" and result.data["error"]["request_id"].startswith("req_")
    assert "secret internals" not in str(result.data)
    after = await row_counts(app)
    assert after.pop("audit_events") == before.pop("audit_events") + 1, "the failure itself is audited"
    assert after == before, "nothing the handler wrote survives"
    audit = await call(app, owner.key, "list_audit_events", {"tool": "boom"})
    assert [(e["outcome"], e["changes"]) for e in audit.data["items"]] == [("internal_error", {})]


async def test_unknown_tool_is_not_found_with_a_hint(app: App) -> None:
    result = await call(app, None, "drop_database")
    assert error_code(result) == "not_found" and "search_tools" in result.data["error"]["hint"]


async def test_search_and_describe_tools_work_anonymously(app: App) -> None:
    found = await call(app, None, "search_tools", {"query": "revoke key"})
    assert found.data["items"][0]["name"] == "revoke_api_key"
    assert found.data["items"][0]["annotations"]["destructive"] is True
    destructive = await call(app, None, "search_tools", {"effect": "destructive", "limit": 100})
    names = [t["name"] for t in destructive.data["items"]]
    assert "revoke_api_key" in names and "whoami" not in names
    assert all(t["annotations"]["destructive"] for t in destructive.data["items"])
    described = await call(app, None, "describe_tool", {"name": "revoke_api_key"})
    assert described.data["gate"] == "confirm" and "key_id" in described.data["input_schema"]["properties"]
    assert error_code(await call(app, None, "describe_tool", {"name": "nope"})) == "not_found"


def test_tool_inputs_refuse_unknown_fields() -> None:
    for spec in all_specs():
        assert issubclass(spec.input_model, ToolInput)
        assert spec.input_schema().get("additionalProperties") is False, spec.name


class CrossLockInput(WriteInput):
    first: str
    second: str


ATTEMPTS: dict[str, int] = {}
BOTH_HOLD_THEIR_FIRST = asyncio.Barrier(2)


@tool(domain="members", title="Cross lock", hints="W", scope="members:write")
async def cross_lock(ctx: ToolContext, args: CrossLockInput) -> BoomOutput:
    """Locks two customers in the order given; the first attempts of two calls wait for each other in between."""
    ATTEMPTS[args.first] = ATTEMPTS.get(args.first, 0) + 1
    await ctx.db.get(Member, args.first, lock=True)
    if ATTEMPTS[args.first] == 1:
        await BOTH_HOLD_THEIR_FIRST.wait()
    await ctx.db.get(Member, args.second, lock=True)
    return BoomOutput(ok=True)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_deadlock_victim_runs_again_and_both_calls_succeed(app: App, owner: Owner) -> None:
    with_cross = Platform([*platform().domains, Domain(name="cross", tools=[cross_lock])])
    runner = Runner(with_cross, app.db, app.settings, clock=app.runner.clock)
    a, b = [
        (await call(app, owner.key, "create_member", {"name": name, "email": f"{name}.{new_id('x')}@example.com"}))
        for name in ("ann", "bob")
    ]
    ids = [a.data["id"], b.data["id"]]
    results = await gather(
        runner.call("cross_lock", {"first": ids[0], "second": ids[1]}, credential=owner.key),
        runner.call("cross_lock", {"first": ids[1], "second": ids[0]}, credential=owner.key),
    )
    assert all(r.ok for r in results), [r.data for r in results]
    assert sorted(ATTEMPTS[i] for i in ids) == [1, 2], "Postgres picked one victim; it ran once more"
