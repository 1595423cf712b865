"""Node.js for the tests that need it: found on PATH (required under FAVMCP_REQUIRE_NODE=1, as in CI), and an npm
project built once per test session: pytest-xdist's workers take turns under a lock, and the first of a run (they
share PYTEST_XDIST_TESTRUNUID) runs `npm ci` and the given scripts for all."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

INSTALL_TIMEOUT = 600.0


def node_and_npm(needed_for: str) -> tuple[str, str]:
    """The node and npm commands; without them the test fails under FAVMCP_REQUIRE_NODE=1 and is skipped otherwise."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("FAVMCP_REQUIRE_NODE") == "1":
            pytest.fail("Node.js and npm are required (FAVMCP_REQUIRE_NODE=1) but not on PATH")
        pytest.skip(f"Node.js and npm are needed {needed_for}")
    return node, npm


def build_once(project: Path, npm: str, *scripts: str) -> Path:
    """`npm ci` then `npm run <script>` for each script, in `project`; returns its dist/ folder."""
    dist = project / "dist"
    dist.mkdir(exist_ok=True)
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
    with (dist / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = dist / ".built-by-run"
        if not marker.exists() or marker.read_text() != run_id:
            for args in (["ci", "--no-audit", "--no-fund"], *(["run", script] for script in scripts)):
                done = subprocess.run(
                    [npm, *args], cwd=project, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
                )
                assert done.returncode == 0, f"npm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
            marker.write_text(run_id)
    return dist
