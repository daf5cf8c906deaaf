"""Unit tests of the conda_snapshot module (run_command patched)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

from ansible.module_utils.common.warnings import get_warning_messages

import conda_snapshot


def export_json(prefix: Path, dependencies: List[str]) -> str:
    """`conda env export --from-history --json` of the root prefix."""
    return json.dumps({
        "channels": ["conda-forge"],
        "dependencies": dependencies,
        "name": "base",
        "prefix": str(prefix),
    }, indent=2)


# What a Miniforge root prefix records after `mamba install fastai sentencepiece
# 'numpy<2'` and `pip install fastbook Some_Tool timm` (timm is a dependency of
# fastbook here, so pip list --not-required leaves it out).
HISTORY = ["python=3.12", "conda", "mamba", "pip", "fastai", "sentencepiece", "numpy[version='<2']"]


def snapshot_records(cj: Any) -> List[Dict[str, Any]]:
    return cj.base_records() + [
        cj.record("fastai", "2.7.18"),
        cj.record("sentencepiece", "0.2.0", "py312h8a8b9a9_0", "linux-64"),
        cj.record("numpy", "1.26.4", "py312heda63a1_0", "linux-64"),
        cj.record("some-tool", "1.0", channel="pypi"),
        cj.record("timm", "1.0.12", channel="pypi"),
    ]


PIP_NOT_REQUIRED = json.dumps([
    {"name": "fastai", "version": "2.7.18"},
    {"name": "fastbook", "version": "0.0.29"},
    {"name": "pip", "version": "24.3.1"},
    {"name": "sentencepiece", "version": "0.2.0"},
    {"name": "Some_Tool", "version": "1.0"},
])


def full_rules(fake: Any, cj: Any, root: Path) -> None:
    fake.on("env", "export", "--from-history", out=export_json(root, HISTORY))
    fake.on("list", "--json", without=["env"], out=cj.list_json(snapshot_records(cj)))
    fake.on("-m", "pip", "list", "--not-required", out=PIP_NOT_REQUIRED)
    fake.on("env", "list", "--json", out=json.dumps({"envs": [
        str(root), str(root / "envs" / "tmp"), str(root / "envs" / "py39"), "/home/user/.conda/envs/elsewhere"]}))


def test_documentation_matches_argument_spec(cj: Any) -> None:
    assert cj.documentation_problems(conda_snapshot) == []


def test_snapshot_of_a_used_root_prefix(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    full_rules(fake, cj, root_prefix)
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed, result
    assert result["changed"] is False
    assert result["exists"] is True and result["reason"] == ""
    assert result["conda"] == ["fastai", "sentencepiece", "numpy[version='<2']"]
    assert result["unpinned_conda"] == ["fastai", "sentencepiece", "numpy"]
    assert result["pip"] == ["fastbook==0.0.29", "Some_Tool==1.0"]
    assert result["unpinned_pip"] == ["fastbook", "Some_Tool"]
    assert result["environments"] == ["py39", "tmp"]
    assert result["channels"] == ["conda-forge"]
    assert fake.find("export")[0] == [str(root_prefix / "bin" / "conda"), "env", "export", "--from-history",
                                      "--json", "-p", str(root_prefix)]
    pip_call = fake.calls.index(fake.find("pip", "list")[0])
    assert fake.calls[pip_call][0] == str(root_prefix / "bin" / "python")
    assert fake.kwargs[pip_call]["environ_update"] == {"PYTHONNOUSERSITE": "1"}
    assert cj.undocumented_keys(conda_snapshot, result) == []


def test_check_mode_gives_the_same_answer(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    full_rules(fake, cj, root_prefix)
    _failed, normal = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    _failed, checked = run_module(conda_snapshot, {"prefix": str(root_prefix)}, check_mode=True)
    assert checked["changed"] is False
    assert {k: v for k, v in checked.items() if k != "cmds"} == {k: v for k, v in normal.items() if k != "cmds"}


def test_stand_in_history_specs_as_written(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fake.on("env", "export", out=export_json(root_prefix, ["python<3.10", "fastcore", "numpy>=1.26,<2"]))
    fake.on("list", "--json", out=cj.list_json(cj.base_records()[:1]))
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix), "include_environments": False,
                                                 "exclude": []})
    assert not failed
    assert result["conda"] == ["python<3.10", "fastcore", "numpy>=1.26,<2"]
    assert result["unpinned_conda"] == ["python", "fastcore", "numpy"]
    assert result["pip"] == [] and result["environments"] == []
    assert not fake.find("env", "list"), "include_environments=false lists nothing"
    assert not fake.find("pip"), "no pip package in conda list: pip is not asked"


def test_custom_exclude(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    full_rules(fake, cj, root_prefix)
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix), "exclude": ["conda", "fastai",
                                                                                         "some-tool"]})
    assert not failed
    assert result["conda"] == ["python=3.12", "mamba", "pip", "sentencepiece", "numpy[version='<2']"]
    assert result["pip"] == ["fastbook==0.0.29"]


def test_missing_prefix(fake: Any, run_module: Any, tmp_path: Path) -> None:
    failed, result = run_module(conda_snapshot, {"prefix": str(tmp_path / "miniforge3")})
    assert not failed
    assert result["exists"] is False
    assert "does not exist" in result["reason"]
    assert result["conda"] == result["pip"] == result["environments"] == []
    assert result["unpinned_conda"] == result["unpinned_pip"] == []
    assert fake.calls == []


def test_half_installed_prefix(fake: Any, run_module: Any, tmp_path: Path) -> None:
    """An interrupted install leaves a Python but no conda and no conda-meta."""
    prefix = tmp_path / "miniforge3"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "python3").write_text("")
    failed, result = run_module(conda_snapshot, {"prefix": str(prefix)})
    assert not failed
    assert result["exists"] is False
    assert "conda-meta" in result["reason"]
    assert fake.calls == []


def test_prefix_without_conda_executable(fake: Any, run_module: Any, root_prefix: Path) -> None:
    (root_prefix / "bin" / "conda").unlink()
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed
    assert result["exists"] is False
    assert "no conda executable" in result["reason"]


def test_broken_conda(fake: Any, run_module: Any, root_prefix: Path) -> None:
    fake.on("env", "export", rc=1, err="ModuleNotFoundError: No module named 'conda'\n")
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed
    assert result["exists"] is False
    assert "ModuleNotFoundError" in result["reason"]
    assert result["conda"] == []


def test_pip_failure_is_a_warning(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fake.on("-m", "pip", "list", rc=1, err="/miniforge3/bin/python: No module named pip\n")
    full_rules(fake, cj, root_prefix)  # the failing pip rule above matches first
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed
    assert result["pip"] == []
    assert any("No module named pip" in w for w in get_warning_messages())
    assert result["conda"] == ["fastai", "sentencepiece", "numpy[version='<2']"]


def test_missing_python_skips_pip(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    (root_prefix / "bin" / "python").unlink()
    full_rules(fake, cj, root_prefix)
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed
    assert result["pip"] == []
    assert not fake.find("pip", "list")
    assert any("pip packages of" in w for w in get_warning_messages())


def test_conda_option_overrides_prefix_conda(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    condabin = root_prefix / "condabin" / "conda"
    condabin.parent.mkdir()
    condabin.write_text("#!/bin/sh\n")
    condabin.chmod(0o755)
    full_rules(fake, cj, root_prefix)
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix), "conda": str(condabin)})
    assert not failed
    assert {call[0] for call in fake.calls if "pip" not in call} == {str(condabin)}


def test_failure_after_conda_answered_fails(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    fake.on("env", "export", out=export_json(root_prefix, HISTORY))
    fake.on("list", "--json", rc=1, err="EnvironmentLocationNotFound: Not a conda environment\n")
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert failed
    assert str(root_prefix) in result["msg"]
    assert "EnvironmentLocationNotFound" in result["stderr"]
