"""The collection as Galaxy would ship it: built, installed into a scratch path, used without the checkout."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The tarball installed into a scratch collections path, and an environment that sees only that copy."""
    work = tmp_path_factory.mktemp("collection")
    # No ANSIBLE_* from the caller: the checkout's ansible.cfg and its collections/ link must not be used.
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env["ANSIBLE_CONFIG"] = str(work / "none.cfg")
    (work / "none.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    build = run([str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(work / "build"),
                 str(ROOT)], work, env)
    assert build.returncode == 0, build.stdout + build.stderr
    tarball = next((work / "build").glob("reforge-workstation-*.tar.gz"))
    install = run([str(BIN / "ansible-galaxy"), "collection", "install", "--force", "--no-deps", "-p",
                   str(work / "collections"), str(tarball)], work, env)
    assert install.returncode == 0, install.stdout + install.stderr
    env["ANSIBLE_COLLECTIONS_PATH"] = str(work / "collections")
    return work, env


def test_the_tarball_holds_the_collection_and_nothing_of_the_development_tree(installed):
    work, _ = installed
    root = work / "collections" / "ansible_collections" / "reforge" / "workstation"
    for wanted in ("MANIFEST.json", "meta/runtime.yml", "LICENSE", "plugins/modules/storage_link.py",
                   "plugins/module_utils/storage_engine.py", "roles/miniforge/tasks/main.yml",
                   "playbooks/rebuild_base.yml", "playbooks/doctor.yml"):
        assert (root / wanted).is_file(), wanted
    for unwanted in ("collections", "molecule", ".venv", "src", "tests/cli"):
        assert not (root / unwanted).exists(), unwanted
    manifest = json.loads((root / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["license"] == ["GPL-3.0-or-later"]


def test_a_module_with_shared_code_runs_from_the_installed_copy(installed, tmp_path):
    """storage_link imports the link engine from the collection's module_utils: it links a real entry."""
    work, env = installed
    home, storage = tmp_path / "home", tmp_path / "storage"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "kaggle.json").write_text("{}")
    storage.mkdir()
    playbook = tmp_path / "link.yml"
    playbook.write_text(f"""---
- name: Link one entry with the installed collection's module
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Keep .kaggle on the storage volume
      reforge.workstation.storage_link:
        storage_dir: {storage}
        backup_dir: {storage}/.reforge/backup
        entries:
          - {{path: {home}/.kaggle, storage: {storage}/.kaggle, kind: dir, mode: "0700"}}
""")
    result = run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook),
                  "-e", f"ansible_python_interpreter={sys.executable}"], tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (home / ".kaggle").is_symlink()
    assert os.readlink(home / ".kaggle") == str(storage / ".kaggle")
    assert (storage / ".kaggle" / "kaggle.json").read_text() == "{}"
    assert stat.S_IMODE((storage / ".kaggle").stat().st_mode) == 0o700


def test_a_playbook_runs_by_its_name_from_the_installed_copy(installed, tmp_path):
    """`ansible-playbook reforge.workstation.doctor`: the playbook, its roles by FQCN and their modules resolve."""
    work, env = installed
    storage = tmp_path / "storage"
    storage.mkdir()
    result = run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "reforge.workstation.doctor",
                  "-e", f"ansible_python_interpreter={sys.executable}",
                  "-e", f"doctor_storage_dir={storage}", "-e", "doctor_quick=true", "-e", "doctor_fail_on_error=false",
                  "-e", f"doctor_home_dir={tmp_path}"], tmp_path, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "reforge.workstation.doctor : " in result.stdout
    assert "failed=0" in result.stdout


def test_the_rebuild_playbook_has_a_collection_name(installed, tmp_path):
    """`reforge.workstation.rebuild_base` resolves (its tasks are listed) from the installed copy alone."""
    work, env = installed
    result = run([str(BIN / "ansible-playbook"), "-i", "localhost,", "reforge.workstation.rebuild_base",
                  "--list-tasks"], tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reforge.workstation.miniforge : " in result.stdout
    assert "reforge.workstation.base_env : " in result.stdout
