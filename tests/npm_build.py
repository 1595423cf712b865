"""An npm project built once per test session: pytest-xdist's workers take turns under a lock, and the first of a
run (they share PYTEST_XDIST_TESTRUNUID) runs `npm ci` and the given scripts for all."""

from __future__ import annotations

import fcntl
import os
import subprocess
import uuid
from pathlib import Path

INSTALL_TIMEOUT = 600.0


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
