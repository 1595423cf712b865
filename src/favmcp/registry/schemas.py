"""The checked-in snapshot of every tool's contract (schemas/), so a change shows up as a diff."""

from __future__ import annotations

import json
from pathlib import Path

from favmcp.registry.domain import Platform
from favmcp.registry.spec import compact_schema


def _dump(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_files(platform: Platform) -> dict[str, str]:
    """Relative path → file text, for every tool, every domain event, and an index of each."""
    files: dict[str, str] = {}
    index = []
    for spec in sorted(platform.specs, key=lambda s: (s.domain, s.name)):
        e = spec.effect
        annotations = {
            "readOnlyHint": e.read_only,
            "destructiveHint": e.destructive,
            "idempotentHint": e.idempotent,
            "openWorldHint": e.open_world,
        }
        files[f"{spec.domain}/{spec.name}.json"] = _dump(
            {
                "name": spec.name,
                "title": spec.title,
                "description": spec.description,
                "annotations": annotations,
                "_meta": spec.meta(),
                "inputSchema": spec.input_schema(),
                "outputSchema": spec.output_schema(),
            }
        )
        index.append({"name": spec.name, "domain": spec.domain, "scope": spec.scope, "gate": spec.gate, **annotations})
    files["index.json"] = _dump({"tools": index})
    events = sorted(platform.events, key=lambda e: e.name)
    for event in events:
        files[f"events/{event.name}.json"] = _dump({"name": event.name, "payloadSchema": compact_schema(event)})
    files["events/index.json"] = _dump({"events": [e.name for e in events]})
    return files


def stale_files(root: Path, platform: Platform) -> list[str]:
    """Paths under root that differ from what the registry generates (missing, changed or extra)."""
    wanted = schema_files(platform)
    found = {p.relative_to(root).as_posix() for p in root.rglob("*.json")} if root.exists() else set()
    changed = [p for p, text in wanted.items() if not (root / p).exists() or (root / p).read_text() != text]
    return sorted(set(changed) | (found - set(wanted)))
