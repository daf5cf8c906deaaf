"""The doctor's findings reach the terminal as a table: status, check, detail, cause, fix.

The end-to-end case runs `reforge doctor` with the project's real doctor role on
this machine (local connection) against a scratch PATH that holds the classic
mismatch: python3 is the system Python, ipython runs another environment's Python
whose user site is disabled. Home and storage are scratch directories too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reforge.summary import Summary, render_text

REPO = Path(__file__).resolve().parents[2]
REFORGE = Path(sys.executable).with_name("reforge")
ANSI = re.compile(r"\x1b\[[0-9;]*m")

ENTRY = {"check": "ipython", "status": "FAIL", "detail": "/x/bin/ipython runs /other/bin/python3",
         "cause": "ipython cannot import X.", "fix": "Install ipython for python."}
OK = {"check": "python3", "status": "OK", "detail": "/usr/bin/python3 is Python 3.11", "cause": "", "fix": ""}


def summary(custom_stats: dict) -> Summary:
    return Summary(command="doctor", playbook="playbooks/doctor.yml", status="failed", rc=2, elapsed_seconds=1.0,
                   tasks=3, hosts={}, slowest_tasks=[], failed_tasks=[], errors=[], custom_stats=custom_stats,
                   artifacts="/tmp/x")


def test_the_report_is_a_table_with_cause_and_fix_not_json() -> None:
    lines = render_text(summary({"doctor_report": {"laptop": [OK, ENTRY]},
                                 "doctor_summary": {"laptop": {"status": "FAIL", "ok": 1, "warn": 0, "fail": 1,
                                                               "skip": 0, "failed_checks": ["ipython"]}}}))
    text = "\n".join(lines)
    assert '{"' not in text
    fail = next(i for i, line in enumerate(lines) if re.match(r"^\s+FAIL\s+ipython\s+/x/bin/ipython runs", line))
    assert re.match(r"^\s+cause: ipython cannot import X\.$", lines[fail + 1])
    assert re.match(r"^\s+fix: Install ipython for python\.$", lines[fail + 2])
    assert any(re.match(r"^\s+OK\s+python3\s+/usr/bin/python3 is Python 3.11$", line) for line in lines)
    assert any("laptop" in line and "FAIL" in line and "1 OK" in line and "1 FAIL" in line for line in lines)
    assert not ANSI.search(text)


def test_the_status_is_coloured_only_on_request() -> None:
    lines = render_text(summary({"doctor_report": {"laptop": [OK, ENTRY]}}), colour=True)
    fail = next(line for line in lines if "ipython" in line and "FAIL" in line)
    assert ANSI.search(fail)
    assert ANSI.sub("", fail).split() [0] == "FAIL"


def test_other_custom_stats_are_still_listed() -> None:
    lines = render_text(summary({"rollback": ["renamed the old prefix back"]}))
    assert "  rollback:" in lines and "    renamed the old prefix back" in lines


@pytest.fixture
def mismatch(tmp_path: Path) -> dict[str, Path]:
    """A PATH where ipython runs another Python (user site disabled) than python3."""
    bin_dir, home, storage = tmp_path / "bin", tmp_path / "home", tmp_path / "storage"
    for path in (bin_dir, home, storage):
        path.mkdir()
    other = tmp_path / "other"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(other)], check=True)
    (bin_dir / "python3").symlink_to(sys.executable)
    (bin_dir / "python").symlink_to(sys.executable)
    ipython = bin_dir / "ipython"
    ipython.write_text(f"#!{other}/bin/python3 -s\nimport sys\nif sys.argv[1:2] == ['-c']:\n    exec(sys.argv[2])\n")
    ipython.chmod(0o755)
    return {"bin": bin_dir, "home": home, "storage": storage, "root": tmp_path}


def test_reforge_doctor_prints_the_fail_line_its_cause_and_its_fix(mismatch: dict[str, Path]) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "REFORGE_"))}
    env.update(HOME=str(mismatch["home"]), XDG_STATE_HOME=str(mismatch["root"] / "state"))
    extra = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
             "doctor_path": str(mismatch["bin"]), "doctor_storage_dir": str(mismatch["storage"]),
             "doctor_home_dir": str(mismatch["home"]), "doctor_gpu": False}
    result = subprocess.run([str(REFORGE), "doctor", "--project", str(REPO), "-i", "localhost,",
                             "-e", json.dumps(extra)], env=env, cwd=mismatch["root"], capture_output=True,
                            text=True, timeout=600, check=False)
    out = result.stdout
    assert result.returncode == 2, out[-3000:] + result.stderr[-3000:]
    lines = out.splitlines()
    fail = next(i for i, line in enumerate(lines) if re.match(r"^\s+FAIL\s+ipython\s+\S+/bin/ipython runs ", line))
    assert lines[fail + 1].strip().startswith("cause: ") and "ipython cannot import X" in lines[fail + 1]
    assert lines[fail + 2].strip().startswith("fix: ") and "pip install ipython" in lines[fail + 2]
    # "The report above gives the cause and the fix": the table comes before that message.
    assert fail < next(i for i, line in enumerate(lines) if "The report above gives the cause" in line)
    assert '{"check"' not in out and '"localhost": [' not in out
    assert not ANSI.search(out)
