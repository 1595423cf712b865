"""Write every tool's JSON Schemas and annotations, and every domain event's payload schema, to schemas/.

Do not edit those files by hand.

uv run python tools/export_schemas.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

from favmcp.composition import platform
from favmcp.registry.schemas import schema_files

ROOT = Path(__file__).resolve().parent.parent / "schemas"


def main() -> None:
    files = schema_files(platform())
    for child in ROOT.iterdir() if ROOT.exists() else []:
        if child.is_dir():
            shutil.rmtree(child)
        elif child.suffix == ".json":
            child.unlink()
    for rel, text in files.items():
        path = ROOT / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(files)} files to {ROOT}")


if __name__ == "__main__":
    main()
