"""The commands the README tells users to type work as typed, from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")


def test_ansible_playbook_rebuild_base_yml_at_the_repository_root_finds_its_roles():
    # As a user types it: at the root, relative path, the root ansible.cfg found by the working directory.
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    result = subprocess.run([str(ANSIBLE_PLAYBOOK), "rebuild-base.yml", "--list-tasks"], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # The roles' own tasks are listed, so the roles and the transaction's task files resolved.
    for task in ("miniforge : Check", "base_env : snapshot | ", "Rebuild the base environment"):
        assert task in result.stdout, result.stdout[-3000:]


def test_the_readme_opens_with_the_command_users_type():
    opening = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    assert "ansible-playbook rebuild-base.yml" in opening
