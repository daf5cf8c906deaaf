"""The mamba init block the miniforge role writes stays valid shell for any prefix.

The prefix rules refuse a prefix with a quote, a backtick or a $ up front; the block
is quoted safely anyway. This runs the role's own shell_init.yml with ansible-playbook
on this machine (one run for all the prefixes), against scratch homes and scratch
prefixes whose conda is a stub, then sources each rc file in a new bash and reads
back the prefix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TASKS = REPO / "roles" / "miniforge" / "tasks" / "shell_init.yml"
NAMES = ["mini'forge", 'mini"forge', "mini$HOMEforge", "mini`false`forge", "mini forge", "mini\\forge", "miniforge3"]

PLAY = """
- name: Write the init blocks into scratch rc files
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the role's shell_init tasks for each prefix
      ansible.builtin.include_tasks: {tasks}
      loop: "{{{{ prefixes }}}}"
      vars:
        miniforge_prefix: "{{{{ item.prefix }}}}"
        __miniforge_rc: "{{{{ item.rc }}}}"
        ansible_facts:
          user_dir: "{{{{ item.home }}}}"
"""


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each name -> the rc file shell_init.yml wrote for a prefix with that name."""
    scratch = tmp_path_factory.mktemp("shell_init")
    prefixes = []
    for number, name in enumerate(NAMES):
        prefix = scratch / str(number) / name
        (prefix / "bin").mkdir(parents=True)
        conda = prefix / "bin" / "conda"
        # conda init's one line about the rc file (the role runs it with HOME in a scratch copy).
        conda.write_text('#!/bin/sh\nprintf "no change     %s\\n" "$HOME/.bashrc"\n')
        conda.chmod(0o755)
        home = scratch / f"home{number}"
        home.mkdir()
        prefixes.append({"prefix": str(prefix), "rc": str(home / ".bashrc"), "home": str(home)})
    (scratch / "play.yml").write_text(PLAY.format(tasks=TASKS))
    # The role's modules come from this checkout's collection (collections/ links it).
    (scratch / "ansible.cfg").write_text(f"[defaults]\ncollections_path = {REPO / 'collections'}\n")
    extra = {"prefixes": prefixes, "__miniforge_shell": "bash", "__miniforge_guard": {"complete": True},
             "ansible_python_interpreter": sys.executable}
    env = dict(os.environ, ANSIBLE_CONFIG=str(scratch / "ansible.cfg"))
    ran = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
                          str(scratch / "play.yml"), "-e", json.dumps(extra)],
                         capture_output=True, text=True, env=env, cwd=scratch, check=False)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    return {name: Path(entry["rc"]) for name, entry in zip(NAMES, prefixes)}


@pytest.mark.parametrize("name", NAMES)
def test_the_mamba_block_sources_cleanly_and_names_the_prefix(written: dict[str, Path], name: str) -> None:
    rc = written[name]
    prefix = next(line for line in rc.read_text().splitlines() if "MAMBA_ROOT_PREFIX=" in line)
    read = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                           f'. {rc} && printf "%s|%s" "$MAMBA_ROOT_PREFIX" "$MAMBA_EXE"'],
                          capture_output=True, text=True, check=False)
    assert read.stderr == "", prefix
    assert read.returncode == 0
    expected = rc.parent.parent / rc.parent.name.removeprefix("home") / name
    assert read.stdout == f"{expected}|{expected}/bin/mamba"
