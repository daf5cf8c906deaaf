"""A throw-away reforge project for the CLI tests: ansible.cfg, a local inventory and
the playbooks a test names, plus a clean environment to run `reforge` in."""

from __future__ import annotations

import os
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

ANSIBLE_CFG = """\
[defaults]
inventory = inventory/local.yml
retry_files_enabled = false
"""

LOCAL_INVENTORY = """\
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""


def make_project(root: Path, playbooks: dict[str, str]) -> Path:
    """Write the project under root; playbooks maps a name (no .yml) to its text."""
    (root / "ansible.cfg").write_text(ANSIBLE_CFG)
    (root / "inventory").mkdir()
    (root / "inventory" / "local.yml").write_text(LOCAL_INVENTORY)
    books = root / "playbooks"
    books.mkdir()
    for name, text in playbooks.items():
        (books / f"{name}.yml").write_text(text)
    return root


def clean_env(state: Path) -> dict[str, str]:
    """No ANSIBLE_*/REFORGE_* from the caller, a private state dir, reforge importable."""
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith(("ANSIBLE_", "REFORGE_"))}
    clean["XDG_STATE_HOME"] = str(state)
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, (str(SRC), clean.get("PYTHONPATH"))))
    return clean
