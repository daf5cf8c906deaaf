"""`reforge` with a bad value: exit 2, one line naming the variable, and nothing changed.

These run the project's real playbooks on localhost, in check mode so that even a
value that slipped through could change nothing here; the playbook's first checks
must refuse the value before any task reports a change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 180


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no ANSIBLE_* from the caller, a private state dir."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "REFORGE_"))}
    clean["XDG_STATE_HOME"] = str(tmp_path / "state")
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO / "src"), clean.get("PYTHONPATH"))))
    return clean


def reforge(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, dict, str]:
    proc = subprocess.run([sys.executable, "-m", "reforge", *args, "--project", str(REPO), "--check", "--json"],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    try:
        summary = json.loads(proc.stdout)
    except ValueError:
        summary = {}
    return proc.returncode, summary, proc.stdout + proc.stderr


@pytest.mark.parametrize(("args", "variable"), [
    (["rebuild", "-e", "base_env_state=newest"], "base_env_state"),
    (["rebuild", "-e", "base_env_snapshot_keep=0"], "base_env_snapshot_keep"),
    (["converge", "-e", '{"miniforge_prefix": "/opt/mini\'forge"}'], "miniforge_prefix"),
    (["converge", "-e", "miniforge_installer_sha256=abc"], "miniforge_installer_sha256"),
])
def test_a_bad_value_exits_2_with_one_line_before_any_change(env: dict[str, str], tmp_path: Path,
                                                             args: list[str], variable: str) -> None:
    rc, summary, output = reforge(env, tmp_path, *args)
    assert rc == 2, output[-3000:]
    assert summary["status"] == "failed"
    assert summary["hosts"]["localhost"]["changed"] == 0, output[-3000:]
    [failure] = summary["failed_tasks"]
    assert variable in failure["msg"]
    assert "\n" not in failure["msg"].strip()

