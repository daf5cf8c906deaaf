"""`reforge rebuild` interrupted (SIGINT, SIGTERM) runs the project's rollback playbook
against the same hosts before it exits; `reforge rollback [N]` and `reforge generations`
run theirs. A throw-away project on localhost records what each playbook was asked."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fakeproject import clean_env, make_project

TIMEOUT = 120

# A rebuild (or converge) that is half way when the signal comes.
LONG = """\
- name: Long
  hosts: all
  gather_facts: false
  tasks:
    - name: Change something
      ansible.builtin.copy:
        dest: "{{ out_dir }}/started"
        content: "started\\n"
        mode: "0644"
    - name: Install the base packages slowly
      ansible.builtin.command: sleep 60
      changed_when: true
"""

ROLLBACK = """\
- name: Rollback
  hosts: all
  gather_facts: false
  tasks:
    - name: Record the generation asked for
      ansible.builtin.copy:
        dest: "{{ out_dir }}/rollback"
        content: "{{ miniforge_rollback_generation | default('unset') }}\\n"
        mode: "0644"
    - name: Report
      ansible.builtin.set_stats:
        data:
          rollback: ["{{ inventory_hostname }}: rolled back the interrupted rebuild"]
        per_host: false
"""

GENERATIONS = """\
- name: Generations
  hosts: all
  gather_facts: false
  tasks:
    - name: Report
      ansible.builtin.set_stats:
        data:
          generations: ["{{ inventory_hostname }}: current: /x/miniforge3", "{{ inventory_hostname }}: generation 1"]
        per_host: false
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("project"), {"rebuild_base": LONG, "base": LONG, "rollback": ROLLBACK,
                                  "generations": GENERATIONS})


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return clean_env(tmp_path / "state")


def reforge(project: Path, out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "reforge", *args, "--project", str(project), "-e", f"out_dir={out}"]


def interrupt(project: Path, out: Path, env: dict[str, str], signum: int, *args: str) -> tuple[int, str]:
    process = subprocess.Popen(reforge(project, out, *args), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    seen = []
    assert process.stdout is not None
    try:
        for line in process.stdout:
            seen.append(line)
            if "Install the base packages slowly" in line:
                break
        process.send_signal(signum)
        rest, _ = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    return process.returncode, "".join(seen) + rest


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_rebuild_is_rolled_back_before_reforge_exits(project: Path, env: dict[str, str],
                                                                    tmp_path: Path, signum: int) -> None:
    rc, output = interrupt(project, tmp_path, env, signum, "rebuild")
    assert rc == 130, output
    assert "reforge rebuild: interrupted; rolling back what it had changed" in output
    # Only a pending rebuild is undone: generation 0 never switches to an older prefix.
    assert (tmp_path / "rollback").read_text().strip() == "0"
    assert "rolled back:\n    localhost: rolled back the interrupted rebuild" in output


def test_an_interrupted_converge_is_rolled_back_too(project: Path, env: dict[str, str], tmp_path: Path) -> None:
    rc, output = interrupt(project, tmp_path, env, signal.SIGINT, "converge")
    assert rc == 130, output
    assert (tmp_path / "rollback").read_text().strip() == "0"


def test_an_interrupted_check_run_changes_nothing_and_rolls_nothing_back(project: Path, env: dict[str, str],
                                                                          tmp_path: Path) -> None:
    rc, output = interrupt(project, tmp_path, env, signal.SIGINT, "rebuild", "--check")
    assert rc == 130, output
    assert not (tmp_path / "rollback").exists()


def test_rollback_passes_the_generation_asked_for(project: Path, env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run(reforge(project, tmp_path, "rollback", "2"), env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "rollback").read_text().strip() == "2"
    assert "localhost: rolled back" in proc.stdout


@pytest.mark.parametrize("bad", ["0", "-1", "one"])
def test_rollback_refuses_a_generation_that_is_not_a_number_from_1(project: Path, env: dict[str, str],
                                                                   tmp_path: Path, bad: str) -> None:
    proc = subprocess.run(reforge(project, tmp_path, "rollback", bad), env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert proc.returncode == 2
    assert "generation" in proc.stderr
    assert not (tmp_path / "rollback").exists()


def test_generations_prints_the_list(project: Path, env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run(reforge(project, tmp_path, "generations"), env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "generations:\n    localhost: current: /x/miniforge3\n    localhost: generation 1" in proc.stdout
