"""One definition of the link entries: storage_links, prerun and doctor read the same layers.

Real ansible-playbook runs on this host, in a scratch home and storage under a
temporary folder: the storage_links role links the entries, the prerun role
templates pre-run.sh, the doctor reports the links, all from
storage_links_combined_entries (defaults, all hosts, a group, one host).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

PLAY = """
- name: Link, template and diagnose from one definition of the entries
  hosts: target
  gather_facts: false
  pre_tasks:
    - name: Check the values of the storage_links role
      ansible.builtin.import_role:
        name: reforge.workstation.storage_links
        tasks_from: validate
    - name: Check the values of the prerun role
      ansible.builtin.import_role:
        name: reforge.workstation.prerun
        tasks_from: validate
    - name: Check the values of the doctor role
      ansible.builtin.import_role:
        name: reforge.workstation.doctor
        tasks_from: validate
  tasks:
    - name: Link the entries
      ansible.builtin.import_role:
        name: reforge.workstation.storage_links
    - name: Template pre-run.sh
      ansible.builtin.import_role:
        name: reforge.workstation.prerun
    - name: Diagnose the links
      ansible.builtin.import_role:
        name: reforge.workstation.doctor
      vars:
        doctor_quick: true
        doctor_fail_on_error: false
    - name: Hand the doctor's report back
      ansible.builtin.copy:
        content: "{{ __doctor_report | to_json }}"
        dest: "{{ report_path }}"
        mode: "0600"
"""

# A user's play with only the doctor's main tasks: no validate entry point runs first.
DOCTOR_ONLY = """
- name: Diagnose the links
  hosts: target
  gather_facts: false
  roles:
    - role: reforge.workstation.doctor
      vars:
        doctor_quick: true
        doctor_fail_on_error: false
"""

DEFAULT_NAMES = [".local", ".ssh", ".config", ".ipython", ".jupyter", ".fastai", ".kaggle", ".conda",
                 ".gitconfig", ".git-credentials", ".bash_history"]


def converge(root: Path, host_vars: dict[str, Any], group_vars: dict[str, Any],
             play: str = PLAY) -> subprocess.CompletedProcess[str]:
    (root / "play.yml").write_text(play)
    inventory = {"all": {"children": {"team": {"hosts": {"target": {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "storage_links_storage_dir": str(root / "storage"),
        "storage_links_home_dir": str(root / "home"),
        "storage_links_notebooks_git": False,
        "prerun_startup_enabled": False,
        "report_path": str(root / "report.json"),
        **host_vars,
    }}, "vars": group_vars}}}}
    (root / "inventory.yml").write_text(yaml.safe_dump(inventory))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(root / "inventory.yml"), str(root / "play.yml")],
        capture_output=True, text=True, check=False, cwd=REPO, env=env, timeout=600,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for folder in ("home", "storage"):
        (tmp_path / folder).mkdir()
    (tmp_path / "home" / ".vim").mkdir()
    (tmp_path / "home" / ".vim" / "vimrc").write_text("set number\n")
    (tmp_path / "home" / ".kaggle").mkdir()
    (tmp_path / "home" / ".kaggle" / "kaggle.json").write_text("{}\n")
    return tmp_path


def test_the_three_roles_link_list_and_check_the_same_combined_entries(root: Path) -> None:
    result = converge(
        root,
        host_vars={"storage_links_host_entries": [{"name": ".vim", "mode": "0750", "secret": True},
                                                  {"name": ".netrc", "kind": "file", "mode": "0600"}]},
        group_vars={"storage_links_group_entries": [{"name": ".kaggle", "state": "absent"}]},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    expected = [name for name in DEFAULT_NAMES if name != ".kaggle"] + [".vim", ".netrc"]
    home, storage = root / "home", root / "storage"

    # storage_links: every combined entry is a link into storage; the dropped default is left alone.
    for name in expected:
        assert os.readlink(home / name) == str(storage / name), name
    assert (home / ".kaggle").is_dir() and not (home / ".kaggle").is_symlink()
    assert not (storage / ".kaggle").exists()
    assert (storage / ".vim" / "vimrc").read_text() == "set number\n"
    assert stat.S_IMODE((storage / ".vim").stat().st_mode) == 0o750
    assert stat.S_IMODE((storage / ".netrc").stat().st_mode) == 0o600
    assert (storage / ".netrc").is_file()

    # prerun: pre-run.sh links the same entries, with the same kinds.
    listed = subprocess.run(["bash", str(storage / "pre-run.sh")], env={"REFORGE_PRERUN_STAGE": "list", "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, check=True)
    kinds = dict(reversed(line.split(" ", 1)) for line in listed.stdout.splitlines())
    assert sorted(kinds) == sorted(expected)
    assert kinds[".netrc"] == "file" and kinds[".vim"] == "dir" and kinds[".gitconfig"] == "file"
    assert '"modes": {".ssh": "0700", ".git-credentials": "0600", ".vim": "0750", ".netrc": "0600"}' in (
        storage / "pre-run.sh").read_text()

    # doctor: one link check per entry, all linked, and the secret flag reaches the privacy check.
    report = json.loads((root / "report.json").read_text())
    links = {row["check"].removeprefix("link "): row["status"] for row in report if row["check"].startswith("link ")}
    assert links == {name: "OK" for name in expected}
    privacy = next(row for row in report if row["check"] == "storage privacy")
    assert privacy["status"] == "WARN"
    assert privacy["detail"].startswith(".ssh, .git-credentials, .vim live on ")


@pytest.mark.parametrize(
    ("host_vars", "message"),
    [
        ({"storage_links_dirs": [".local"], "doctor_secret_entries": [".ssh"]},
         "Set but no longer read: doctor_secret_entries, storage_links_dirs."),
        ({"prerun_link_modes": {".ssh": "0700"}}, "Set but no longer read: prerun_link_modes."),
        ({"storage_links_host_entries": [{"name": "../outside"}]}, "storage_links_host_entries[0]: name is '../outside'"),
        ({"storage_links_entries": [{"name": ".netrc", "kind": "file", "mode": 384}]},
         "storage_links_entries[0]: mode is 384: expected an octal mode written as a quoted string"),
    ],
    ids=["retired-variables", "retired-prerun-modes", "entry-escapes-home", "unquoted-mode"],
)
def test_a_retired_variable_or_a_bad_entry_is_refused_before_anything_changes(
    root: Path, host_vars: dict[str, Any], message: str
) -> None:
    result = converge(root, host_vars=host_vars, group_vars={})
    assert result.returncode != 0
    assert message in " ".join((result.stdout + result.stderr).split())
    assert list((root / "storage").iterdir()) == []
    assert not (root / "home" / ".vim").is_symlink()


@pytest.mark.parametrize(
    ("host_vars", "message"),
    [
        ({"doctor_secret_entries": [".ssh"]}, "Set but no longer read: doctor_secret_entries."),
        ({"storage_links_host_entries": [{"name": "../outside"}]}, "storage_links_host_entries[0]: name is '../outside'"),
    ],
    ids=["retired-variable", "entry-escapes-home"],
)
def test_the_doctor_alone_refuses_what_the_entries_refuse(root: Path, host_vars: dict[str, Any], message: str) -> None:
    result = converge(root, host_vars=host_vars, group_vars={}, play=DOCTOR_ONLY)
    assert result.returncode != 0
    assert message in " ".join((result.stdout + result.stderr).split())


def test_the_combined_list_is_computed_not_taken_from_the_inventory(root: Path) -> None:
    # Set in the inventory, it would skip every check; the roles compute it from the layers instead.
    result = converge(root, host_vars={"storage_links_combined_entries": [{"name": "../escape", "kind": "dir"}]},
                      group_vars={})
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (root / "escape").exists()
    assert sorted(path.name for path in (root / "storage").iterdir() if not path.name.startswith(".reforge")) == sorted(
        DEFAULT_NAMES + ["pre-run.sh", ".bash.local"])
