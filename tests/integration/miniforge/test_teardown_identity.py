"""R6: the miniforge role's teardown, run for real, never empties a mount or the home directory.

The role runs through ansible-playbook against localhost with a fake home in
pytest's scratch dir, where the bind mounts are made and undone. Without root
the tests are skipped, and say so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to bind-mount in a scratch dir")

PLAY = """\
- name: Tear down a prefix for a fake home
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_facts: {user_dir: "{{ fake_home }}", user_id: root, system: Linux, architecture: x86_64}
  roles:
    - role: "{{ repo }}/roles/miniforge"
      miniforge_state: absent
"""


@pytest.fixture
def bind(tmp_path: Path) -> Iterator[Callable[[Path, Path], None]]:
    mounted: list[Path] = []

    def do(source: Path, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
        mounted.append(target)

    yield do
    for target in reversed(mounted):
        subprocess.run(["umount", str(target)], check=False)


def teardown(tmp_path: Path, home: Path, prefix: Path) -> subprocess.CompletedProcess[str]:
    play = tmp_path / "teardown.yml"
    play.write_text(PLAY)
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(bindir / "ansible-playbook"), "-i", "localhost,", str(play),
         "-e", "ansible_python_interpreter={{ ansible_playbook_python }}",
         "-e", f"repo={REPO}", "-e", f"fake_home={home}", "-e", f"miniforge_prefix={prefix}"],
        capture_output=True, text=True, env=env, check=False, timeout=300)


def conda_prefix(prefix: Path) -> None:
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "conda-meta" / "history").write_text("")
    (prefix / "bin").mkdir()
    (prefix / "bin" / "conda").write_text("#!/bin/sh\nexit 0\n")
    (prefix / "bin" / "conda").chmod(0o755)


def test_teardown_leaves_a_bind_mounted_package_cache_alone(tmp_path, bind):
    home, shared = tmp_path / "home", tmp_path / "storage" / "pkgs"
    prefix = home / "miniforge3"
    conda_prefix(prefix)
    shared.mkdir(parents=True)
    (shared / "dataset.bin").write_text("data\n")
    bind(shared, prefix / "pkgs")
    run = teardown(tmp_path, home, prefix)
    assert run.returncode != 0
    assert f"Refusing prefix '{prefix}': it is or contains a mount point ('{prefix / 'pkgs'}')" in run.stdout
    assert (shared / "dataset.bin").read_text() == "data\n"
    assert (prefix / "conda-meta" / "history").is_file()


def test_teardown_refuses_a_bind_mounted_alias_of_home(tmp_path, bind):
    home = tmp_path / "home"
    conda_prefix(home / "miniforge3")
    (home / "bin").mkdir(exist_ok=True)
    (home / "bin" / "conda").symlink_to(home / "miniforge3" / "bin" / "conda")
    (home / "thesis").mkdir()
    (home / "thesis" / "ch1.tex").write_text("work\n")
    before = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    alias = tmp_path / "mnt" / "alias"
    bind(home, alias)
    run = teardown(tmp_path, home, alias)
    assert run.returncode != 0
    assert f"Refusing prefix '{alias}': it is the home directory ('{home}') under another name" in run.stdout
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == before


def test_teardown_removes_a_real_prefix_and_keeps_home(tmp_path):
    home = tmp_path / "home"
    conda_prefix(home / "miniforge3")
    (home / "thesis").mkdir()
    (home / "thesis" / "ch1.tex").write_text("work\n")
    run = teardown(tmp_path, home, home / "miniforge3")
    assert run.returncode == 0, run.stdout[-3000:]
    assert not (home / "miniforge3").exists()
    assert (home / "thesis" / "ch1.tex").read_text() == "work\n"
