"""Role documentation stays true: argument specs mirror defaults, and the README shows them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.parent.parent for p in ROOT.glob("roles/*/defaults/main.yml"))


def test_there_are_roles_to_check():
    assert {r.name for r in ROLES} >= {"miniforge", "base_env"}


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_argument_specs_mirror_the_defaults(role: Path):
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options = specs["main"].get("options") or {}
    assert sorted(defaults) == sorted(options)
    for name, option in options.items():
        assert option.get("description"), f"{role.name}: {name} has no description"
        assert option.get("type"), f"{role.name}: {name} has no type"


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_every_default_has_a_comment(role: Path):
    lines = (role / "defaults" / "main.yml").read_text().splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith((" ", "#", "-")) and ":" in line:
            assert lines[index - 1].startswith("#"), f"{role.name}: '{line}' has no comment above it"


def test_the_readme_shows_the_current_role_variables():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readme-vars"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
