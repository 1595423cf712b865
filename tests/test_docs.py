"""The documentation stays true: docs/tools.md is what the registry generates, and every relative link in README.md,
docs/ and the skills leads to a file that exists (and, with an #anchor into markdown, to a heading there)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest
from tools.render_tool_docs import OUT, render, stale

ROOT = Path(__file__).resolve().parent.parent


def test_tools_reference_matches_the_registry() -> None:
    assert not stale(OUT, render()), "docs/tools.md is out of date; run: uv run python tools/render_tool_docs.py"


def test_stale_notices_a_changed_reference(tmp_path: Path) -> None:
    path = tmp_path / "tools.md"
    assert stale(path, render()), "a missing file is stale"
    path.write_text(render().replace("search_members", "search_customers"))
    assert stale(path, render())
    path.write_text(render())
    assert not stale(path, render())


def test_the_reference_names_every_tool_once() -> None:
    from favmcp.composition import all_specs

    headings = re.findall(r"^### (\S+)$", OUT.read_text(), flags=re.M)
    assert sorted(headings) == sorted(s.name for s in all_specs())


# Fenced blocks and code spans hold examples, not links.
FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", flags=re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", flags=re.S)
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", flags=re.M)
HTML_TARGET = re.compile(r"""<a\s[^>]*\b(?:href)=["']([^"']+)["']""", flags=re.I)
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$", flags=re.M)
HTML_ANCHOR = re.compile(r"""<a\s[^>]*\b(?:name|id)=["']([^"']+)["']""", flags=re.I)


def _without_code(text: str) -> str:
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    """The link targets of a markdown text, outside code."""
    text = _without_code(text)
    found = INLINE_LINK.findall(text) + REFERENCE.findall(text) + HTML_TARGET.findall(text)
    return [target for target in found if target]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text lowercased, punctuation dropped (hyphens and underscores
    stay), spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link or image counts by its text
    text = re.sub(r"`+", "", text)
    text = re.sub(r"\*+|(?<!\w)_+|_+(?!\w)", "", text)  # emphasis markers; an underscore inside a word stays
    text = re.sub(r"<[^>]+>", "", text)
    kept = "".join(c for c in text.lower() if c in " -_" or unicodedata.category(c)[0] in "LNM")
    return kept.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a markdown text offers: its headings' slugs (a repeated one numbered -1, -2 ...) and HTML ids."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", text)):
        base = slug(heading)
        n = counts.get(base, 0)
        counts[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found | set(HTML_ANCHOR.findall(text))


def broken_links(page: Path) -> list[str]:
    """The relative links of one markdown file that lead nowhere, each with why."""
    broken = []
    for target in links(page.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I) or target.startswith("//"):
            continue  # an absolute URL (https:, mailto:): not checked, no network
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / unquote(path_part.split("?")[0])).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and unquote(anchor).lower() not in anchors(dest.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


def pages() -> list[Path]:
    return [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "skills").glob("**/SKILL.md")),
    ]


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    assert page.exists()
    assert broken_links(page) == [], f"{page.relative_to(ROOT)} has broken links"


def test_the_documentation_is_linked_from_the_readme() -> None:
    targets = {t.split("#")[0].rstrip("/") for t in links((ROOT / "README.md").read_text())}
    docs = ("docs/tools.md", "docs/architecture.md", "docs/operations.md", "docs/security.md", "skills", "examples")
    for doc in docs:
        assert doc in targets, f"README.md does not link {doc}"


def test_the_checker_finds_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Running on Postgres\n\n## Running on Postgres\n\n### `search_members`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Top\n\n"
        "[fine](other.md#running-on-postgres) [second](other.md#running-on-postgres-1) [code](other.md#search_members)"
        " [self](#top) [web](https://example.com/x) `[in code](gone.md)`\n\n"
        "```\n[in a fence](gone.md)\n```\n\n"
        "[no file](gone.md) [no heading](other.md#running-on-sqlite) [ref]\n\n[ref]: missing/dir/\n"
    )
    assert broken_links(page) == [
        "gone.md: no such file",
        "other.md#running-on-sqlite: no heading #running-on-sqlite in other.md",
        "missing/dir/: no such file",
    ]


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Running on Postgres", "running-on-postgres"),
        ("`favmcp secrets reseal`", "favmcp-secrets-reseal"),
        ("search_members", "search_members"),
        ("Keys, scopes & roles (today)", "keys-scopes--roles-today"),
        ("SQLite vs. Postgres: which?", "sqlite-vs-postgres-which"),
        ("*Emphasis* and _more_", "emphasis-and-more"),
    ],
)
def test_slugs_follow_github(heading: str, expected: str) -> None:
    assert slug(heading) == expected
