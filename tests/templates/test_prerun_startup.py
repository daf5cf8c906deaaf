"""The startup phase behind its stamp: decided at render time, run once per change or
interval, niced, without warnings, and a steady start with it enabled starts no process.

The tool the phase runs is a stub that appends one line per run (its arguments, its
nice value and its I/O class) to a record, except in the test that runs the real
ansible-playbook. Every file of the scratch project is aged by ten minutes first, so
that "changed since the last run" means a change the test made.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_prerun import REPOSITORIES, link_entries_of, small_workspace, source_as_caller

if TYPE_CHECKING:
    from conftest import Workspace

STAMP = "startup.stamp"


def make_project(ws: "Workspace") -> Path:
    """A project copy on storage: playbook, inventory with group and host vars, ansible.cfg."""
    project = ws.storage / "reforge"
    for relative, text in (
        ("playbooks/startup.yml", "---\n"),
        ("inventory/paperspace.yml", "---\n"),
        ("inventory/group_vars/paperspace.yml", "---\n"),
        ("inventory/host_vars/localhost.yml", "---\n"),
        ("ansible.cfg", "[defaults]\n"),
    ):
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text)
    return project


def counting_tool(ws: "Workspace", record: Path) -> None:
    """venv/bin/ansible-playbook: one line per run with its arguments, nice value and I/O class."""
    tool = ws.state / "venv" / "bin" / "ansible-playbook"
    tool.parent.mkdir(parents=True, exist_ok=True)
    tool.write_text(
        "#!/bin/bash\n"
        "nice=$(python3 -c 'import os; print(os.nice(0))')\n"
        "io=$(ionice -p $$ 2>/dev/null || echo none)\n"
        f"printf '%s|nice=%s|io=%s\\n' \"$*\" \"$nice\" \"$io\" >> '{record}'\n"
    )
    tool.chmod(0o755)


def age(*roots: Path, seconds: int = 600) -> None:
    """Set every file and folder below roots back by seconds (the stamp is compared with mtimes)."""
    past = time.time() - seconds
    for root in roots:
        paths = [root] if root.is_file() else [root] + list(root.rglob("*"))
        for path in paths:
            os.utime(path, (past, past), follow_symlinks=False)


def runs(record: Path) -> list[str]:
    return record.read_text().splitlines() if record.exists() else []


def wait_for_stamp(ws: "Workspace", other_than: str = "") -> str:
    """Wait until the background run wrote a stamp different from other_than; return it."""
    stamp = ws.state / STAMP
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if stamp.exists() and stamp.read_text() != other_than:
            # The stamp is written after the run; nothing else of it follows.
            return stamp.read_text()
        time.sleep(0.05)
    raise AssertionError(f"no new startup stamp; startup.log:\n{(ws.state / 'startup.log').read_text()}")


def startup_workspace(ws: "Workspace", **extra: Any) -> tuple[Path, Path]:
    """Render with the startup phase on and a repository declared; project and stub in place, all aged."""
    project = make_project(ws)
    record = ws.root / "startup-runs"
    counting_tool(ws, record)
    script = small_workspace(ws, prerun_startup_enabled=True, prerun_startup_repositories=REPOSITORIES, **extra)
    age(project, script)
    return project, record


def converged(ws: "Workspace", **extra: Any) -> tuple[Path, Path, str]:
    """A first start (links everything, runs the phase once), finished; returns project, record, stamp."""
    project, record = startup_workspace(ws, **extra)
    source_as_caller(ws)
    stamp = wait_for_stamp(ws)
    assert len(runs(record)) == 1
    return project, record, stamp


def test_without_repositories_the_file_has_no_startup_phase(workspace: "Workspace") -> None:
    ws = workspace
    make_project(ws)
    record = ws.root / "startup-runs"
    counting_tool(ws, record)
    # git_repos_repositories is not set, so prerun_startup_repositories is empty.
    script = small_workspace(ws, prerun_startup_enabled=True)
    text = script.read_text()
    assert '"startup": null' in text
    shell = text.split("__reforge_e=")[0]  # the script without the embedded engine
    assert STAMP not in shell and "startup.yml" not in shell
    source_as_caller(ws)
    # The worker ran (first start) and logged its end without a word about a startup phase.
    log = ws.log.read_text()
    assert "done in" in log and "startup phase" not in log
    assert not (ws.state / "startup.log").exists()
    assert runs(record) == []


def test_a_steady_start_with_the_phase_current_starts_nothing_even_without_commands(workspace: "Workspace") -> None:
    ws = workspace
    converged(ws)
    empty = ws.root / "no-commands"
    empty.mkdir()
    log_before = ws.log.read_text()
    # No command on PATH and no python in the rendered list: anything started would fail loudly.
    small_workspace(ws, prerun_startup_enabled=True, prerun_startup_repositories=REPOSITORIES,
                    prerun_engine_pythons=[str(ws.root / "no-python")])
    age(ws.script)
    bash = shutil.which("bash")
    assert bash
    result = subprocess.run([bash, "--norc", "--noprofile", "-c", 'set -euo pipefail; . "$SCRIPT"; echo went on'],
                            env={"PATH": str(empty), "HOME": str(ws.home), "SCRIPT": str(ws.script)},
                            capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "went on\n", "")
    assert ws.log.read_text() == log_before


def test_a_steady_start_with_the_phase_current_forks_and_executes_nothing(workspace: "Workspace") -> None:
    ws = workspace
    converged(ws)
    trace = ws.root / "trace"
    bash = shutil.which("bash")
    assert bash
    subprocess.run(["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=execve,clone,clone3,fork,vfork",
                    bash, "--norc", "--noprofile", "-c", '. "$SCRIPT"'],
                   env={"PATH": os.environ["PATH"], "HOME": str(ws.home), "SCRIPT": str(ws.script)},
                   check=True, timeout=60)
    calls = [line for line in trace.read_text().splitlines() if "+++" not in line and "---" not in line]
    # The one execve is strace starting bash itself.
    assert len(calls) == 1 and "execve(" in calls[0] and bash in calls[0], calls


def test_a_changed_project_copy_runs_the_phase_exactly_once(workspace: "Workspace") -> None:
    ws = workspace
    project, record, stamp = converged(ws)
    assert "--skip-tags storage_links" in runs(record)[0]
    source_as_caller(ws)
    assert len(runs(record)) == 1, "a start with nothing changed ran the phase"

    # The user edits their settings in the project copy.
    (project / "inventory" / "host_vars" / "localhost.yml").write_text("---\ngit_repos_repositories: []\n")
    source_as_caller(ws)
    stamp = wait_for_stamp(ws, other_than=stamp)
    assert len(runs(record)) == 2
    assert "--skip-tags storage_links" in runs(record)[1]
    source_as_caller(ws)
    source_as_caller(ws)
    assert len(runs(record)) == 2
    assert ws.log.read_text().count("startup phase started") == 2
    # One start line per run in startup.log (the end of a run is not mistaken for a start).
    assert (ws.state / "startup.log").read_text().count(" startup phase: ") == 2


def test_a_rerendered_file_with_the_same_settings_runs_nothing(workspace: "Workspace") -> None:
    ws = workspace
    _, record, _ = converged(ws)
    # A converge that re-renders pre-run.sh (new link list) but keeps the startup settings.
    ws.render(storage_links_default_entries=link_entries_of([".local", ".ssh"], [".gitconfig", ".bash_history"], {".ssh": "0700"}), prerun_startup_enabled=True, prerun_startup_repositories=REPOSITORIES)
    source_as_caller(ws)
    assert "startup phase not needed" in ws.log.read_text()
    assert len(runs(record)) == 1


def test_an_elapsed_interval_runs_only_the_repositories_once(workspace: "Workspace") -> None:
    ws = workspace
    _, record, stamp = converged(ws, prerun_startup_interval=1)
    time.sleep(2.1)  # let the 1 s interval elapse
    source_as_caller(ws)
    wait_for_stamp(ws, other_than=stamp)
    assert len(runs(record)) == 2
    assert runs(record)[1].startswith("-i inventory/paperspace.yml playbooks/startup.yml --tags git_repos|")


def test_the_phase_runs_niced_and_at_idle_io_priority(workspace: "Workspace") -> None:
    ws = workspace
    _, record, _ = converged(ws)
    line = runs(record)[0]
    assert "|nice=10|" in line, line
    if shutil.which("ionice"):
        assert line.endswith("|io=best-effort: prio 7"), line


def test_a_failed_run_writes_no_stamp_and_the_next_start_retries(workspace: "Workspace") -> None:
    ws = workspace
    _, record = startup_workspace(ws)
    tool = ws.state / "venv" / "bin" / "ansible-playbook"
    tool.write_text(tool.read_text() + "exit 2\n")
    source_as_caller(ws)
    deadline = time.monotonic() + 30
    while "failed (exit 2)" not in ((ws.state / "startup.log").read_text() if (ws.state / "startup.log").exists() else ""):
        assert time.monotonic() < deadline, "the failed run was not logged"
        time.sleep(0.05)
    assert not (ws.state / STAMP).exists()
    source_as_caller(ws)
    deadline = time.monotonic() + 30
    while len(runs(record)) < 2:
        assert time.monotonic() < deadline, "the next start did not retry"
        time.sleep(0.05)


def test_a_real_run_leaves_no_warning_in_startup_log(workspace: "Workspace") -> None:
    """ansible.cfg of the copy enables a callback the venv lacks (as profile_tasks was): no warning."""
    ws = workspace
    playbook_tool = Path(sys.executable).parent / "ansible-playbook"
    assert playbook_tool.exists(), "the project venv has ansible-playbook beside its python"
    project = make_project(ws)
    (project / "ansible.cfg").write_text("[defaults]\ncallbacks_enabled = reforge.absent.profile_tasks\n"
                                         "interpreter_python = auto_silent\n")
    (project / "inventory" / "paperspace.yml").write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n")
    (project / "playbooks" / "startup.yml").write_text(
        "---\n- name: Stand-in for startup.yml\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Fast-forward\n      ansible.builtin.debug:\n        msg: fast-forwarded\n      tags: [git_repos]\n"
        "    - name: Links\n      ansible.builtin.debug:\n        msg: relinked\n      tags: [storage_links]\n")
    venv_bin = ws.state / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "ansible-playbook").symlink_to(playbook_tool)
    script = small_workspace(ws, prerun_startup_enabled=True, prerun_startup_repositories=REPOSITORIES)
    age(project, script)
    source_as_caller(ws)
    wait_for_stamp(ws)
    log = (ws.state / "startup.log").read_text()
    assert "fast-forwarded" in log and "relinked" not in log, log
    assert "ok=1 " in log and "failed=0" in log, log
    assert "WARNING" not in log.upper(), log
