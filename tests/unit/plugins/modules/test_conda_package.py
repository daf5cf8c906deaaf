"""Unit tests of the conda_package module (run_command patched)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from ansible_collections.reforge.workstation.plugins.modules import conda_package


def base_args(root: Path, **extra: Any) -> Dict[str, Any]:
    args: Dict[str, Any] = {"conda": str(root / "bin" / "conda"), "prefix": str(root)}
    args.update(extra)
    return args


def with_records(records: List[Dict[str, Any]], *changes: Dict[str, Any]) -> List[Dict[str, Any]]:
    """records with the given records added or replacing the same name."""
    by_name = {rec["name"]: rec for rec in records}
    for rec in changes:
        by_name[rec["name"]] = rec
    return sorted(by_name.values(), key=lambda rec: rec["name"])


# present ---------------------------------------------------------------------------
def test_present_installed_names_need_no_solver(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastcore", "python"]))
    assert not failed
    assert result["changed"] is False
    assert result["installed"]["fastcore"] == "1.5.29"
    assert "fastbook" not in result["installed"], "pip packages are not conda's"
    assert fake.calls == [[str(root_prefix / "bin" / "conda"), "list", "--json", "-p", str(root_prefix)]]
    assert cj.undocumented_keys(conda_package, result) == []


def test_present_installs_missing_with_mamba(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    prefix = str(root_prefix)
    fastai = cj.record("fastai", "2.7.18")
    tinydep = cj.record("tinydep", "0.1.0")
    after = with_records(cj.base_records(), fastai, tinydep)
    fake.on("list", "--json", out=cj.list_json(cj.base_records()), times=1)
    fake.on("install", "--dry-run", exe="conda", out=cj.dry_run_json(prefix, link=[fastai, tinydep]))
    fake.on("install", exe="mamba", without=["--dry-run"], out=cj.real_run_json(prefix, link=[fastai, tinydep]))
    fake.on("list", "--json", out=cj.list_json(after))
    failed, result = run_module(conda_package, base_args(
        root_prefix, name=["fastcore", "fastai"], mamba=str(root_prefix / "bin" / "mamba"),
        channels=["conda-forge"]))
    assert not failed, result
    assert result["changed"] is True
    assert result["created"] is False
    assert result["actions"] == {"linked": ["fastai==2.7.18", "tinydep==0.1.0"], "unlinked": []}
    assert result["installed"]["fastai"] == "2.7.18"
    dry = fake.find("install", "--dry-run")
    assert dry == [[str(root_prefix / "bin" / "conda"), "install", "-y", "--json", "--dry-run",
                    "--satisfied-skip-solve", "-p", prefix, "-c", "conda-forge", "--override-channels", "fastai"]], \
        "installed names are not re-solved"
    real = fake.find("install", without=["--dry-run"])
    assert real == [[str(root_prefix / "bin" / "mamba"), "install", "-y", "--json", "-p", prefix,
                     "-c", "conda-forge", "--override-channels", "fastai"]]
    assert all(kw.get("expand_user_and_vars") is False for kw in fake.kwargs)
    # Every call is pinned to the managed root, whatever the caller's MAMBA_ROOT_PREFIX says.
    # Transactions also turn off conda's aggressive and self updates (mamba has neither).
    assert all(kw["environ_update"]["MAMBA_ROOT_PREFIX"] == prefix for kw in fake.kwargs)
    for call, kw in zip(fake.calls, fake.kwargs):
        transaction = "install" in call
        assert ("CONDA_AGGRESSIVE_UPDATE_PACKAGES" in kw["environ_update"]) is transaction
    assert result["cmds"] == fake.calls


def test_present_uses_conda_without_mamba(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    prefix = str(root_prefix)
    numpy = cj.record("numpy", "2.1.3", "py312h58c1407_0", "linux-64")
    fake.on("list", "--json", out=cj.list_json(cj.base_records()), times=1)
    fake.on("install", "--dry-run", out=cj.dry_run_json(prefix, link=[numpy]))
    fake.on("install", exe="conda", without=["--dry-run"], out=cj.real_run_json(prefix, link=[numpy]))
    fake.on("list", "--json", out=cj.list_json(with_records(cj.base_records(), numpy)))
    failed, result = run_module(conda_package, base_args(root_prefix, name=["numpy"]))
    assert not failed, result
    assert result["actions"]["linked"] == ["numpy==2.1.3"]
    assert "--override-channels" not in fake.find("install", without=["--dry-run"])[0]


def test_present_satisfied_constraint_is_no_change(fake: Any, run_module: Any, cj: Any,
                                                   root_prefix: Path) -> None:
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", out=cj.nothing_to_do_json)
    failed, result = run_module(conda_package, base_args(root_prefix, name=["python<3.13", "fastcore"]),
                                diff=True)
    assert not failed
    assert result["changed"] is False
    assert fake.find("install", "--dry-run")[0][-1] == "python<3.13"
    assert not fake.find("install", without=["--dry-run"])
    assert result["diff"]["before"] == result["diff"]["after"]


def test_empty_link_and_unlink_is_no_change(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", out=cj.dry_run_json(str(root_prefix)))
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastcore>=1.5"]))
    assert not failed
    assert result["changed"] is False


def test_present_check_mode_only_dry_runs(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    prefix = str(root_prefix)
    sentencepiece = cj.record("sentencepiece", "0.2.0", "py312h8a8b9a9_0", "linux-64")
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", out=cj.dry_run_json(prefix, link=[sentencepiece]))
    failed, result = run_module(conda_package, base_args(root_prefix, name=["sentencepiece"]),
                                check_mode=True, diff=True)
    assert not failed, result
    assert result["changed"] is True
    assert result["actions"] == {"linked": ["sentencepiece==0.2.0"], "unlinked": []}
    assert result["installed"]["sentencepiece"] == "0.2.0"
    assert "sentencepiece==0.2.0\n" in result["diff"]["after"]
    assert "sentencepiece" not in result["diff"]["before"]
    assert result["diff"]["before"] == "conda==24.11.3\nfastcore==1.5.29\nmamba==2.0.5\npip==24.3.1\npython==3.12.7\n"
    assert all("--dry-run" in call for call in fake.calls if "install" in call)


# latest ----------------------------------------------------------------------------
def test_latest_updates_installed_and_installs_missing(fake: Any, run_module: Any, cj: Any,
                                                       root_prefix: Path) -> None:
    prefix = str(root_prefix)
    old, new = cj.record("fastcore", "1.5.29"), cj.record("fastcore", "1.7.1")
    numpy = cj.record("numpy", "2.1.3", "py312h58c1407_0", "linux-64")
    fake.on("list", "--json", out=cj.list_json(cj.base_records()), times=1)
    fake.on("update", "--dry-run", out=cj.dry_run_json(prefix, link=[new], unlink=[old]))
    fake.on("install", "--dry-run", out=cj.dry_run_json(prefix, link=[numpy]))
    fake.on("update", exe="mamba", without=["--dry-run"], out=cj.real_run_json(prefix, [new], [old]))
    fake.on("install", exe="mamba", without=["--dry-run"], out=cj.real_run_json(prefix, [numpy]))
    fake.on("list", "--json", out=cj.list_json(with_records(cj.base_records(), new, numpy)))
    failed, result = run_module(conda_package, base_args(
        root_prefix, name=["fastcore", "numpy<3"], state="latest", mamba=str(root_prefix / "bin" / "mamba")))
    assert not failed, result
    assert result["changed"] is True
    assert result["actions"] == {"linked": ["fastcore==1.7.1", "numpy==2.1.3"], "unlinked": ["fastcore==1.5.29"]}
    assert fake.find("update", "--dry-run")[0][-1:] == ["fastcore"]
    assert fake.find("install", "--dry-run")[0][-1:] == ["numpy<3"], "update refuses constrained specs"
    assert len(fake.find("update", without=["--dry-run"])) == 1
    assert result["installed"]["fastcore"] == "1.7.1"


def test_latest_at_newest_is_no_change(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("update", "--dry-run", out=cj.nothing_to_do_json)
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastcore"], state="latest"))
    assert not failed
    assert result["changed"] is False
    assert not fake.find("update", without=["--dry-run"])


def test_latest_check_mode_predicts_upgrade(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    old, new = cj.record("fastcore", "1.5.29"), cj.record("fastcore", "1.7.1")
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("update", "--dry-run", out=cj.dry_run_json(str(root_prefix), link=[new], unlink=[old]))
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastcore"], state="latest"),
                                check_mode=True, diff=True)
    assert not failed
    assert result["changed"] is True
    assert result["installed"]["fastcore"] == "1.7.1"
    assert "fastcore==1.5.29" in result["diff"]["before"] and "fastcore==1.7.1" in result["diff"]["after"]


# absent ----------------------------------------------------------------------------
def test_absent_removes_only_installed_names(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    prefix = str(root_prefix)
    fastcore = cj.record("fastcore", "1.5.29")
    fake.on("list", "--json", out=cj.list_json(cj.base_records()), times=1)
    fake.on("remove", "--dry-run", out=cj.dry_run_json(prefix, unlink=[fastcore], fetch=[]))
    fake.on("remove", without=["--dry-run"], out=cj.real_run_json(prefix, unlink=[fastcore]))
    fake.on("list", "--json", out=cj.list_json([r for r in cj.base_records() if r["name"] != "fastcore"]))
    failed, result = run_module(conda_package, base_args(
        root_prefix, name=["fastcore>=1", "numpy", "fastbook"], state="absent", channels=["conda-forge"]))
    assert not failed, result
    assert result["changed"] is True
    assert result["actions"] == {"linked": [], "unlinked": ["fastcore==1.5.29"]}
    for call in fake.find("remove"):
        assert call[-1:] == ["fastcore"], "only installed conda packages, by name"
        assert "-c" not in call
    assert "fastcore" not in result["installed"]


def test_absent_not_installed_is_no_change(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    failed, result = run_module(conda_package, base_args(root_prefix, name=["numpy"], state="absent"),
                                check_mode=True)
    assert not failed
    assert result["changed"] is False
    assert len(fake.calls) == 1


def test_absent_check_mode(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fastcore = cj.record("fastcore", "1.5.29")
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("remove", "--dry-run", out=cj.dry_run_json(str(root_prefix), unlink=[fastcore], fetch=[]))
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastcore"], state="absent"),
                                check_mode=True, diff=True)
    assert not failed
    assert result["changed"] is True
    assert "fastcore" not in result["installed"]
    assert "fastcore==1.5.29" not in result["diff"]["after"]


def test_absent_in_missing_environment_runs_nothing(fake: Any, run_module: Any, cj: Any,
                                                    root_prefix: Path) -> None:
    failed, result = run_module(conda_package, base_args(
        root_prefix, prefix=str(root_prefix / "envs" / "gone"), name=["numpy"], state="absent"))
    assert not failed
    assert result["changed"] is False
    assert fake.calls == []


# environment creation ----------------------------------------------------------------
def test_creates_missing_named_environment(fake: Any, run_module: Any, cj: Any, root_prefix: Path,
                                           make_env: Any) -> None:
    root = str(root_prefix)
    env = root_prefix / "envs" / "tmp"
    python = cj.record("python", "3.9.20", "h13acc7a_1_cpython", "linux-64")
    fastcore = cj.record("fastcore", "1.7.1")
    fake.on("info", "--json", out=cj.info_json(root), times=1)
    fake.on("create", "--dry-run", out=cj.dry_run_json(str(env), link=[python, fastcore]))
    fake.on("create", exe="mamba", without=["--dry-run"], out=cj.real_run_json(str(env), [python, fastcore]),
            effect=lambda: make_env(env))
    fake.on("info", "--json", out=cj.info_json(root, envs=[str(env)]))
    fake.on("list", "--json", out=cj.list_json([fastcore, python]))
    failed, result = run_module(conda_package, {
        "conda": str(root_prefix / "bin" / "conda"), "mamba": str(root_prefix / "bin" / "mamba"),
        "environment": "tmp", "name": ["python<3.10", "fastcore"]})
    assert not failed, result
    assert result["changed"] is True and result["created"] is True
    assert result["prefix"] == str(env)
    assert result["actions"]["linked"] == ["fastcore==1.7.1", "python==3.9.20"]
    create = fake.find("create", without=["--dry-run"])[0]
    assert "-n" not in create and create[create.index("-p") + 1] == str(env)
    assert create[-2:] == ["python<3.10", "fastcore"]
    assert fake.find("list", "--json")[0][-2:] == ["-p", str(env)]


def test_create_check_mode(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    python = cj.record("python", "3.9.20", "h13acc7a_1_cpython", "linux-64")
    fake.on("info", "--json", out=cj.info_json(str(root_prefix)))
    fake.on("create", "--dry-run", out=cj.dry_run_json("/x", link=[python]))
    failed, result = run_module(conda_package, {
        "conda": str(root_prefix / "bin" / "conda"), "environment": "tmp", "name": ["python<3.10"]},
        check_mode=True, diff=True)
    assert not failed, result
    assert result["changed"] is True and result["created"] is True
    assert result["prefix"] == str(root_prefix / "envs" / "tmp")
    assert result["installed"] == {"python": "3.9.20"}
    assert result["diff"]["before"] == "" and result["diff"]["after"] == "python==3.9.20\n"
    assert not fake.find("create", without=["--dry-run"])


def test_creates_missing_prefix(fake: Any, run_module: Any, cj: Any, tmp_path: Path, root_prefix: Path,
                                make_env: Any) -> None:
    tools = tmp_path / "storage" / "tools"
    git = cj.record("git", "2.47.1", "pl5321h59d505e_0", "linux-64")
    fake.on("create", "--dry-run", out=cj.dry_run_json(str(tools), link=[git]))
    fake.on("create", without=["--dry-run"], out=cj.real_run_json(str(tools), [git]),
            effect=lambda: make_env(tools))
    fake.on("list", "--json", out=cj.list_json([git]))
    failed, result = run_module(conda_package, base_args(root_prefix, prefix=str(tools), name=["git"]))
    assert not failed, result
    assert result["created"] is True
    assert fake.find("create", without=["--dry-run"])[0][-3:] == ["-p", str(tools), "git"]


def test_named_environment_found_in_envs_dirs(fake: Any, run_module: Any, cj: Any, root_prefix: Path,
                                              tmp_path: Path, make_env: Any) -> None:
    other = make_env(tmp_path / "home" / ".conda" / "envs" / "side")
    envs_dirs = [str(root_prefix / "envs"), str(other.parent)]
    fake.on("info", "--json", out=cj.info_json(str(root_prefix), envs_dirs=envs_dirs))
    fake.on("list", "--json", out=cj.list_json([cj.record("fastcore", "1.7.1")]))
    failed, result = run_module(conda_package, {
        "conda": str(root_prefix / "bin" / "conda"), "environment": "side", "name": ["fastcore"]})
    assert not failed
    assert result["changed"] is False
    assert result["prefix"] == str(other)
    assert fake.find("list")[0][-2:] == ["-p", str(other)]


def test_no_target_means_root_prefix(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fake.on("info", "--json", out=cj.info_json(str(root_prefix)))
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    failed, result = run_module(conda_package, {"conda": str(root_prefix / "bin" / "conda"), "name": ["pip"]})
    assert not failed
    assert result["prefix"] == str(root_prefix)
    assert fake.find("list")[0][-2:] == ["-p", str(root_prefix)]


# failures ----------------------------------------------------------------------------
def test_solver_failure_names_package_and_environment(fake: Any, run_module: Any, cj: Any,
                                                      root_prefix: Path) -> None:
    stderr = cj.mamba_not_found("nosuchpkg")
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", rc=1, err=stderr)
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastai", "nosuchpkg"]))
    assert failed
    assert "nosuchpkg" in result["msg"] and str(root_prefix) in result["msg"]
    assert "fastai" not in result["msg"]
    assert result["unavailable"] == ["nosuchpkg"]
    assert result["stderr"] == stderr
    assert result["rc"] == 1
    assert not fake.find("install", without=["--dry-run"])


def test_solver_conflict_names_constrained_spec(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fake.on("info", "--json", out=cj.info_json(str(root_prefix)))
    fake.on("create", "--dry-run", rc=1, err=cj.mamba_not_installable("python", "<3.10"))
    failed, result = run_module(conda_package, {
        "conda": str(root_prefix / "bin" / "conda"), "environment": "tmp", "name": ["python<3.10", "fastai"]})
    assert failed
    assert result["unavailable"] == ["python<3.10"]
    assert "python<3.10" in result["msg"] and "environment 'tmp'" in result["msg"]


def test_conda_json_packages_not_found(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    """conda itself (no mamba front end) reports a JSON error document on stdout."""
    error = {
        "caused_by": "None",
        "channel_urls": [cj.record("x", "1")["base_url"]],
        "error": "PackagesNotFoundError: The following packages are not available from current channels:\n\n"
                 "  - nosuchpkg\n\nCurrent channels:\n\n  - " + cj.record("x", "1")["base_url"] + "\n",
        "exception_name": "PackagesNotFoundError",
        "exception_type": "<class 'conda.exceptions.PackagesNotFoundError'>",
        "message": "The following packages are not available from current channels:\n\n  - nosuchpkg\n",
        "packages": ["nosuchpkg"],
    }
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", rc=1, out=json.dumps(error, indent=2))
    failed, result = run_module(conda_package, base_args(root_prefix, name=["nosuchpkg"]))
    assert failed
    assert result["unavailable"] == ["nosuchpkg"]
    assert "nosuchpkg" in result["msg"]


def test_other_failure_is_not_called_a_solver_problem(fake: Any, run_module: Any, cj: Any,
                                                      root_prefix: Path) -> None:
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", out=cj.dry_run_json(str(root_prefix), link=[cj.record("fastai", "2.7.18")]))
    fake.on("install", without=["--dry-run"], rc=1,
            err="CondaHTTPError: HTTP 000 CONNECTION FAILED for url <https://channels.invalid/conda-forge>\n")
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastai"], skip_unavailable=True))
    assert failed
    assert "CondaHTTPError" in result["msg"]
    assert "resolve" not in result["msg"]
    assert result["unavailable"] == []


def test_unreadable_dry_run_fails(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", out="Collecting package metadata: done\n")
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastai"]))
    assert failed
    assert "unreadable JSON" in result["msg"]


# skip_unavailable ----------------------------------------------------------------------
def test_skip_unavailable_installs_what_resolves(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    prefix = str(root_prefix)
    fastai = cj.record("fastai", "2.7.18")
    fake.on("list", "--json", out=cj.list_json(cj.base_records()), times=1)
    fake.on("install", "--dry-run", ending=["fastai", "nosuchpkg"], rc=1, err=cj.mamba_not_found("nosuchpkg"))
    fake.on("install", "--dry-run", ending=["-p", prefix, "nosuchpkg"], rc=1, err=cj.mamba_not_found("nosuchpkg"))
    fake.on("install", "--dry-run", ending=["-p", prefix, "fastai"], out=cj.dry_run_json(prefix, link=[fastai]))
    fake.on("install", without=["--dry-run"], ending=["-p", prefix, "fastai"], out=cj.real_run_json(prefix, [fastai]))
    fake.on("list", "--json", out=cj.list_json(with_records(cj.base_records(), fastai)))
    failed, result = run_module(conda_package, base_args(
        root_prefix, name=["fastai", "nosuchpkg"], skip_unavailable=True))
    assert not failed, result
    assert result["changed"] is True
    assert result["unavailable"] == ["nosuchpkg"]
    assert result["actions"]["linked"] == ["fastai==2.7.18"]


def test_skip_unavailable_nothing_resolves(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", rc=1, err=cj.mamba_not_found("nosuchpkg", "otherpkg"))
    failed, result = run_module(conda_package, base_args(
        root_prefix, name=["nosuchpkg", "otherpkg"], skip_unavailable=True), check_mode=True)
    assert not failed
    assert result["changed"] is False
    assert result["unavailable"] == ["nosuchpkg", "otherpkg"]
    assert len(fake.find("install")) == 3, "one combined dry run, then one per spec"


def test_skip_unavailable_in_new_environment_check_mode(fake: Any, run_module: Any, cj: Any,
                                                        root_prefix: Path) -> None:
    fastcore = cj.record("fastcore", "1.7.1")
    fake.on("info", "--json", out=cj.info_json(str(root_prefix)))
    fake.on("create", "--dry-run", ending=["fastcore", "nosuchpkg"], rc=1, err=cj.mamba_not_found("nosuchpkg"))
    env = str(root_prefix / "envs" / "tmp")
    fake.on("create", "--dry-run", ending=[env, "nosuchpkg"], rc=1, err=cj.mamba_not_found("nosuchpkg"))
    fake.on("create", "--dry-run", ending=[env, "fastcore"], out=cj.dry_run_json("/x", link=[fastcore]))
    failed, result = run_module(conda_package, {
        "conda": str(root_prefix / "bin" / "conda"), "environment": "tmp", "name": ["fastcore", "nosuchpkg"],
        "skip_unavailable": True}, check_mode=True)
    assert not failed, result
    assert result["created"] is True
    assert result["unavailable"] == ["nosuchpkg"]
    assert result["installed"] == {"fastcore": "1.7.1"}


# options -------------------------------------------------------------------------------
def test_environment_and_prefix_are_mutually_exclusive(fake: Any, run_module: Any, root_prefix: Path) -> None:
    failed, result = run_module(conda_package, base_args(root_prefix, environment="tmp", name=["fastai"]))
    assert failed
    assert "mutually exclusive" in result["msg"]
    assert fake.calls == []


def test_missing_conda_executable(fake: Any, run_module: Any, tmp_path: Path) -> None:
    failed, result = run_module(conda_package, {"conda": str(tmp_path / "nope" / "conda"), "name": ["fastai"]})
    assert failed
    assert "conda executable not found" in result["msg"]
    assert fake.calls == []


@pytest.mark.parametrize("state", ["present", "latest", "absent"])
def test_every_state_reads_before_acting(fake: Any, run_module: Any, cj: Any, root_prefix: Path, state: str) -> None:
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    unlink = cj.dry_run_json(str(root_prefix), unlink=[cj.record("fastcore", "1.5.29")], fetch=[])
    fake.on("--dry-run", out=unlink if state == "absent" else cj.nothing_to_do_json)
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastcore"], state=state),
                                check_mode=True)
    assert not failed
    assert fake.calls[0][1:3] == ["list", "--json"]
    assert result["changed"] is (state == "absent")


def test_latest_sends_constrained_installed_spec_to_install(fake: Any, run_module: Any, cj: Any,
                                                            root_prefix: Path) -> None:
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", out=cj.nothing_to_do_json)
    failed, result = run_module(conda_package, base_args(root_prefix, name=["python<3.13"], state="latest"),
                                check_mode=True)
    assert not failed, result
    assert result["changed"] is False
    assert not fake.find("update"), "conda update refuses specs with a version constraint"
    assert fake.find("install", "--dry-run")[0][-1] == "python<3.13"


def test_skip_unavailable_does_not_retry_other_failures(fake: Any, run_module: Any, cj: Any,
                                                        root_prefix: Path) -> None:
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", rc=1,
            err="CondaHTTPError: HTTP 000 CONNECTION FAILED for url <https://channels.invalid/conda-forge>\n")
    failed, result = run_module(conda_package, base_args(
        root_prefix, name=["fastai", "nosuchpkg"], skip_unavailable=True))
    assert failed
    assert "CondaHTTPError" in result["msg"]
    assert len(fake.find("install")) == 1, "a network failure is not a reason to try spec by spec"
    assert result["unavailable"] == []


def test_empty_name_creates_an_empty_environment(fake: Any, run_module: Any, cj: Any, root_prefix: Path,
                                                 make_env: Any) -> None:
    env = root_prefix / "envs" / "empty"
    fake.on("info", "--json", out=cj.info_json(str(root_prefix)), times=1)
    fake.on("create", without=["--dry-run"], out='{"success": true}', effect=lambda: make_env(env))
    fake.on("info", "--json", out=cj.info_json(str(root_prefix), envs=[str(env)]))
    fake.on("list", "--json", out="[]")
    failed, result = run_module(conda_package, {"conda": str(root_prefix / "bin" / "conda"),
                                                "environment": "empty", "name": []})
    assert not failed, result
    assert result["changed"] is True and result["created"] is True
    assert result["prefix"] == str(env)
    assert fake.find("create")[0][-2:] == ["-p", str(env)]
    assert not fake.find("--dry-run"), "nothing to solve"


def test_empty_name_in_existing_environment_is_no_change(fake: Any, run_module: Any, cj: Any,
                                                         root_prefix: Path) -> None:
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    for state in ("present", "latest", "absent"):
        failed, result = run_module(conda_package, base_args(root_prefix, name=[], state=state), check_mode=True)
        assert not failed
        assert result["changed"] is False
    assert all(call[1] == "list" for call in fake.calls)


def test_empty_name_check_mode_predicts_creation(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fake.on("info", "--json", out=cj.info_json(str(root_prefix)))
    failed, result = run_module(conda_package, {"conda": str(root_prefix / "bin" / "conda"),
                                                "environment": "empty", "name": []}, check_mode=True)
    assert not failed
    assert result["changed"] is True and result["created"] is True
    assert len(fake.calls) == 1


@pytest.mark.parametrize("spec, name, bare", [
    ("fastai", "fastai", True),
    ("python<3.10", "python", False),
    ("python 3.12.*", "python", False),
    ("numpy>=1.26,<2", "numpy", False),
    ("numpy=1.26.4=py312heda63a1_0", "numpy", False),
    ("python[version='<3.10']", "python", False),
    ("conda-forge::numpy", "numpy", False),
    ("conda-forge/linux-64::numpy==2.1.3", "numpy", False),
    ('numpy[version=">=1,<2"]', "numpy", False),
    ("https://conda.example.invalid/conda-forge::numpy", "numpy", False),
    ("ruamel.yaml", "ruamel.yaml", True),
    ("Jinja2", "jinja2", True),
])
def test_spec_names(spec: str, name: str, bare: bool) -> None:
    from ansible_collections.reforge.workstation.plugins.module_utils.conda_cli import is_name_only, spec_name

    assert spec_name(spec) == name
    assert is_name_only(spec) is bare


@pytest.mark.parametrize("conda, root", [
    ("/home/u/miniforge3/bin/conda", "/home/u/miniforge3"),
    ("/home/u/miniforge3/condabin/conda", "/home/u/miniforge3"),
    ("/usr/local/bin/conda-wrapper", "/usr/local"),
    ("/opt/tools/conda", None),
    (None, None),
])
def test_installation_root(conda: Any, root: Any) -> None:
    from ansible_collections.reforge.workstation.plugins.module_utils.conda_cli import installation_root

    assert installation_root(conda) == root


def test_conda_libmamba_json_error(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    """conda with its libmamba solver, --json: the problem report is inside a JSON error document."""
    message = ("Encountered problems while solving:\n  - nothing provides requested nosuchpkg\n\n"
               "Could not solve for environment specs\nThe following package could not be installed\n"
               "\u2514\u2500 nosuchpkg does not exist (perhaps a typo or a missing channel).\n")
    error = {
        "caused_by": "None",
        "error": "LibMambaUnsatisfiableError: " + message,
        "exception_name": "LibMambaUnsatisfiableError",
        "exception_type": "<class 'conda_libmamba_solver.exceptions.LibMambaUnsatisfiableError'>",
        "message": message,
    }
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", rc=1, out=json.dumps(error, indent=2))
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastai", "nosuchpkg"]))
    assert failed
    assert result["unavailable"] == ["nosuchpkg"]
    assert "Could not resolve nosuchpkg for prefix %s" % root_prefix in result["msg"]


def test_unexplained_conflict_names_the_whole_set(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    stderr = ("error    libmamba Could not solve for environment specs\n"
              "    The following packages are incompatible\n"
              "    ├─ fastai =* * is installable and it requires\n"
              "    │  └─ fastcore >=1.7 *, which can be installed;\n"
              "    └─ fastcore-old =* * is installable and it conflicts with fastcore\n"
              "critical libmamba Could not solve for environment specs\n")
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", rc=1, err=stderr)
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastai", "fastcore-old"]))
    assert failed
    assert result["unavailable"] == []
    assert "fastai, fastcore-old cannot be installed together" in result["msg"]


# The real tools' differences (REAL-CONDA.md D6, D7, D12, D16) ----------------------
def test_conda_calls_turn_off_the_updates_mamba_never_makes(fake: Any, run_module: Any, cj: Any,
                                                            root_prefix: Path) -> None:
    """D6: conda's solve adds aggressive updates (openssl, ca-certificates, certifi), a conda
    self-update in base and an update of an installed requested spec; mamba makes none of them.
    So conda runs with them off and with -S, and then answers like mamba."""
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", "--satisfied-skip-solve", out=cj.nothing_to_do_json)
    fake.on("install", "--dry-run", out=cj.dry_run_json(str(root_prefix), link=[
        cj.record("openssl", "3.4.1", "h7b32b05_1", "linux-64"),
        cj.record("conda", "24.11.4", "py312h7900ff3_0", "linux-64"),
        cj.record("fastcore", "1.7.1")]))
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastcore>=1.5"]), check_mode=True)
    assert not failed, result
    assert result["changed"] is False
    (call,) = fake.find("install")
    environ = fake.kwargs[fake.calls.index(call)]["environ_update"]
    assert environ["CONDA_AGGRESSIVE_UPDATE_PACKAGES"] == ""
    assert environ["CONDA_AUTO_UPDATE_CONDA"] == "false"


def test_update_dry_runs_do_not_skip_the_solve(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    """-S would call every installed name satisfied: latest must still see newer versions."""
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("update", "--dry-run", without=["--satisfied-skip-solve"], out=cj.nothing_to_do_json)
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastcore"], state="latest"),
                                check_mode=True)
    assert not failed, result
    assert fake.find("update")


def test_check_mode_reports_the_dependencies_mamba_remove_prunes(fake: Any, run_module: Any, cj: Any,
                                                                 root_prefix: Path) -> None:
    """D7: mamba remove prunes what nothing needs any more; conda's dry run does not list it."""
    meta = root_prefix / "conda-meta"
    (meta / "history").write_text(
        "==> 2024-05-01 12:00:00 <==\n# cmd: constructor\n# update specs: ['python=3.12', 'conda', 'mamba', 'pip']\n"
        "==> 2024-05-02 12:00:00 <==\n# cmd: mamba install fastai numpy\n# update specs: [\"fastai\", \"numpy\"]\n")
    depends = {"fastai": ["python >=3.8", "fastcore >=1.5.29,<1.8", "tinydep"], "fastcore": ["python >=3.7"],
               "tinydep": ["python >=3.7"], "numpy": ["python >=3.9"], "pip": ["python >=3.8"],
               "python": [], "conda": ["python"], "mamba": []}
    for name, deps in depends.items():
        (meta / ("%s-1-0.json" % name)).write_text(json.dumps({"name": name, "depends": deps}))
    records = cj.base_records() + [cj.record("fastai", "2.7.18"), cj.record("tinydep", "0.1.0"),
                                   cj.record("numpy", "1.26.4", "py312h8", "linux-64")]
    fake.on("list", "--json", out=cj.list_json(records))
    fake.on("remove", "--dry-run", out=cj.dry_run_json(str(root_prefix), unlink=[cj.record("fastai", "2.7.18")],
                                                       fetch=[]))
    args = base_args(root_prefix, name=["fastai"], state="absent", mamba=str(root_prefix / "bin" / "mamba"))
    failed, result = run_module(conda_package, args, check_mode=True)
    assert not failed, result
    assert result["actions"]["unlinked"] == ["fastai==2.7.18", "fastcore==1.5.29", "tinydep==0.1.0"]
    assert set(result["installed"]) >= {"numpy", "python", "pip", "conda", "mamba"}


def test_conda_json_error_on_stdout_makes_the_message(fake: Any, run_module: Any, cj: Any,
                                                      root_prefix: Path) -> None:
    """D12: with --json conda prints its error as JSON on stdout and leaves stderr empty."""
    error = {"caused_by": "None", "error": "InvalidMatchSpec: Invalid spec '!!bad': bad name",
             "exception_name": "InvalidMatchSpec", "exception_type": "<class 'conda.exceptions.InvalidMatchSpec'>",
             "message": "Invalid spec '!!bad': bad name"}
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", rc=1, out=json.dumps(error, indent=2))
    failed, result = run_module(conda_package, base_args(root_prefix, name=["!!bad"]))
    assert failed
    assert result["msg"].endswith("InvalidMatchSpec: Invalid spec '!!bad': bad name"), result["msg"]


def test_mamba_2_json_shape_of_the_real_run_is_tolerated(fake: Any, run_module: Any, cj: Any,
                                                         root_prefix: Path) -> None:
    """D16: mamba 2's --json has libmamba PackageInfo entries (no dist_name) and its own message."""
    prefix = str(root_prefix)
    fastai = cj.record("fastai", "2.7.18")
    info = {key: fastai[key] for key in ("name", "version", "build_string", "build_number")}
    info.update(build="pyhd8ed1ab_0", subdir="noarch", fn="fastai-2.7.18-pyhd8ed1ab_0.conda", depends=[])
    mamba_out = json.dumps({"success": True, "dry_run": False, "prefix": prefix,
                            "actions": {"PREFIX": prefix, "FETCH": [info], "LINK": [info], "UNLINK": []}})
    fake.on("list", "--json", out=cj.list_json(cj.base_records()), times=1)
    fake.on("install", "--dry-run", out=cj.dry_run_json(prefix, link=[fastai]))
    fake.on("install", exe="mamba", out=mamba_out)
    fake.on("list", "--json", out=cj.list_json(with_records(cj.base_records(), fastai)))
    args = base_args(root_prefix, name=["fastai"], mamba=str(root_prefix / "bin" / "mamba"))
    failed, result = run_module(conda_package, args)
    assert not failed, result
    assert result["actions"] == {"linked": ["fastai==2.7.18"], "unlinked": []}
    fake.calls.clear()
    fake.rules.clear()
    fake.on("list", "--json", out=cj.list_json(with_records(cj.base_records(), fastai)))
    fake.on("install", "--dry-run", out=json.dumps({"success": True,
                                                    "message": "All requested packages already installed"}))
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastai>=2"]))
    assert not failed and result["changed"] is False, result


def test_a_satisfied_spec_beside_a_missing_one_is_not_updated(fake: Any, run_module: Any, cj: Any,
                                                              root_prefix: Path) -> None:
    """D6: with something else to solve, conda updates an installed requested package anyway
    (-S only helps when all are satisfied); mamba keeps it. The satisfied spec is dropped."""
    prefix = str(root_prefix)
    numpy = cj.record("numpy", "1.26.4", "py312h8", "linux-64")
    fake.on("list", "--json", out=cj.list_json(cj.base_records()))
    fake.on("install", "--dry-run", ending=["fastcore>=1.5", "numpy<2"], out=cj.dry_run_json(
        prefix, link=[numpy, cj.record("fastcore", "1.7.1")], unlink=[cj.record("fastcore", "1.5.29")]))
    fake.on("install", "--dry-run", ending=["-p", prefix, "fastcore>=1.5"], out=cj.nothing_to_do_json)
    fake.on("install", "--dry-run", ending=["-p", prefix, "numpy<2"], out=cj.dry_run_json(prefix, link=[numpy]))
    failed, result = run_module(conda_package, base_args(root_prefix, name=["fastcore>=1.5", "numpy<2"]),
                                check_mode=True)
    assert not failed, result
    assert result["actions"] == {"linked": ["numpy==1.26.4"], "unlinked": []}
    assert result["installed"]["fastcore"] == "1.5.29"
