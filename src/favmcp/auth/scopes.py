"""Scopes are `domain:level`. admin implies send/decide implies write implies read."""

from __future__ import annotations

from collections.abc import Iterable

from favmcp.auth.models import Role

PUBLIC = "public"

DOMAINS = (
    "workspace", "access", "team", "members", "services", "bookings", "loyalty", "products",
    "orders", "invoices", "payments", "subscriptions", "content", "messaging", "approvals",
    "webhooks", "reports", "audit",
)  # fmt: skip
LEVELS = {"read": 1, "write": 2, "send": 3, "decide": 3, "admin": 4}


def parse(scope: str) -> tuple[str, int]:
    domain, _, level = scope.partition(":")
    if domain not in DOMAINS or level not in LEVELS:
        raise ValueError(f"unknown scope {scope!r}")
    return domain, LEVELS[level]


def is_valid(scope: str) -> bool:
    try:
        parse(scope)
    except ValueError:
        return False
    return True


def grants(held: Iterable[str], needed: str) -> bool:
    """Whether the held scopes include `needed`, directly or by implication."""
    if needed == PUBLIC:
        return True
    domain, level = parse(needed)
    for scope in held:
        d, lv = parse(scope)
        if d == domain and lv >= level:
            return True
    return False


def intersect(a: Iterable[str], b: Iterable[str]) -> list[str]:
    """The scopes of `a` that `b` also grants: a key never exceeds its holder's role."""
    return sorted(s for s in a if grants(b, s))


def _all(level: str, *domains: str) -> list[str]:
    return [f"{d}:{level}" for d in domains]


ROLE_SCOPES: dict[Role, list[str]] = {
    Role.owner: _all("admin", *DOMAINS),
    Role.admin: _all("admin", *DOMAINS),
    Role.manager: [
        "workspace:read", "team:read", "access:read", "audit:read", "reports:read", "webhooks:read",
        "members:write", "services:write", "bookings:admin", "loyalty:write", "products:write",
        "orders:write", "invoices:write", "payments:write", "subscriptions:write", "content:write",
        "messaging:send", "approvals:decide",
    ],
    Role.staff: [
        "workspace:read", "team:read", "members:read", "services:read", "bookings:write",
        "loyalty:read", "products:read", "orders:write", "content:read", "messaging:write",
    ],
}  # fmt: skip


def role_scopes(role: Role) -> list[str]:
    return list(ROLE_SCOPES[role])
