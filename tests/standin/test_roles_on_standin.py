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
         options: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess[str]:
    """Run TASKS (YAML, indented for a play's task list) on localhost."""
    book = tmp_path / "play.yml"
    book.write_text(
        "---\n- name: Run the role task files under test\n  hosts: localhost\n"
        f"  gather_facts: {'true' if gather else 'false'}\n"
        + ("  gather_subset: ['!all', '!min', user]\n" if gather else "")
        + "  tasks:\n" + tasks
    )
    run_env = clean_env(home, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **env)
    argv = [PLAYBOOK, str(book), "-e", json.dumps(extra), *options]
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


# --------------------------------------------------------------------------
# The real tools' solver behaviours (REAL-CONDA.md D6, D7, D8, D10, D12)
# --------------------------------------------------------------------------

PACKAGES = """    - name: Base packages
      ansible.builtin.include_role:
        name: base_env
        tasks_from: packages
"""


def module_task(args: dict[str, Any], out: Path, ignore_errors: bool = False) -> str:
    """A conda_package task whose registered result is written to OUT (in check mode too, reported unchanged)."""
    return (
        "    - name: Manage packages\n      reforge.workstation.conda_package: "
        + json.dumps(args)
        + "\n      register: __result\n"
        + ("      ignore_errors: true\n" if ignore_errors else "")
        + "    - name: Keep the result\n      ansible.builtin.copy:\n"
        + f"        content: \"{{{{ __result | to_json }}}}\"\n        dest: {out}\n        mode: '0644'\n"
        + "      check_mode: false\n      changed_when: false\n"
    )


def history_length(prefix: Path) -> int:
    return (prefix / "conda-meta" / "history").read_text().count("==>")


def test_a_converged_base_stays_unchanged_although_conda_would_update_openssl_and_itself(tmp_path: Path) -> None:
    """D6: conda's solve adds aggressive updates, a conda self-update and an update of an installed
    requested spec; mamba, which runs the real transaction, makes none of them."""
    home = tmp_path / "home"
    home.mkdir()
    prefix = tmp_path / "miniforge3"
    install(prefix, home)
    standin = Standin(prefix=prefix, home=home)
    base = standin.listed()
    # Miniforge's base ships openssl and ca-certificates; the index has newer ones and a newer conda.
    assert {"openssl", "ca-certificates"} <= set(base)
    standin.mamba("install", "-y", "-q", "fastcore=1.5")
    dry = standin.conda_json("install", "--dry-run", "-y", "-p", str(prefix), "fastcore>=1.5")
    assert {entry["name"] for entry in dry["actions"]["LINK"]} >= {"openssl", "ca-certificates", "conda", "fastcore"}

    extra = {"base_env_prefix": str(prefix), "base_env_conda_packages": ["fastcore>=1.5", "numpy>=1,<2"],
             "base_env_pip_packages": [], "base_env_state": "present"}
    predicted = play(tmp_path, home, PACKAGES, extra, options=("--check", "--diff"))
    assert predicted.returncode == 0, predicted.stdout[-3000:]
    assert "+numpy==1.26.4" in predicted.stdout
    unwanted = ("+fastcore==", "+openssl==", "+ca-certificates==", "+conda==")
    assert not [word for word in predicted.stdout.split() if word.startswith(unwanted)], predicted.stdout[-3000:]
    first = play(tmp_path, home, PACKAGES, extra)
    assert first.returncode == 0, first.stdout[-3000:]
    entries = history_length(prefix)
    listed = standin.listed()
    assert listed["fastcore"]["version"] == "1.5.29"
    assert listed["openssl"]["version"] == base["openssl"]["version"]

    checked = play(tmp_path, home, PACKAGES, extra, options=("--check", "--diff"))
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert recap_changed(checked.stdout) == 0, checked.stdout[-3000:]
    again = play(tmp_path, home, PACKAGES, extra)
    assert again.returncode == 0, again.stdout[-3000:]
    assert recap_changed(again.stdout) == 0, again.stdout[-3000:]
    assert history_length(prefix) == entries  # no useless transaction
    assert standin.listed() == listed


def test_removing_a_package_reports_the_orphans_mamba_prunes(tmp_path: Path) -> None:
    """D7: mamba remove also drops the dependencies nothing needs any more; check mode and the real
    run both report them."""
    home = tmp_path / "home"
    home.mkdir()
    prefix = tmp_path / "miniforge3"
    install(prefix, home)
    standin = Standin(prefix=prefix, home=home)
    standin.mamba("install", "-y", "-q", "fastai", "numpy")
    args = {"name": ["fastai"], "prefix": str(prefix), "state": "absent", "conda": f"{prefix}/bin/conda",
            "mamba": f"{prefix}/bin/mamba"}
    out = tmp_path / "result.json"

    checked = play(tmp_path, home, module_task(args, out), {}, options=("--check",))
    assert checked.returncode == 0, checked.stdout[-3000:]
    predicted = json.loads(out.read_text())
    assert {"fastai", "fastcore", "tinydep"} <= set(standin.listed())

    done = play(tmp_path, home, module_task(args, out), {})
    assert done.returncode == 0, done.stdout[-3000:]
    result = json.loads(out.read_text())
    listed = standin.listed()
    assert not {"fastai", "fastcore", "tinydep"} & set(listed)
    assert "numpy" in listed  # requested: kept
    removed = {label.split("==")[0] for label in result["actions"]["unlinked"]}
    assert removed == {"fastai", "fastcore", "tinydep"}
    assert predicted["actions"]["unlinked"] == result["actions"]["unlinked"]


def test_a_requested_older_python_downgrades_the_environment_in_place(scratch: dict[str, Any],
                                                                      tmp_path: Path) -> None:
    """D8: python<3.10 in an environment with a newer Python is a downgrade, not a solver error."""
    root, home, prefix = scratch["root"], scratch["home"], scratch["prefix"]
    side = prefix / "envs" / "oldpy"
    standin = Standin(prefix=prefix, home=home)
    extra = dict(scratch["vars"], base_env_environments=[{"name": "oldpy", "packages": ["python", "numpy"]}])
    made = play(root, home, ENVIRONMENTS, extra)
    assert made.returncode == 0, made.stdout[-3000:]
    before = standin.listed("-p", str(side))
    assert before["numpy"]["version"] == "2.1.3"

    extra = dict(scratch["vars"], base_env_environments=[{"name": "oldpy", "packages": ["python<3.10", "numpy"]}])
    checked = play(root, home, ENVIRONMENTS, extra, options=("--check",))
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert recap_changed(checked.stdout) == 1
    assert standin.listed("-p", str(side)) == before

    done = play(root, home, ENVIRONMENTS, extra)
    assert done.returncode == 0, done.stdout[-3000:]
    after = standin.listed("-p", str(side))
    assert after["python"]["version"].startswith("3.9.")
    assert after["numpy"]["version"] == "1.26.4" and after["numpy"]["build_string"].startswith("py39")
    again = play(root, home, ENVIRONMENTS, extra)
    assert again.returncode == 0, again.stdout[-3000:]
    assert recap_changed(again.stdout) == 0


def test_a_snapshot_of_a_prefix_without_requests_keeps_the_leaves_of_condas_explicit_export(
        tmp_path: Path) -> None:
    """D10: with no requested spec in the history, conda 25.7+ exports every installed package
    (name=version=build); the snapshot must still list only what the user installed."""
    home = tmp_path / "home"
    home.mkdir()
    prefix = tmp_path / "miniforge3"
    install(prefix, home)
    standin = Standin(prefix=prefix, home=home)
    standin.mamba("install", "-y", "-q", "fastai")
    (prefix / "conda-meta" / "history").write_text("")
    exported = standin.conda_json("env", "export", "--from-history", "-p", str(prefix))
    assert "fastai=2.7.18=pyhd8ed1ab_0" in exported["dependencies"]

    extra = {"base_env_prefix": str(prefix), "base_env_snapshot_dir": str(tmp_path / "snapshots")}
    taken = play(tmp_path, home, SNAPSHOT, extra)
    assert taken.returncode == 0, taken.stdout[-3000:]
    (snapshot_file,) = (tmp_path / "snapshots").iterdir()
    record = json.loads(snapshot_file.read_text())
    assert record["unpinned_conda"] == ["fastai"]


def test_conda_json_errors_on_stdout_reach_the_failure_message(scratch: dict[str, Any], tmp_path: Path) -> None:
    """D12: under --json conda prints its errors as JSON on stdout and nothing on stderr."""
    root, home, prefix = scratch["root"], scratch["home"], scratch["prefix"]
    args = {"name": ["fastcore>=1", "!!bad"], "prefix": str(prefix), "conda": f"{prefix}/bin/conda",
            "mamba": f"{prefix}/bin/mamba"}
    out = tmp_path / "result.json"
    failed = play(root, home, module_task(args, out, ignore_errors=True), {})
    assert failed.returncode == 0, failed.stdout[-3000:]
    result = json.loads(out.read_text())
    assert result["failed"] and result["stderr"] == ""
    assert json.loads(result["stdout"])["exception_name"] == "InvalidMatchSpec"
    assert "InvalidMatchSpec: Invalid spec '!!bad'" in result["msg"], result["msg"]

    args["name"] = ["fastcore", "nosuchpkg"]
    failed = play(root, home, module_task(args, out, ignore_errors=True), {})
    assert failed.returncode == 0, failed.stdout[-3000:]
    result = json.loads(out.read_text())
    assert result["failed"] and result["stderr"] == ""
    assert json.loads(result["stdout"])["packages"] == ["nosuchpkg"]
    assert result["unavailable"] == ["nosuchpkg"]
    assert result["msg"].startswith("Could not resolve nosuchpkg for"), result["msg"]

    args["name"] = ["numpy>=3"]
    failed = play(root, home, module_task(args, out, ignore_errors=True), {})
    result = json.loads(out.read_text())
    assert json.loads(result["stdout"])["exception_name"] in ("PackagesNotFoundError", "LibMambaUnsatisfiableError")
    assert result["unavailable"] == ["numpy>=3"], result
