"""Write docs/openapi.json, the REST API's OpenAPI 3.1 document for every tool, from the registry. Do not edit that
file by hand; a server answers the same document, for the tools it serves, at GET /openapi.json.

uv run python tools/export_openapi.py            # write it
uv run python tools/export_openapi.py --check    # exit 1 when it is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from favmcp.composition import platform
from favmcp.registry.registry import Registry
from favmcp.transports.rest import openapi

OUT = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def render() -> str:
    return json.dumps(openapi(Registry(platform().specs)), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print("docs/openapi.json is out of date; run: uv run python tools/export_openapi.py")
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
