"""SKILL.md playbooks: their frontmatter, and their flows as steps a program can run.

A skill is `skills/<name>/SKILL.md`: frontmatter between `---` lines, then markdown. The frontmatter holds
`name`, `description` (when to use it) and an optional `metadata` map of one level (`setup`, `arguments`);
a value that starts with `[` or `{` is JSON (also valid YAML flow syntax), any other value is plain text.

Each step of the standard flow is a fenced block whose info string is `json favmcp`, holding one JSON object:

    {"tool": "create_member", "args": {"name": "Ada", "email": "ada+${unique}@example.com"},
     "expect": "ok", "match": {"status": "active"}, "save": {"member_id": "id"}}

- `tool`: the tool to call; `args`: its arguments (default `{}`).
- `as`: whose credential calls: `"anonymous"`, or a variable holding an API key (default `$api_key`).
- `expect`: `"ok"` (default), `"pending_approval"` (a success that waits for a person), or an error code.
- `match`: dotted path → value, checked against the answer (the result, or the error object).
- `save`: variable → dotted path into the answer, for later steps.
- `setup`: true for a step that only makes the example's world (a service to book, a customer to find).

In `args` and `match`, a string `"$name"` is the variable's value and `${name}` inside a string is its text.
Variables are what earlier steps saved, the skill's arguments, and these: `api_key`, `today`, `tomorrow`,
`in_<N>_days`, `<N>_days_ago` (UTC dates), `now` (a UTC timestamp), `unique` (a suffix that differs per run),
and `ask:<what>` (a person's answer: `ask:emailed_code` is the one-time code just emailed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from favmcp.resources import data_dir

STEP_INFO = "json favmcp"
STEP_KEYS = frozenset({"tool", "args", "as", "expect", "match", "save", "setup"})
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
WHOLE_VARIABLE = re.compile(r"^\$(?P<name>[a-z0-9][a-z0-9_:]*)$")
INNER_VARIABLE = re.compile(r"\$\{(?P<name>[a-z0-9][a-z0-9_:]*)\}")
DAYS_AHEAD = re.compile(r"^in_(\d+)_days$")
DAYS_AGO = re.compile(r"^(\d+)_days_ago$")


class SkillError(ValueError):
    """A SKILL.md that does not parse: names the file and line."""


@dataclass(frozen=True)
class SkillArgument:
    name: str
    description: str
    required: bool = False
    # What the flow's example run passes (a prompt's caller passes their own).
    example: Any = None


@dataclass(frozen=True)
class Step:
    tool: str
    line: int
    args: dict[str, Any] = field(default_factory=dict)
    as_: str = "$api_key"
    expect: str = "ok"
    match: dict[str, Any] = field(default_factory=dict)
    save: dict[str, str] = field(default_factory=dict)
    setup: bool = False


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    path: Path
    text: str
    body: str
    setup: str = "owner"
    arguments: tuple[SkillArgument, ...] = ()
    steps: tuple[Step, ...] = ()


def parse(text: str, path: Path) -> Skill:
    meta, body, body_line = _frontmatter(text, path)
    name, description = meta.get("name"), meta.get("description")
    if not isinstance(name, str) or not isinstance(description, str) or not name or not description:
        raise SkillError(f"{path}: the frontmatter needs a name and a description")
    extra = meta.get("metadata") or {}
    if not isinstance(extra, dict):
        raise SkillError(f"{path}: metadata must be a map")
    arguments = tuple(
        SkillArgument(str(a["name"]), str(a.get("description", "")), bool(a.get("required", False)), a.get("example"))
        for a in extra.get("arguments", [])
    )
    steps = []
    for fence in FENCE.finditer(body):
        if fence.group("info").strip() != STEP_INFO:
            continue
        line = body_line + body.count("\n", 0, fence.start()) + 1
        steps.append(_step(fence.group("body"), path, line))
    return Skill(
        name=name,
        description=description,
        path=path,
        text=text,
        body=body,
        setup=str(extra.get("setup", "owner")),
        arguments=arguments,
        steps=tuple(steps),
    )


def skill_uri(name: str) -> str:
    return f"skill://{name}/SKILL.md"


def load_all(root: Path | None = None) -> dict[str, Skill]:
    """Skill name → skill, for every skills/*/SKILL.md (the shipped ones unless root is given; those are read
    once per process)."""
    if root is None:
        return _shipped()
    found = {}
    for path in sorted(root.glob("*/SKILL.md")):
        skill = parse(path.read_text(), path)
        if skill.name != path.parent.name:
            raise SkillError(f"{path}: name {skill.name!r} is not its folder's name")
        found[skill.name] = skill
    return found


@cache
def _shipped() -> dict[str, Skill]:
    return load_all(data_dir("skills"))


def _frontmatter(text: str, path: Path) -> tuple[dict[str, Any], str, int]:
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise SkillError(f"{path}: no frontmatter (a first line of ---)")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise SkillError(f"{path}: the frontmatter has no closing ---") from None
    meta: dict[str, Any] = {}
    current: dict[str, Any] | None = None
    for number, raw in enumerate(lines[1:end], start=2):
        if not raw.strip():
            continue
        key, sep, value = raw.strip().partition(":")
        if not sep:
            raise SkillError(f"{path}:{number}: expected key: value")
        target = current if raw.startswith("  ") and current is not None else meta
        parsed = _value(value.strip(), path, number)
        if target is meta and parsed == "":
            current = meta[key] = {}
        else:
            target[key] = parsed
            if target is meta:
                current = None
    return meta, "\n".join(lines[end + 1 :]), end + 1


def _value(text: str, path: Path, line: int) -> Any:
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SkillError(f"{path}:{line}: {exc}") from None
    return text


def _step(body: str, path: Path, line: int) -> Step:
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise SkillError(f"{path}:{line + exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("tool"), str):
        raise SkillError(f"{path}:{line}: a step is a JSON object with a tool")
    unknown = set(data) - STEP_KEYS
    if unknown:
        raise SkillError(f"{path}:{line}: unknown keys {sorted(unknown)} (known: {sorted(STEP_KEYS)})")
    return Step(
        tool=data["tool"],
        line=line,
        args=data.get("args", {}),
        as_=data.get("as", "$api_key"),
        expect=data.get("expect", "ok"),
        match=data.get("match", {}),
        save=data.get("save", {}),
        setup=bool(data.get("setup", False)),
    )


def variables_in(value: Any) -> set[str]:
    """Every variable a step's value names."""
    if isinstance(value, str):
        whole = WHOLE_VARIABLE.match(value)
        return {whole.group("name")} if whole else {m.group("name") for m in INNER_VARIABLE.finditer(value)}
    if isinstance(value, dict):
        return set().union(*(variables_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(variables_in(v) for v in value)) if value else set()
    return set()


def is_builtin(name: str) -> bool:
    return (
        name in ("api_key", "today", "tomorrow", "now", "unique")
        or name.startswith("ask:")
        or bool(DAYS_AHEAD.match(name) or DAYS_AGO.match(name))
    )


def builtin_value(name: str, now: datetime, unique: str) -> Any:
    """The value of a built-in variable other than api_key and ask:*, which the caller supplies."""
    today = now.date()
    if name == "now":
        return now.isoformat().replace("+00:00", "Z")
    if name == "unique":
        return unique
    if name in ("today", "tomorrow"):
        return (today + timedelta(days=name == "tomorrow")).isoformat()
    if ahead := DAYS_AHEAD.match(name):
        return (today + timedelta(days=int(ahead.group(1)))).isoformat()
    if ago := DAYS_AGO.match(name):
        return (today - timedelta(days=int(ago.group(1)))).isoformat()
    raise KeyError(name)


def substitute(value: Any, lookup: Callable[[str], Any]) -> Any:
    """The value with its variables replaced through lookup (which raises KeyError for an unknown one)."""
    if isinstance(value, str):
        whole = WHOLE_VARIABLE.match(value)
        if whole:
            return lookup(whole.group("name"))
        return INNER_VARIABLE.sub(lambda m: str(lookup(m.group("name"))), value)
    if isinstance(value, dict):
        return {k: substitute(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, lookup) for v in value]
    return value


def dig(answer: Any, path: str) -> Any:
    """The value at a dotted path (`items.0.id`); KeyError when the answer has nothing there."""
    here = answer
    for part in path.split("."):
        if isinstance(here, Mapping) and part in here:
            here = here[part]
        elif isinstance(here, list) and part.isdigit() and int(part) < len(here):
            here = here[int(part)]
        else:
            raise KeyError(path)
    return here
