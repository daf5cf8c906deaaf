"""The roles' snapshot, restore, side environments and ~/.conda preparation, on a stand-in prefix.

ansible-playbook runs the role task files on this machine (local connection)
against a stand-in Miniforge in a scratch directory: HOME, the prefix, the
snapshot directory and the storage side all live under tmp_path, so nothing of
the host's own home is read or written. The state asserted is the prefix's
(conda-meta, what imports), never what the playbook said.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from test_standin_installer import Standin, clean_env, install

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))


def play(tmp_path: Path, home: Path, tasks: str, extra: dict[str, Any], gather: bool = False,
         **env: str) -> subprocess.CompletedProcess[str]:
    """Run TASKS (YAML, indented for a play's task list) on localhost."""
    book = tmp_path / "play.yml"
    book.write_text(
        "---\n- name: Run the role task files under test\n  hosts: localhost\n"
        f"  gather_facts: {'true' if gather else 'false'}\n"
        + ("  gather_subset: ['!all', '!min', user]\n" if gather else "")
        + "  tasks:\n" + tasks
    )
    run_env = clean_env(home, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **env)
    argv = [PLAYBOOK, str(book), "-e", json.dumps(extra)]
    return subprocess.run(argv, cwd=REPO, env=run_env, capture_output=True, text=True, timeout=600, check=False)


def recap_changed(output: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith("localhost") and "changed=" in line)
    return int(line.split("changed=")[1].split()[0])


def tiny_wheel(folder: Path, name: str = "tinypip", requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel, so pip can install and reinstall it with no index."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-0.3.0-py3-none-any.whl"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3.0\n"
    metadata += "".join(f"Requires-Dist: {line}\n" for line in requires)
    files = {
        f"{name}/__init__.py": "__version__ = '0.3.0'\n",
        f"{name}-0.3.0.dist-info/METADATA": metadata,
        f"{name}-0.3.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{name}-0.3.0.dist-info/RECORD": "",
    }
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


SNAPSHOT = """    - name: Snapshot
      ansible.builtin.include_role:
        name: base_env
        tasks_from: snapshot
"""
RESTORE = """    - name: Restore
      ansible.builtin.include_role:
        name: base_env
        tasks_from: restore
"""
ENVIRONMENTS = """    - name: Side environments
      ansible.builtin.include_role:
        name: base_env
        tasks_from: environments
"""
CONDA_DIR = """    - name: Prepare ~/.conda
      ansible.builtin.include_role:
        name: miniforge
        tasks_from: conda_dir
"""


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("roles")
    home = root / "home"
    home.mkdir()
    prefix = root / "miniforge3"
    install(prefix, home)
    wheels = root / "wheels"
    tiny_wheel(wheels)
    base_vars = {
        "base_env_prefix": str(prefix),
        "base_env_snapshot_dir": str(root / "snapshots"),
        "base_env_conda_packages": [],
        "base_env_pip_packages": [],
        "base_env_verify_imports": ["numpy", "fastai", "tinypip"],
    }
    pip_env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)}
    return {"root": root, "home": home, "prefix": prefix, "vars": base_vars, "pip_env": pip_env}


def test_a_mamba_history_conda_cannot_parse_is_snapshotted_and_restored(scratch: dict[str, Any]) -> None:
    root, home, prefix = scratch["root"], scratch["home"], scratch["prefix"]
    standin = Standin(prefix=prefix, home=home)
    standin.mamba("install", "-y", "-q", "numpy>=1,<2", "fastcore=1.5")
    standin.mamba("update", "-y", "-q", "fastcore")  # mamba writes update and remove lines
    standin.mamba("install", "-y", "-q", "fastai")
    subprocess.run([str(prefix / "bin" / "pip"), "install", "-q", "tinypip"], env=clean_env(home, **scratch["pip_env"]),
                   check=True, capture_output=True)
    # conda itself cannot read this history (conda/conda#15123).
    assert standin.conda("env", "export", "--from-history", check=False,
                         STANDIN_CONDA_CANNOT_PARSE="1").returncode == 1

    taken = play(root, home, SNAPSHOT, scratch["vars"], STANDIN_CONDA_CANNOT_PARSE="1")
    assert taken.returncode == 0, taken.stdout[-3000:]
    (snapshot_file,) = (root / "snapshots").iterdir()
    record = json.loads(snapshot_file.read_text())
    assert set(record["unpinned_conda"]) == {"numpy", "fastai", "fastcore"}
    assert record["unpinned_pip"] == ["tinypip"]

    # The rebuild's wipe and reinstall, done by hand (the miniforge role belongs to another test).
    subprocess.run(["rm", "-rf", str(prefix)], check=True)
    install(prefix, home)
    assert "numpy" not in standin.listed()

    restored = play(root, home, RESTORE, scratch["vars"], STANDIN_CONDA_CANNOT_PARSE="1", **scratch["pip_env"])
    assert restored.returncode == 0, restored.stdout[-3000:]
    listed = standin.listed()
    assert {"numpy", "fastai", "fastcore", "tinydep"} <= set(listed)
    assert listed["tinypip"]["channel"] == "pypi"
    subprocess.run([str(prefix / "bin" / "python"), "-c", "import numpy, fastai, tinypip"], check=True,
                   env=clean_env(home))


def pip_logged(prefix: Path) -> Path:
    """Put a recorder in front of the prefix's real pip; returns the file that lists each call's arguments."""
    log = prefix.parent / f"{prefix.name}-pip-calls.txt"
    pip = prefix / "bin" / "pip"
    pip.unlink()
    pip.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{prefix}/bin/python" -m pip "$@"\n')
    pip.chmod(0o755)
    return log


def restore_from(root: Path, home: Path, prefix: Path, pip: list[str], pip_env: dict[str, str],
                 imports: list[str]) -> subprocess.CompletedProcess[str]:
    """Restore PREFIX from a snapshot that lists PIP."""
    snapshot = root / f"{prefix.name}-snapshot.json"
    snapshot.write_text(json.dumps({"exists": True, "conda": [], "unpinned_conda": [], "pip": pip,
                                    "unpinned_pip": pip}))
    extra = {"base_env_prefix": str(prefix), "base_env_snapshot_dir": str(root / "snapshots"),
             "base_env_conda_packages": [], "base_env_pip_packages": [],
             "base_env_verify_imports": imports, "__base_env_restore_file": str(snapshot)}
    return play(root, home, RESTORE, extra, **pip_env)


def installed_pip(prefix: Path, home: Path) -> set[str]:
    out = subprocess.run([str(prefix / "bin" / "python"), "-m", "pip", "list", "--format=json",
                          "--disable-pip-version-check"], env=clean_env(home), check=True,
                         capture_output=True, text=True).stdout
    return {entry["name"] for entry in json.loads(out)}


def test_restore_installs_the_pip_packages_in_one_call(scratch: dict[str, Any], tmp_path: Path) -> None:
    root, home = scratch["root"], scratch["home"]
    prefix = tmp_path / "one-call"
    install(prefix, home)
    wheels = Path(scratch["pip_env"]["PIP_FIND_LINKS"])
    for name in ("tinyone", "tinytwo", "tinythree"):
        tiny_wheel(wheels, name)
    log = pip_logged(prefix)
    restored = restore_from(root, home, prefix, ["tinyone", "tinytwo", "tinythree"], scratch["pip_env"],
                            ["tinyone", "tinytwo", "tinythree"])
    assert restored.returncode == 0, restored.stdout[-3000:]
    assert {"tinyone", "tinytwo", "tinythree"} <= installed_pip(prefix, home)
    installs = [line for line in log.read_text().splitlines() if line.split()[:1] == ["install"]]
    assert len(installs) == 1, installs
    assert all(name in installs[0].split() for name in ("tinyone", "tinytwo", "tinythree"))
    assert "Not restored" not in restored.stdout


def test_restore_falls_back_to_one_pip_package_at_a_time(scratch: dict[str, Any], tmp_path: Path) -> None:
    """A package that no longer installs is reported and skipped; the others are restored."""
    root, home = scratch["root"], scratch["home"]
    prefix = tmp_path / "fallback"
    install(prefix, home)
    wheels = Path(scratch["pip_env"]["PIP_FIND_LINKS"])
    for name in ("tinyone", "tinytwo"):
        tiny_wheel(wheels, name)
    log = pip_logged(prefix)
    restored = restore_from(root, home, prefix, ["tinyone", "vanished-from-index", "tinytwo"],
                            scratch["pip_env"], ["tinyone", "tinytwo"])
    assert restored.returncode == 0, restored.stdout[-3000:]
    assert {"tinyone", "tinytwo"} <= installed_pip(prefix, home)
    assert "vanished-from-index" not in installed_pip(prefix, home)
    assert "pip vanished-from-index." in restored.stdout
    installs = [line.split() for line in log.read_text().splitlines() if line.split()[:1] == ["install"]]
    together = [call for call in installs if {"tinyone", "tinytwo", "vanished-from-index"} <= set(call)]
    alone = [call for call in installs if call not in together]
    assert len(together) == 1 and len(alone) == 3, installs


def test_side_environments_land_in_the_managed_prefix_whatever_mamba_root_prefix_says(
        scratch: dict[str, Any]) -> None:
    root, home, prefix = scratch["root"], scratch["home"], scratch["prefix"]
    elsewhere = root / "other-install"
    extra = dict(scratch["vars"], base_env_environments=[{"name": "side", "packages": ["tinydep"]}])

    created = play(root, home, ENVIRONMENTS, extra, MAMBA_ROOT_PREFIX=str(elsewhere))
    assert created.returncode == 0, created.stdout[-3000:]
    assert (prefix / "envs" / "side" / "conda-meta").is_dir()
    assert not elsewhere.exists()
    assert "tinydep" in Standin(prefix=prefix, home=home).listed("-p", str(prefix / "envs" / "side"))

    again = play(root, home, ENVIRONMENTS, extra, MAMBA_ROOT_PREFIX=str(elsewhere))
    assert again.returncode == 0, again.stdout[-3000:]
    assert recap_changed(again.stdout) == 0
    assert not elsewhere.exists()


def test_a_side_environment_name_that_is_not_a_plain_name_is_refused(scratch: dict[str, Any]) -> None:
    root, home, prefix = scratch["root"], scratch["home"], scratch["prefix"]
    before = sorted(p.name for p in (prefix / "envs").iterdir())
    extra = dict(scratch["vars"], base_env_environments=[{"name": "ok", "packages": ["tinydep"]},
                                                         {"name": "../escape", "packages": ["tinydep"]}])
    refused = play(root, home, ENVIRONMENTS, extra)
    assert refused.returncode != 0
    assert 'Side environment name "../escape" is not usable' in refused.stdout
    assert sorted(p.name for p in (prefix / "envs").iterdir()) == before
    assert not (prefix / "escape").exists()


def test_a_dangling_conda_dir_link_is_made_usable_before_the_installer(tmp_path: Path) -> None:
    home, storage = tmp_path / "home", tmp_path / "storage"
    home.mkdir()
    storage.mkdir()
    (home / ".conda").symlink_to(storage / ".conda")
    extra = {"__miniforge_conda_home": str(home), "storage_links_storage_dir": str(storage)}

    checked = play(tmp_path, home, CONDA_DIR, extra, gather=True)
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert (storage / ".conda").is_dir() and (home / ".conda").is_symlink()
    assert oct((storage / ".conda").stat().st_mode & 0o777) == "0o700"
    install(tmp_path / "miniforge3", home)
    assert (tmp_path / "miniforge3" / "conda-meta" / "history").is_file()

    again = play(tmp_path, home, CONDA_DIR, extra, gather=True)
    assert again.returncode == 0 and recap_changed(again.stdout) == 0


def test_a_conda_dir_link_out_of_home_and_storage_or_a_file_is_refused(tmp_path: Path) -> None:
    home, storage, outside = tmp_path / "home", tmp_path / "storage", tmp_path / "elsewhere"
    home.mkdir()
    storage.mkdir()
    (home / ".conda").symlink_to(outside / ".conda")
    extra = {"__miniforge_conda_home": str(home), "storage_links_storage_dir": str(storage)}

    refused = play(tmp_path, home, CONDA_DIR, extra, gather=True)
    assert refused.returncode != 0
    assert "dangling link" in refused.stdout and "lies outside" in refused.stdout
    assert not outside.exists()

    (home / ".conda").unlink()
    (home / ".conda").symlink_to(home / ".conda")
    looped = play(tmp_path, home, CONDA_DIR, extra, gather=True)
    assert looped.returncode != 0 and "cannot be followed (Too many levels of symbolic links)" in looped.stdout
    assert (home / ".conda").is_symlink()

    (home / ".conda").unlink()
    (home / ".conda").write_text("a file\n")
    refused = play(tmp_path, home, CONDA_DIR, extra, gather=True)
    assert refused.returncode != 0
    assert "is not a directory" in refused.stdout
    assert (home / ".conda").read_text() == "a file\n"
    assert os.path.isfile(home / ".conda")
