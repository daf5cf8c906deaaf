"""`reforge --help` and refused input answer without loading Ansible.

Importing ansible and ansible_runner is most of the command's start-up time, and
neither is needed to print help or to refuse a bad argument. Each case runs the
real command in a fresh interpreter with `-X importtime`, which lists every
module the process imported, and fails if an ansible or ansible_runner module
is among them. The exit code and message show that the case really reached
the refusal (or the help) it names.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fakeproject import clean_env, make_project

TIMEOUT = 60
HEAVY = ("ansible", "ansible_runner")
PLAY = """\
- name: Converge
  hosts: all
  gather_facts: false
  tasks:
    - name: Say it
      ansible.builtin.debug:
        msg: hello
"""


def imported(stderr: str) -> set[str]:
    """Module names from `-X importtime` lines: `import time: self | cumulative | name`."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return make_project(root, {"base": PLAY, "paperspace": PLAY})


@pytest.mark.parametrize(("args", "rc", "says"), [
    (["--help"], 0, "usage: reforge"),
    (["converge", "--help"], 0, "usage: reforge converge"),
    (["--version"], 0, "reforge "),
    (["no-such-command"], 2, "invalid choice"),
    (["converge", "--verbose=3"], 2, "--verbose"),
    (["rollback", "zero"], 2, "generation must be a number"),
    (["converge", "-i", "missing-inventory.yml"], 2, "inventory not found: missing-inventory.yml"),
    (["converge", "-e", "@missing-vars.yml"], 2, "cannot read extra vars file missing-vars.yml"),
    (["converge", "-e", "{not: [valid"], 2, "not valid YAML or JSON"),
    (["converge", "-e", "[1, 2]"], 2, "must hold a mapping"),
    (["rebuild"], 2, "playbooks/rebuild_base.yml does not exist"),
])
def test_help_and_refusals_do_not_import_ansible(project: Path, tmp_path: Path, args: list[str], rc: int,
                                                 says: str) -> None:
    if not args[0].startswith("-") and args[0] != "no-such-command":
        args = [*args, "--project", str(project)]
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "reforge", *args],
                          env=clean_env(tmp_path / "state"), cwd=tmp_path, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == rc, output[-3000:]
    assert says in output, output[-3000:]
    names = imported(proc.stderr)
    assert "reforge.cli" in names, "no -X importtime output: the check below would prove nothing"
    loaded = sorted(name for name in names if name.split(".")[0] in HEAVY)
    assert not loaded, f"reforge {' '.join(args)} imported {', '.join(loaded[:8])}"


def test_a_run_still_loads_ansible_runner(project: Path, tmp_path: Path) -> None:
    """The counter-check: the same measurement sees ansible_runner when a playbook runs."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "reforge", "converge", "--project",
                           str(project), "-i", str(project / "inventory" / "local.yml"), "-e", "greeting=hi"],
                          env=clean_env(tmp_path / "state"), cwd=tmp_path, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "hello" in proc.stdout or "ok" in proc.stdout, proc.stdout[-3000:]
    names = imported(proc.stderr)
    assert "ansible_runner" in names
    assert "ansible.parsing.splitter" in names  # key=value pairs are parsed the way ansible-playbook does
