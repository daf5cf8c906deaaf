"""Role documentation stays true: argument specs mirror defaults, and the README shows them."""

from __future__ import annotations

import shutil
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
def test_argument_spec_defaults_are_the_literal_defaults(role: Path):
    """ansible-doc shows a spec's default as the value: it must be the one defaults/main.yml sets, never prose."""
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    options = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    for name, option in options.items():
        value = defaults.get(name)
        computed = "{{" in yaml.safe_dump(value)
        if computed:
            assert "default" not in option, f"{role.name}: {name} is computed; say so in its description, not in default"
        elif "default" in option:
            assert option["default"] == value, f"{role.name}: {name} defaults to {value!r}, the spec says {option['default']!r}"


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


@pytest.mark.parametrize("role", ["miniforge", "base_env"])
def test_readme_vars_keeps_a_role_readme_table_true(role: str, tmp_path: Path):
    """A role README with the markers carries its generated table, and --check catches a stale one."""
    copy = tmp_path / "repo"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "readme-vars", copy / "scripts" / "readme-vars")
    shutil.copy2(ROOT / "README.md", copy / "README.md")
    for spec in ROOT.glob("roles/*/meta/argument_specs.yml"):
        target = copy / spec.relative_to(ROOT)
        target.parent.mkdir(parents=True)
        shutil.copy2(spec, target)
        readme = spec.parent.parent / "README.md"
        if readme.exists():
            shutil.copy2(readme, target.parent.parent / "README.md")
    readme = copy / "roles" / role / "README.md"
    original = readme.read_text()
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    for name in specs["main"]["options"]:
        assert f"| `{name}` |" in original, f"{role}'s README lacks {name} in its table"

    def readme_vars(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(copy / "scripts" / "readme-vars"), *args], capture_output=True, text=True, check=False
        )

    assert readme_vars("--check").returncode == 0
    first = next(iter(specs["main"]["options"]))
    readme.write_text(original.replace(f"| `{first}` |", f"| `{first}_stale` |", 1))
    stale = readme_vars("--check")
    assert stale.returncode == 1
    assert f"roles/{role}/README.md" in stale.stderr
    assert readme_vars().returncode == 0
    assert readme.read_text() == original
