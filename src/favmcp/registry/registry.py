"""The registry of every ToolSpec, and the one place where listing is filtered (toolsets, read-only)."""

from __future__ import annotations

from collections.abc import Iterable

from favmcp.core.errors import ErrorCode, FavError
from favmcp.registry.spec import ToolSpec

# Discovery works whatever toolsets are chosen.
ALWAYS_LISTED = frozenset({"whoami", "search_tools", "describe_tool"})


class Registry:
    def __init__(
        self, specs: Iterable[ToolSpec], *, toolsets: frozenset[str] | None = None, read_only: bool = False
    ) -> None:
        self.specs: dict[str, ToolSpec] = {}
        for spec in specs:
            if spec.name in self.specs:
                raise ValueError(f"tool {spec.name!r} is declared twice")
            self.specs[spec.name] = spec
        domains = {s.domain for s in self.specs.values()}
        if toolsets is not None and not toolsets <= domains:
            unknown = ", ".join(sorted(toolsets - domains))
            raise ValueError(f"unknown toolsets: {unknown} (known: {', '.join(sorted(domains))})")
        self.toolsets = toolsets
        self.read_only = read_only
        self._listed = [s for s in self.specs.values() if self._is_listed(s)]
        self._listed_names = {s.name for s in self._listed}

    def _is_listed(self, spec: ToolSpec) -> bool:
        if self.read_only and not spec.effect.read_only:
            return False
        return self.toolsets is None or spec.domain in self.toolsets or spec.name in ALWAYS_LISTED

    def listed(self) -> list[ToolSpec]:
        return self._listed

    def get(self, name: str) -> ToolSpec:
        """A tool this server offers under the current filters; others answer not_found or forbidden."""
        spec = self.specs.get(name)
        if spec is None:
            raise FavError(ErrorCode.not_found, f"No tool named {name!r}.", hint="Find tools with search_tools.")
        if name not in self._listed_names:
            if self.read_only and not spec.effect.read_only:
                raise FavError(ErrorCode.forbidden, f"{name} changes data and this server is read-only.")
            raise FavError(ErrorCode.not_found, f"{name} is not in this server's toolsets.")
        return spec
