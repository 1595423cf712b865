"""The layering, checked by reading the source: domains never reach the session or build statements, and the
platform (registry, db, auth, effects) never imports a domain. A new module that breaks either fails here."""

from __future__ import annotations

import ast
from pathlib import Path

from favmcp import composition

SRC = Path(__file__).resolve().parent.parent / "src" / "favmcp"
PLATFORM = ("registry", "db", "auth", "effects")
# Statement builders: a domain brings where-clauses; WorkspaceDB builds the statement with the workspace in it.
STATEMENT_BUILDERS = {"select", "update", "delete", "insert", "exists", "Select", "Update", "Delete", "Insert"}
RAW_ACCESS = {"session", "_session", "AsyncSession", "Session", "engine", "sessions", "read_sessions"}


def modules(under: str) -> list[Path]:
    return sorted((SRC / under).rglob("*.py"))


def imports_of(tree: ast.AST) -> list[tuple[str, set[str]]]:
    found: list[tuple[str, set[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, {alias.name for alias in node.names}))
        elif isinstance(node, ast.Import):
            found += [(alias.name, set()) for alias in node.names]
    return found


def domain_violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    problems = []
    for module, names in imports_of(tree):
        if module.split(".")[0] in {"sqlalchemy", "sqlmodel"} and names & STATEMENT_BUILDERS:
            problems.append(f"imports {sorted(names & STATEMENT_BUILDERS)} from {module}")
        if names & RAW_ACCESS or module in {"favmcp.db.engine", "sqlalchemy.ext.asyncio", "sqlalchemy.orm"}:
            problems.append(f"imports raw database access from {module}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in RAW_ACCESS:
            problems.append(f"line {node.lineno}: touches .{node.attr}")
    return problems


def test_domain_code_only_reaches_the_database_through_workspace_bound_access() -> None:
    found = {str(p.relative_to(SRC)): v for p in modules("domains") if (v := domain_violations(p))}
    assert not found, found


def test_the_check_notices_a_raw_session_and_a_statement_builder(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from sqlalchemy import update\n\nasync def f(ctx):\n    await ctx.session.execute(update(X))\n")
    assert len(domain_violations(bad)) == 2


def test_the_platform_imports_no_domain() -> None:
    """Only the migrations see every table, and they get them from the composition root, never a domain."""
    found = {
        str(p.relative_to(SRC)): module
        for layer in PLATFORM
        for p in modules(layer)
        for module, _ in imports_of(ast.parse(p.read_text()))
        if module.startswith("favmcp.domains")
        or (module == "favmcp.composition" and p != SRC / "db" / "migrations" / "env.py")
    }
    assert not found, found


def test_every_domain_is_a_folder_listed_once_in_the_composition_root() -> None:
    folders = {p.name for p in (SRC / "domains").iterdir() if (p / "tools.py").exists()}
    assert sorted(composition.DOMAINS) == sorted(folders) and len(set(composition.DOMAINS)) == len(folders)
    assert [d.name for d in composition.platform().domains] == list(composition.DOMAINS)
