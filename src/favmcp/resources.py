"""Files shipped with the package (skills/, schemas/): inside the wheel, or beside the source in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    installed = _PACKAGE / "_data" / name
    return installed if installed.exists() else _PACKAGE.parent.parent / name
