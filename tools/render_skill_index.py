"""Write skills/index.json: every skill's name, description, setup, prompt arguments and the tools its flow calls.

Do not edit skills/index.json by hand.

uv run python tools/render_skill_index.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from favmcp.skills import load_all

ROOT = Path(__file__).resolve().parent.parent / "skills"
INDEX = ROOT / "index.json"


def index_text() -> str:
    skills = []
    for skill in load_all(ROOT).values():
        tools = list(dict.fromkeys(step.tool for step in skill.steps if not step.setup))
        skills.append(
            {
                "name": skill.name,
                "description": skill.description,
                "path": f"{skill.name}/SKILL.md",
                "arguments": [
                    {"name": a.name, "description": a.description, "required": a.required} for a in skill.arguments
                ],
                "tools": tools,
            }
        )
    return json.dumps({"skills": skills}, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when skills/index.json is stale")
    wanted = index_text()
    if parser.parse_args().check:
        if not INDEX.exists() or INDEX.read_text() != wanted:
            sys.exit(f"{INDEX} is stale: run uv run python tools/render_skill_index.py")
        return
    INDEX.write_text(wanted)
    print(f"wrote {INDEX}")


if __name__ == "__main__":
    main()
