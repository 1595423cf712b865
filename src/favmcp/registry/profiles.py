"""Profiles: named tool sets for the jobs people do, chosen per API key, per OAuth grant or by URL (/mcp/p/<name>).

A profile narrows what is listed and what may be called; scopes still apply inside it. The job profiles hold at
most MAX_JOB_TOOLS tools besides discovery, the lowest cap among clients that limit tools. `readonly` is every
read tool and runs its handlers in a read-only transaction, so the database refuses a write even if a check here
were wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from favmcp.registry.spec import ToolSpec

MAX_JOB_TOOLS = 40
DISCOVERY = frozenset({"whoami", "search_tools", "describe_tool"})


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    # None: every tool (owner), or every read tool (readonly); otherwise these tools and discovery.
    tools: frozenset[str] | None = None
    read_only: bool = False
    # Arguments fixed whatever the caller sends, per tool (the REST API applies them: see PUBLISHABLE).
    pinned: tuple[tuple[str, str, str], ...] = ()
    # Bound to keys made for it only (publishable keys): never offered on the consent page nor served at /mcp/p/.
    keys_only: bool = False

    def allows(self, spec: ToolSpec) -> bool:
        if self.read_only and not spec.effect.read_only:
            return False
        return self.tools is None or spec.name in self.tools or spec.name in DISCOVERY


_FRONT_DESK = frozenset(
    {
        # customers
        "search_members", "get_member_profile", "create_member", "update_member", "add_member_note",
        "attach_tags", "detach_tags", "list_tags", "set_marketing_consent", "get_member_timeline",
        # bookings
        "get_available_slots", "create_booking", "get_booking_detail", "list_bookings", "confirm_booking",
        "reschedule_booking", "cancel_booking", "check_in_booking", "complete_booking", "mark_no_show",
        "get_booking_stats", "get_booking_settings",
        # classes
        "schedule_class_session", "list_class_sessions", "get_class_roster", "cancel_class_session",
        "join_waitlist", "leave_waitlist",
        # what booking needs to know
        "get_workspace", "list_services", "list_team_members", "get_staff_schedule",
    }
)  # fmt: skip

_MARKETING = frozenset(
    {
        # customers
        "search_members", "get_member_profile", "create_member", "update_member", "add_member_note",
        "attach_tags", "detach_tags", "list_tags", "set_marketing_consent", "get_member_timeline",
        "preview_member_import", "commit_member_import",
        # messaging
        "get_channel_status", "list_message_templates", "create_message_template", "update_message_template",
        "delete_message_template", "send_message", "list_messages", "get_conversation",
        # campaigns
        "create_campaign", "list_campaigns", "get_campaign", "preview_campaign_audience", "send_test_campaign",
        "send_campaign", "cancel_campaign", "get_campaign_stats",
        # content
        "create_post", "get_post", "list_posts", "update_post", "publish_post", "unpublish_post", "delete_post",
        # sends that wait for a person, and how they did
        "request_send_approval", "get_approval", "campaign_performance_report", "inactive_members_report",
        "get_workspace",
    }
)  # fmt: skip

_FINANCE = frozenset(
    {
        # invoices
        "create_invoice", "get_invoice", "list_invoices", "update_invoice_draft", "finalize_invoice",
        "send_invoice", "void_invoice", "mark_invoice_uncollectible", "create_credit_note",
        "list_overdue_invoices", "send_payment_reminder",
        # payments
        "record_payment", "get_payment", "list_payments", "refund_payment", "list_refunds", "create_payment_link",
        # subscriptions
        "create_plan", "list_plans", "update_plan", "archive_plan", "subscribe_member", "get_subscription",
        "list_subscriptions", "pause_subscription", "resume_subscription", "cancel_subscription",
        "change_subscription_plan", "run_subscription_billing",
        # reports
        "get_dashboard_stats", "revenue_report", "membership_report", "no_show_report",
        # whom the money is about
        "search_members", "get_member_profile", "get_order", "list_orders", "get_workspace",
    }
)  # fmt: skip

# What a booking page needs, with a key anyone can read in its source: the services, their free slots, the published
# posts, and a booking request (create_booking by the customer's email, always pending: see the bookings domain).
# Publishable keys work on the REST API only, which pins list_posts to published posts.
PUBLISHABLE = "publishable"
_PUBLISHABLE = frozenset({"list_services", "get_available_slots", "list_posts", "create_booking"})

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("readonly", "Every read tool; nothing can be changed, and the database refuses writes too.",
                read_only=True),
        Profile("front_desk", "Customers, bookings and classes.", _FRONT_DESK),
        Profile("marketing", "Customers, messaging, campaigns and content.", _MARKETING),
        Profile("finance", "Invoices, payments, subscriptions and reports.", _FINANCE),
        Profile("owner", "Everything the credential's scopes allow."),
        Profile(PUBLISHABLE, "A browser's booking page: services, free slots, published posts, booking requests.",
                _PUBLISHABLE, pinned=(("list_posts", "status", "published"),), keys_only=True),
    )
}  # fmt: skip
NAMES = tuple(PROFILES)


def profile(name: str) -> Profile:
    found = PROFILES.get(name)
    if found is None:
        raise ValueError(f"unknown profile {name!r} (known: {', '.join(NAMES)})")
    return found
