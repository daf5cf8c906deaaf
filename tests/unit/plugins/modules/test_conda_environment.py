"""Unit tests of the conda_environment module (run_command patched)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict

import pytest

from ansible_collections.reforge.workstation.plugins.modules import conda_environment


def conda_args(root: Path, **extra: Any) -> Dict[str, Any]:
    args: Dict[str, Any] = {"conda": str(root / "bin" / "conda")}
    args.update(extra)
    return args


def test_present_existing_is_no_change(fake: Any, run_module: Any, cj: Any, root_prefix: Path,
                                       make_env: Any) -> None:
    env = make_env(root_prefix / "envs" / "tmp")
    fake.on("info", "--json", out=cj.info_json(str(root_prefix), envs=[str(env)]))
    failed, result = run_module(conda_environment, conda_args(root_prefix, name="tmp", packages=["fastcore"]),
                                diff=True)
    assert not failed
    assert result["changed"] is False
    assert result["prefix"] == str(env)
    assert result["exists"] is True
    assert len(fake.calls) == 1, "an existing environment is not re-solved"
    assert result["diff"]["before"] == result["diff"]["after"]
    assert cj.undocumented_keys(conda_environment, result) == []


def test_creates_named_environment_with_mamba(fake: Any, run_module: Any, cj: Any, root_prefix: Path,
                                              make_env: Any) -> None:
    env = root_prefix / "envs" / "tmp"
    fake.on("info", "--json", out=cj.info_json(str(root_prefix)), times=1)
    fake.on("create", exe="mamba", without=["--dry-run"],
            out=cj.real_run_json(str(env), [cj.record("fastcore", "1.7.1")]), effect=lambda: make_env(env))
    fake.on("info", "--json", out=cj.info_json(str(root_prefix), envs=[str(env)]))
    failed, result = run_module(conda_environment, conda_args(
        root_prefix, name="tmp", packages=["python<3.10", "fastcore"], mamba=str(root_prefix / "bin" / "mamba"),
        channels=["conda-forge"]), diff=True)
    assert not failed, result
    assert result["changed"] is True
    assert result["prefix"] == str(env)
    assert env.joinpath("conda-meta").is_dir()
    # By path, never -n: mamba 2 would resolve a name against the caller's MAMBA_ROOT_PREFIX.
    assert fake.find("create") == [[str(root_prefix / "bin" / "mamba"), "create", "-y", "--json", "-p", str(env),
                                    "-c", "conda-forge", "--override-channels", "python<3.10", "fastcore"]]
    assert all(kw["environ_update"]["MAMBA_ROOT_PREFIX"] == str(root_prefix) for kw in fake.kwargs)
    assert result["diff"]["before"] == "state: absent\n"
    assert result["diff"]["after"] == "state: present\nprefix: %s\n" % env


def test_creates_prefix_without_packages(fake: Any, run_module: Any, cj: Any, root_prefix: Path, tmp_path: Path,
                                         make_env: Any) -> None:
    tools = tmp_path / "storage" / "tools"
    fake.on("info", "--json", out=cj.info_json(str(root_prefix)))
    fake.on("create", exe="conda", out='{"success": true}', effect=lambda: make_env(tools))
    failed, result = run_module(conda_environment, conda_args(root_prefix, prefix=str(tools)))
    assert not failed, result
    assert result["changed"] is True
    assert fake.find("create")[0][-2:] == ["-p", str(tools)]


def test_create_check_mode_dry_runs_the_packages(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fake.on("info", "--json", out=cj.info_json(str(root_prefix)))
    fake.on("create", "--dry-run", exe="conda",
            out=cj.dry_run_json("/x", link=[cj.record("python", "3.9.20", "h13acc7a_1_cpython", "linux-64")]))
    failed, result = run_module(conda_environment, conda_args(
        root_prefix, name="tmp", packages=["python<3.10"], mamba=str(root_prefix / "bin" / "mamba")),
        check_mode=True, diff=True)
    assert not failed, result
    assert result["changed"] is True
    assert result["exists"] is True
    assert result["prefix"] == str(root_prefix / "envs" / "tmp")
    assert fake.find("create", "--dry-run")[0][-3:] == ["-p", str(root_prefix / "envs" / "tmp"), "python<3.10"]
    assert not (root_prefix / "envs" / "tmp").exists()
    assert not fake.find("create", without=["--dry-run"])


def test_create_check_mode_without_packages_runs_no_solver(fake: Any, run_module: Any, cj: Any,
                                                           root_prefix: Path) -> None:
    fake.on("info", "--json", out=cj.info_json(str(root_prefix)))
    failed, result = run_module(conda_environment, conda_args(root_prefix, name="tmp"), check_mode=True)
    assert not failed
    assert result["changed"] is True
    assert len(fake.calls) == 1


def test_creation_solver_failure(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    stderr = cj.mamba_not_found("nosuchpkg")
    fake.on("info", "--json", out=cj.info_json(str(root_prefix)))
    fake.on("create", rc=1, err=stderr)
    failed, result = run_module(conda_environment, conda_args(root_prefix, name="tmp",
                                                              packages=["fastcore", "nosuchpkg"]))
    assert failed
    assert "nosuchpkg" in result["msg"] and "environment 'tmp'" in result["msg"]
    assert result["unavailable"] == ["nosuchpkg"]
    assert result["stderr"] == stderr


def test_absent_removes_environment(fake: Any, run_module: Any, cj: Any, root_prefix: Path, make_env: Any) -> None:
    env = make_env(root_prefix / "envs" / "tmp")
    fake.on("info", "--json", out=cj.info_json(str(root_prefix), envs=[str(env)]))
    fake.on("env", "remove", exe="conda", effect=lambda: shutil.rmtree(env))
    failed, result = run_module(conda_environment, conda_args(
        root_prefix, name="tmp", state="absent", mamba=str(root_prefix / "bin" / "mamba")), diff=True)
    assert not failed, result
    assert result["changed"] is True
    assert result["exists"] is False
    assert not env.exists()
    assert fake.find("env", "remove") == [[str(root_prefix / "bin" / "conda"), "env", "remove", "-y", "-p", str(env)]]
    assert result["diff"]["after"] == "state: absent\n"


def test_absent_check_mode_removes_nothing(fake: Any, run_module: Any, cj: Any, root_prefix: Path,
                                           make_env: Any) -> None:
    env = make_env(root_prefix / "envs" / "tmp")
    fake.on("info", "--json", out=cj.info_json(str(root_prefix), envs=[str(env)]))
    failed, result = run_module(conda_environment, conda_args(root_prefix, prefix=str(env), state="absent"),
                                check_mode=True)
    assert not failed
    assert result["changed"] is True
    assert env.is_dir()
    assert len(fake.calls) == 1


def test_absent_missing_is_no_change(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fake.on("info", "--json", out=cj.info_json(str(root_prefix)))
    failed, result = run_module(conda_environment, conda_args(root_prefix, name="tmp", state="absent"))
    assert not failed
    assert result["changed"] is False
    assert result["exists"] is False


def test_remove_that_leaves_the_environment_fails(fake: Any, run_module: Any, cj: Any, root_prefix: Path,
                                                  make_env: Any) -> None:
    env = make_env(root_prefix / "envs" / "tmp")
    fake.on("info", "--json", out=cj.info_json(str(root_prefix), envs=[str(env)]))
    fake.on("env", "remove")
    failed, result = run_module(conda_environment, conda_args(root_prefix, name="tmp", state="absent"))
    assert failed
    assert "left" in result["msg"]


@pytest.mark.parametrize("target", [{"name": "base"}, {"prefix": "ROOT"}, {"prefix": "ROOT/"}])
def test_refuses_to_remove_root_prefix(fake: Any, run_module: Any, cj: Any, root_prefix: Path,
                                       target: Dict[str, str]) -> None:
    fake.on("info", "--json", out=cj.info_json(str(root_prefix)))
    target = {key: value.replace("ROOT", str(root_prefix)) for key, value in target.items()}
    failed, result = run_module(conda_environment, conda_args(root_prefix, state="absent", **target))
    assert failed
    assert "Refusing to remove the root prefix" in result["msg"]
    assert not fake.find("remove")
    assert (root_prefix / "conda-meta").is_dir()


def test_root_prefix_through_a_symlink_is_refused(fake: Any, run_module: Any, cj: Any, root_prefix: Path,
                                                  tmp_path: Path) -> None:
    link = tmp_path / "conda-link"
    link.symlink_to(root_prefix)
    fake.on("info", "--json", out=cj.info_json(str(root_prefix)))
    failed, result = run_module(conda_environment, conda_args(root_prefix, prefix=str(link), state="absent"))
    assert failed
    assert "Refusing" in result["msg"]


def test_name_and_prefix_are_mutually_exclusive(fake: Any, run_module: Any, root_prefix: Path) -> None:
    failed, result = run_module(conda_environment, conda_args(root_prefix, name="tmp", prefix="/x"))
    assert failed
    assert "mutually exclusive" in result["msg"]


def test_name_or_prefix_is_required(fake: Any, run_module: Any, root_prefix: Path) -> None:
    failed, result = run_module(conda_environment, conda_args(root_prefix))
    assert failed
    assert "one of the following is required" in result["msg"]
    assert fake.calls == []
