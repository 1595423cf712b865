"""What an MCP server says about its tools before any is called, built once and kept on disk between starts.

Building the listing means every tool's JSON Schema from pydantic: a third of a second for 165 tools, a fifth of
an HTTP server's start. A stdio server starts once per client session, an HTTP server on every deploy or restart,
so the listing is written to the cache directory (FAVMCP_HOME/cache unless FAVMCP_CACHE_DIR) and read back on the
next start, keyed by everything it is made from: this code (each module's size and modification time), the
versions of pydantic and the MCP SDK, the server's filters and its domains. A change to any of them makes a new key,
so a stale listing is never served; an unreadable or unwritable cache only means building it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import mcp.types as types
import pydantic

from favmcp import __version__
from favmcp.composition import DOMAINS
from favmcp.registry.spec import Gate, ToolSpec

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from favmcp.config import Settings
    from favmcp.registry.registry import Registry

PACKAGE = Path(__file__).resolve().parent.parent
UNUSED_SECONDS = 24 * 3600


def tool_definition(spec: ToolSpec) -> types.Tool:
    e = spec.effect
    return types.Tool(
        name=spec.name,
        title=spec.title,
        description=spec.description,
        input_schema=spec.input_schema(listing=True),
        output_schema=spec.output_schema(listing=True),
        annotations=types.ToolAnnotations(
            read_only_hint=e.read_only,
            destructive_hint=e.destructive,
            idempotent_hint=e.idempotent,
            open_world_hint=e.open_world,
        ),
        _meta=spec.meta(),
    )


@dataclass(frozen=True)
class Listing:
    tools: dict[str, Any]  # the tools/list answer, serialized once
    # Every callable tool's definition as the answer holds it, listed or not: the core listing shows few, and a
    # profile narrowed from it shows its own tools (Registry.narrowed).
    definitions: dict[str, dict[str, Any]]
    input_schemas: dict[str, dict[str, Any]]  # every callable tool's, listed or not
    confirm_gated: frozenset[str]
    approval_gated: frozenset[str]

    @classmethod
    def of(cls, registry: Registry) -> Listing:
        served = registry.listed()
        definitions = {
            s.name: tool_definition(s).model_dump(by_alias=True, mode="json", exclude_none=True) for s in served
        }
        return cls(
            tools=_answer(definitions, [s.name for s in registry.tools_list()]),
            definitions=definitions,
            input_schemas={s.name: s.input_schema() for s in served},
            confirm_gated=frozenset(s.name for s in served if s.gate is Gate.confirm),
            approval_gated=frozenset(s.name for s in served if s.gate is Gate.approval),
        )

    def narrowed(self, registry: Registry) -> Listing:
        """This listing cut down to a narrower registry's tools (a profile's), without building a schema again."""
        return self.restricted(_names(registry))

    def restricted(self, names: ProfileNames) -> Listing:
        served = set(names["served"])
        return Listing(
            tools=_answer(self.definitions, [name for name in names["listed"] if name in self.definitions]),
            definitions={name: d for name, d in self.definitions.items() if name in served},
            input_schemas={name: schema for name, schema in self.input_schemas.items() if name in served},
            confirm_gated=self.confirm_gated & served,
            approval_gated=self.approval_gated & served,
        )


def _answer(definitions: Mapping[str, dict[str, Any]], listed: list[str]) -> dict[str, Any]:
    answer = types.ListToolsResult(tools=[]).model_dump(by_alias=True, mode="json", exclude_none=True)
    return answer | {"tools": [definitions[name] for name in listed]}


class ProfileNames(TypedDict):
    listed: list[str]  # in tools/list
    served: list[str]  # callable


def _names(registry: Registry) -> ProfileNames:
    return {"listed": [s.name for s in registry.tools_list()], "served": [s.name for s in registry.listed()]}


@dataclass(frozen=True)
class Cached:
    """A listing and its profiles' narrowed listings, as kept between starts."""

    listing: Listing
    profiled: dict[str, Listing]


def cache_key(settings: Settings, domains: Sequence[str] = DOMAINS) -> str:
    """domains: the served platform's, when it is not the composition root's (an app given another platform)."""
    digest = hashlib.blake2b(digest_size=16)
    filters = {"toolsets": sorted(settings.toolsets or []) or None, "read_only": settings.read_only}
    digest.update(json.dumps([__version__, pydantic.VERSION, version("mcp"), filters, list(domains)]).encode())
    for path in sorted(PACKAGE.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(PACKAGE)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _path(settings: Settings, key: str) -> Path:
    return settings.cache_dir / f"listing-{key}.json"


def load_cached(settings: Settings, domains: Sequence[str] = DOMAINS) -> tuple[Cached | None, str]:
    """The listings kept for this code, these filters and these domains, if any, and their key."""
    key = cache_key(settings, domains)
    path = _path(settings, key)
    try:
        saved = json.loads(path.read_text())
        listing = Listing(
            tools=_answer(saved["definitions"], saved["listed"]),
            definitions=saved["definitions"],
            input_schemas=saved["input_schemas"],
            confirm_gated=frozenset(saved["confirm_gated"]),
            approval_gated=frozenset(saved["approval_gated"]),
        )
        profiled = {name: listing.restricted(names) for name, names in saved["profiles"].items()}
        os.utime(path)  # in use: kept by the clean-up in save()
    except (OSError, ValueError, KeyError, TypeError):
        return None, key
    return Cached(listing, profiled), key


def built(settings: Settings, key: str, registry: Registry, profiles: Mapping[str, Registry]) -> Cached:
    """The listing and its profiles, made from the registry and kept under `key` for the next start."""
    listing = Listing.of(registry)
    save(settings, key, listing, profiles)
    return Cached(listing, {name: listing.narrowed(r) for name, r in profiles.items()})


def cached_or_built(
    settings: Settings, registry: Registry, profiles: Mapping[str, Registry], domains: Sequence[str]
) -> Cached:
    cached, key = load_cached(settings, domains)
    return cached if cached is not None else built(settings, key, registry, profiles)


def save(settings: Settings, key: str, listing: Listing, profiles: Mapping[str, Registry]) -> None:
    """Written whole or not at all (a rename). Listings unused for a day are removed: those of earlier code, while
    the listings of other filters in use beside this one (another server sharing the cache) stay."""
    path = _path(settings, key)
    saved = {
        "definitions": listing.definitions,
        "listed": [tool["name"] for tool in listing.tools["tools"]],
        "input_schemas": listing.input_schemas,
        "confirm_gated": sorted(listing.confirm_gated),
        "approval_gated": sorted(listing.approval_gated),
        "profiles": {name: _names(registry) for name, registry in profiles.items()},
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for old in path.parent.glob("listing-*.json"):
            if time.time() - old.stat().st_mtime > UNUSED_SECONDS:
                old.unlink(missing_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(saved, ensure_ascii=False, separators=(",", ":")))
        partial.replace(path)
    except OSError:
        return


def _key_digest(secret: str) -> str:
    return hashlib.blake2b(secret.encode(), digest_size=16).hexdigest()


def _profiles_path(settings: Settings) -> Path:
    return settings.home / "cache" / "key-profiles.json"  # of this home's keys, so not in a shared cache


def remembered_profile(settings: Settings, secret: str) -> tuple[bool, str | None]:
    """Whether an earlier session learnt this key's profile, and the profile (None: every tool). A key's profile is
    fixed when it is made, so what was learnt stays true; a key revoked since is refused at its first call."""
    try:
        known = json.loads(_profiles_path(settings).read_text())
        digest = _key_digest(secret)
        return (True, known[digest]) if digest in known else (False, None)
    except (OSError, ValueError, TypeError):
        return False, None


def remember_profile(settings: Settings, secret: str, profile: str | None) -> None:
    path = _profiles_path(settings)
    try:
        known = json.loads(path.read_text()) if path.exists() else {}
        known[_key_digest(secret)] = profile
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(known))
        partial.replace(path)
    except (OSError, ValueError, TypeError):
        return
