"""schemas/ is generated from the registry; this fails when it is out of date."""

from __future__ import annotations

from pathlib import Path

from favmcp.composition import platform
from favmcp.registry.schemas import stale_files

ROOT = Path(__file__).resolve().parent.parent / "schemas"


def test_schemas_directory_matches_the_registry() -> None:
    stale = stale_files(ROOT, platform())
    assert not stale, f"schemas/ is out of date ({', '.join(stale[:5])}); run: uv run python tools/export_schemas.py"


def test_stale_files_notices_a_changed_schema(tmp_path: Path) -> None:
    specs = platform()
    assert stale_files(tmp_path, specs), "an empty directory is stale"
    (tmp_path / "index.json").write_text("{}")
    assert "index.json" in stale_files(tmp_path, specs)
