"""The registry of every ToolSpec, and the one place where serving and listing are filtered.

Domain toolsets and read-only narrow what the server serves: a tool left out is neither listed nor callable. The
core listing (`--toolsets core`) narrows only what tools/list shows, for clients that cap the number of tools: every
other tool stays callable by name once the agent has found it with search_tools and describe_tool.
"""

from __future__ import annotations

from collections.abc import Iterable

from favmcp.core.errors import ErrorCode, FavError
from favmcp.registry.profiles import Profile
from favmcp.registry.spec import ToolSpec

# Discovery works whatever toolsets are chosen.
ALWAYS_LISTED = frozenset({"whoami", "search_tools", "describe_tool"})

CORE = "core"
# What a front desk does every day, across the whole catalog (tools of domains not built yet are listed once they
# exist): find and register customers, book and run appointments, sell, bill, take payment, message; discovery for
# the rest. At most 40, the lowest cap among clients that limit tools.
CORE_TOOLS = ALWAYS_LISTED | frozenset(
    {
        "get_workspace",
        "search_members",
        "get_member_profile",
        "create_member",
        "update_member",
        "add_member_note",
        "attach_tags",
        "set_marketing_consent",
        "list_services",
        "list_team_members",
        "get_available_slots",
        "create_booking",
        "get_booking_detail",
        "list_bookings",
        "confirm_booking",
        "reschedule_booking",
        "cancel_booking",
        "check_in_booking",
        "complete_booking",
        "mark_no_show",
        "list_class_sessions",
        "join_waitlist",
        "get_points_balance",
        "redeem_reward",
        "list_products",
        "create_order",
        "create_invoice",
        "get_invoice",
        "list_invoices",
        "send_invoice",
        "record_payment",
        "create_payment_link",
        "get_subscription",
        "send_message",
        "get_approval",
    }
)


class Registry:
    def __init__(
        self,
        specs: Iterable[ToolSpec],
        *,
        toolsets: frozenset[str] | None = None,
        read_only: bool = False,
        profile: Profile | None = None,
    ) -> None:
        self.specs: dict[str, ToolSpec] = {}
        for spec in specs:
            if spec.name in self.specs:
                raise ValueError(f"tool {spec.name!r} is declared twice")
            self.specs[spec.name] = spec
        core = toolsets is not None and CORE in toolsets
        if core and toolsets != {CORE}:
            raise ValueError("the core listing cannot be combined with domain toolsets")
        domains = {s.domain for s in self.specs.values()}
        if toolsets is not None and not core and not toolsets <= domains:
            unknown = ", ".join(sorted(toolsets - domains))
            raise ValueError(f"unknown toolsets: {unknown} (known: {CORE}, {', '.join(sorted(domains))})")
        self.toolsets = None if core else toolsets
        self.read_only = read_only
        self.profile = profile
        self._served = [s for s in self.specs.values() if self._is_served(s)]
        self._served_names = {s.name for s in self._served}
        self._tools_list = [s for s in self._served if not core or s.name in CORE_TOOLS]

    def _is_served(self, spec: ToolSpec) -> bool:
        if self.read_only and not spec.effect.read_only:
            return False
        if self.profile is not None and not self.profile.allows(spec):
            return False
        return self.toolsets is None or spec.domain in self.toolsets or spec.name in ALWAYS_LISTED

    def narrowed(self, profile: Profile) -> Registry:
        """This server's tools within a profile (the core listing gives way to the profile's own)."""
        return Registry(self.specs.values(), toolsets=self.toolsets, read_only=self.read_only, profile=profile)

    def listed(self) -> list[ToolSpec]:
        """Every tool this server serves under its filters: what discovery finds and what can be called."""
        return self._served

    def tools_list(self) -> list[ToolSpec]:
        """What tools/list shows: the served tools, or only the core ones when the core listing is chosen."""
        return self._tools_list

    def get(self, name: str) -> ToolSpec:
        """A tool this server serves under the current filters; others answer not_found or forbidden."""
        spec = self.specs.get(name)
        if spec is None:
            raise FavError(ErrorCode.not_found, f"No tool named {name!r}.", hint="Find tools with search_tools.")
        if name not in self._served_names:
            if self.profile is not None and not self.profile.allows(spec):
                raise FavError(
                    ErrorCode.forbidden,
                    f"{name} is not in the {self.profile.name} profile.",
                    hint="Find the tools of this profile with search_tools; another profile's key or URL has the rest.",
                )
            if self.read_only and not spec.effect.read_only:
                raise FavError(ErrorCode.forbidden, f"{name} changes data and this server is read-only.")
            raise FavError(ErrorCode.not_found, f"{name} is not in this server's toolsets.")
        return spec
