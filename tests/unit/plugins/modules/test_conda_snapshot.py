"""Unit tests of the conda_snapshot module.

The prefix is real files in tmp_path (conda-meta/*.json, conda-meta/history,
site-packages); only commands (conda's export, pip list) are answered by the
fake run_command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Sequence

from ansible_collections.reforge.workstation.plugins.modules import conda_snapshot

SITE = "lib/python3.13/site-packages"
INSTALLER_HISTORY = (
    "==> 2026-11-30 10:00:00 <==\n"
    "# cmd: constructor /tmp/build\n"
    "+conda-forge/linux-64::python-3.13.5-h1_cpython\n"
    "# update specs: ['python=3.13', \"conda[version='>=26.7.2']\", \"mamba[version='>=2.5.0']\", 'pip']\n"
)
# What mamba 2 writes for `mamba install fastai sentencepiece 'numpy<2' 'sam-2=1.0=cuda12*'`.
MAMBA_HISTORY = INSTALLER_HISTORY + (
    "==> 2026-11-30 11:00:00 <==\n"
    "# cmd: mamba install -y fastai sentencepiece numpy<2 sam-2=1.0=cuda12*\n"
    "# conda version: 3.8.0\n"
    "+conda-forge/noarch::fastai-2.7.18-pyhd8ed1ab_0\n"
    '# update specs: ["fastai", "sentencepiece", "numpy[version=\\"<2\\"]", '
    '"sam-2[version=\\"=1.0\\",build=\\"cuda12*\\"]"]\n'
)
EXPECTED_CONDA = ["fastai", "sentencepiece", 'numpy[version="<2"]', 'sam-2[version="=1.0",build="cuda12*"]']
# conda's answer when a history spec does not parse (conda/conda#15123).
CONDA_PARSE_ERROR = (
    "\nInvalidMatchSpec: Invalid spec 'sam-2[version=\"=1.0\",build=\"cuda12*\"]': "
    "Invalid version '=1.0': invalid operator\n\n"
)


def write_records(prefix: Path, packages: Dict[str, Sequence[str]]) -> None:
    """conda-meta/NAME-1.0-0.json for each package, owning the files given."""
    for name, files in packages.items():
        record = {"name": name, "version": "1.0", "build": "0", "files": list(files)}
        (prefix / "conda-meta" / ("%s-1.0-0.json" % name)).write_text(json.dumps(record))


def dist_info(prefix: Path, project: str, version: str, requires: Sequence[str] = ()) -> str:
    """A distribution in site-packages, as a wheel installs it; returns its METADATA relative to the prefix."""
    relative = "%s/%s-%s.dist-info" % (SITE, project.replace("-", "_"), version)
    (prefix / relative).mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", "Name: %s" % project, "Version: %s" % version, "Summary: -"]
    lines += ["Requires-Dist: %s" % requirement for requirement in requires]
    (prefix / relative / "METADATA").write_text("\n".join(lines) + "\n\nLong description.\n")
    return relative + "/METADATA"


def used_prefix(prefix: Path, history: str = MAMBA_HISTORY) -> None:
    """A Miniforge root after the user's mamba install, pip install fastbook Some_Tool (which brings timm)."""
    write_records(prefix, {
        "python": [],
        "pip": [dist_info(prefix, "pip", "24.3.1")],
        "conda": [], "mamba": [],
        "fastai": [dist_info(prefix, "fastai", "2.7.18")],
        "sentencepiece": [], "numpy": [], "sam-2": [],
    })
    dist_info(prefix, "fastbook", "0.0.29", ["fastai>=2.6", "graphviz", "ipywidgets", "sentencepiece"])
    dist_info(prefix, "Some_Tool", "1.0", ["timm>=1.0", 'pytest; extra == "test"'])
    dist_info(prefix, "timm", "1.0.12", ["torch", "pyyaml"])
    (prefix / "conda-meta" / "history").write_text(history)
    for env in ("tmp", "py39"):
        (prefix / "envs" / env / "conda-meta").mkdir(parents=True)
    (prefix / "envs" / "not-an-env").mkdir()


def export_json(prefix: Path, dependencies: List[str]) -> str:
    """`conda env export --from-history --json`."""
    return json.dumps({"channels": ["conda-forge"], "dependencies": dependencies, "name": "base",
                       "prefix": str(prefix)}, indent=2)


def test_snapshot_of_a_used_root_prefix(fake: Any, run_module: Any, cj: Any, root_prefix: Path) -> None:
    used_prefix(root_prefix)
    fake.on("env", "export", "--from-history", out=export_json(root_prefix, ["python=3.13", "fastai"]))
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed, result
    assert result["changed"] is False
    assert result["exists"] is True and result["unreadable"] is False and result["reason"] == ""
    assert result["conda"] == EXPECTED_CONDA
    assert result["unpinned_conda"] == ["fastai", "sentencepiece", "numpy", "sam-2"]
    assert result["pip"] == ["fastbook==0.0.29", "Some_Tool==1.0"]
    assert result["unpinned_pip"] == ["fastbook", "Some_Tool"]
    assert result["environments"] == ["py39", "tmp"]
    assert result["channels"] == ["conda-forge"]
    assert result["sources"] == ["history"] and result["unparsed"] == []
    assert fake.find("export")[0] == [str(root_prefix / "bin" / "conda"), "env", "export", "--from-history",
                                      "--json", "-p", str(root_prefix)]
    assert not fake.find("pip", "list"), "site-packages is read directly"
    assert all(kw["environ_update"]["MAMBA_ROOT_PREFIX"] == str(root_prefix) for kw in fake.kwargs)
    assert not fake.find("list", "--json"), "conda-meta and site-packages are read directly"
    assert cj.undocumented_keys(conda_snapshot, result) == []


def test_a_spec_conda_cannot_parse_does_not_empty_the_snapshot(fake: Any, run_module: Any,
                                                               root_prefix: Path) -> None:
    """conda/conda#15123: conda's export fails on a mamba-written spec; every request is still read."""
    used_prefix(root_prefix)
    fake.on("env", "export", rc=1, err=CONDA_PARSE_ERROR)
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed, result
    assert result["exists"] is True and result["unreadable"] is False
    assert result["conda"] == EXPECTED_CONDA
    assert result["pip"] == ["fastbook==0.0.29", "Some_Tool==1.0"]
    assert result["channels"] == []
    assert any("conda env export failed" in w and "InvalidMatchSpec" in w for w in result.get("warnings", []))


def test_a_json_error_from_conda_is_named_in_the_warning(fake: Any, run_module: Any, root_prefix: Path) -> None:
    used_prefix(root_prefix)
    fake.on("env", "export", rc=1, out=json.dumps({
        "exception_name": "InvalidMatchSpec",
        "message": "Invalid spec 'sam-2[version=\"=1.0\",build=\"cuda12*\"]': Invalid version '=1.0'\nmore"}))
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed
    assert result["conda"] == EXPECTED_CONDA
    assert any("(InvalidMatchSpec: Invalid spec 'sam-2" in w for w in result.get("warnings", []))


def test_only_installed_packages_are_kept(fake: Any, run_module: Any, root_prefix: Path) -> None:
    """A request for a package that is gone (removed as a dependent, or never linked) is not restored."""
    used_prefix(root_prefix, MAMBA_HISTORY + "# update specs: ['vanishedpkg']\n")
    fake.on("env", "export", out=export_json(root_prefix, ["vanishedpkg", "ghost"]))
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed
    assert result["conda"] == EXPECTED_CONDA
    assert "vanishedpkg" not in result["unpinned_conda"] and "ghost" not in result["unpinned_conda"]


def test_conda_export_is_a_second_opinion(fake: Any, run_module: Any, root_prefix: Path) -> None:
    used_prefix(root_prefix)
    write_records(root_prefix, {"tool": []})
    fake.on("env", "export", out=export_json(root_prefix, ["fastai", "tool>=2"]))
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed
    assert result["conda"] == EXPECTED_CONDA + ["tool>=2"]
    assert result["sources"] == ["history", "conda env export"]


def test_a_prefix_with_packages_but_no_readable_history_is_unreadable(fake: Any, run_module: Any,
                                                                      root_prefix: Path) -> None:
    used_prefix(root_prefix)
    (root_prefix / "conda-meta" / "history").unlink()
    fake.on("env", "export", rc=1, err=CONDA_PARSE_ERROR)
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed
    assert result["exists"] is True
    assert result["unreadable"] is True
    assert "8 installed packages" in result["reason"] and "history does not exist" in result["reason"]
    assert result["conda"] == []
    # pip's part does not depend on the history.
    assert result["pip"] == ["fastbook==0.0.29", "Some_Tool==1.0"]


def test_a_garbled_history_is_unreadable_and_its_lines_are_named(fake: Any, run_module: Any,
                                                                 root_prefix: Path) -> None:
    used_prefix(root_prefix, "==> 2026 <==\n# update specs: [\"fastai\n\x00\xff garbage\n")
    fake.on("env", "export", rc=1, err="CondaHistoryError\n")
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed
    assert result["unreadable"] is True
    assert result["unparsed"] == ['# update specs: ["fastai']
    assert "1 unreadable spec lines" in result["reason"]
    assert any("Skipped an unreadable line" in w for w in result.get("warnings", []))


def test_an_empty_environment_is_not_unreadable(fake: Any, run_module: Any, tmp_path: Path, make_env: Any) -> None:
    env = make_env(tmp_path / "tools")
    failed, result = run_module(conda_snapshot, {"prefix": str(env), "conda": str(tmp_path / "no" / "conda")})
    assert not failed
    assert result["exists"] is True and result["unreadable"] is False
    assert result["conda"] == [] and fake.calls == []


def test_works_without_a_conda_executable(fake: Any, run_module: Any, root_prefix: Path) -> None:
    used_prefix(root_prefix)
    (root_prefix / "bin" / "conda").unlink()
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed
    assert result["exists"] is True
    assert result["conda"] == EXPECTED_CONDA
    assert not fake.find("export")


def test_a_broken_record_still_names_its_package(fake: Any, run_module: Any, root_prefix: Path) -> None:
    used_prefix(root_prefix)
    (root_prefix / "conda-meta" / "sentencepiece-1.0-0.json").write_text("{not json")
    fake.on("env", "export", out=export_json(root_prefix, []))
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed
    assert "sentencepiece" in result["unpinned_conda"]
    assert any("sentencepiece-1.0-0.json is not valid JSON" in w for w in result.get("warnings", []))


def test_check_mode_gives_the_same_answer(fake: Any, run_module: Any, root_prefix: Path) -> None:
    used_prefix(root_prefix)
    fake.on("env", "export", out=export_json(root_prefix, []))
    _failed, normal = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    _failed, checked = run_module(conda_snapshot, {"prefix": str(root_prefix)}, check_mode=True)
    assert checked["changed"] is False
    assert {k: v for k, v in checked.items() if k != "cmds"} == {k: v for k, v in normal.items() if k != "cmds"}


def test_custom_exclude_and_no_environments(fake: Any, run_module: Any, root_prefix: Path) -> None:
    used_prefix(root_prefix)
    fake.on("env", "export", out=export_json(root_prefix, []))
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix), "include_environments": False,
                                                 "exclude": ["conda", "fastai", "some-tool"]})
    assert not failed
    assert result["conda"] == ["python=3.13", "mamba[version='>=2.5.0']", "pip", "sentencepiece",
                               'numpy[version="<2"]', 'sam-2[version="=1.0",build="cuda12*"]']
    assert result["pip"] == ["fastbook==0.0.29"]
    assert result["environments"] == []


def test_no_pip_package_means_pip_is_not_asked(fake: Any, run_module: Any, root_prefix: Path) -> None:
    write_records(root_prefix, {"python": [], "pip": [dist_info(root_prefix, "pip", "24.3.1")]})
    (root_prefix / "conda-meta" / "history").write_text(INSTALLER_HISTORY)
    fake.on("env", "export", out=export_json(root_prefix, []))
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix), "exclude": []})
    assert not failed
    assert result["conda"] == ["python=3.13", "pip"]
    assert result["pip"] == []
    assert not fake.find("pip")


def test_missing_prefix(fake: Any, run_module: Any, tmp_path: Path) -> None:
    failed, result = run_module(conda_snapshot, {"prefix": str(tmp_path / "miniforge3")})
    assert not failed
    assert result["exists"] is False and result["unreadable"] is False
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


def test_an_unreadable_marker_keeps_what_it_guards_and_warns(fake: Any, run_module: Any, root_prefix: Path) -> None:
    used_prefix(root_prefix)
    dist_info(root_prefix, "needs-odd", "1.0", ['odd-dep; weird_variable == "x"', 'plain-dep; python_version >= "3.8"'])
    dist_info(root_prefix, "odd-dep", "2.0")
    dist_info(root_prefix, "plain_dep", "3.0")
    fake.on("env", "export", out=export_json(root_prefix, []))
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed
    assert result["pip"] == ["fastbook==0.0.29", "needs-odd==1.0", "odd-dep==2.0", "Some_Tool==1.0"]
    assert any("weird_variable" in w and "kept in the snapshot" in w for w in result.get("warnings", []))


def test_the_pip_part_runs_neither_pip_nor_python(fake: Any, run_module: Any, root_prefix: Path) -> None:
    """site-packages is read directly: a prefix whose Python is broken still has its pip part recorded."""
    used_prefix(root_prefix)
    (root_prefix / "bin" / "python").unlink()
    fake.on("env", "export", out=export_json(root_prefix, []))
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed
    assert result["pip"] == ["fastbook==0.0.29", "Some_Tool==1.0"]
    assert not fake.find("pip") and not fake.find("-m")


def test_conda_option_overrides_prefix_conda(fake: Any, run_module: Any, root_prefix: Path) -> None:
    condabin = root_prefix / "condabin" / "conda"
    condabin.parent.mkdir()
    condabin.write_text("#!/bin/sh\n")
    condabin.chmod(0o755)
    used_prefix(root_prefix)
    fake.on("env", "export", out=export_json(root_prefix, []))
    failed, _result = run_module(conda_snapshot, {"prefix": str(root_prefix), "conda": str(condabin)})
    assert not failed
    assert fake.find("export")[0][0] == str(condabin)


# What `pip install python-fasthtml colorama typing-extensions` leaves (the
# Requires-Dist lines are the real packages', trimmed). `pip list --not-required`
# counts no requirement that has an extra marker, so to it uvicorn[standard]'s
# httptools, uvloop, ... look like user installs.
FASTHTML_DISTS = {
    "python-fasthtml": ("0.12.0", ["fastcore>=1.8.1", "uvicorn[standard]>=0.30", "starlette>0.33",
                                   "httpx", "itsdangerous"]),
    "uvicorn": ("0.34.0", [
        "click>=7.0", "h11>=0.8", 'typing-extensions>=4.0; python_version < "3.11"',
        'colorama>=0.4; sys_platform == "win32" and extra == "standard"',
        'httptools>=0.6.3; extra == "standard"',
        'python-dotenv>=0.13; extra == "standard"',
        'pyyaml>=5.1; extra == "standard"',
        'uvloop!=0.15.0,!=0.15.1,>=0.14.0; (sys_platform != "win32" and (sys_platform != "cygwin" and '
        'platform_python_implementation != "PyPy")) and extra == "standard"',
        'watchfiles>=0.13; extra == "standard"',
        'websockets>=10.4; extra == "standard"']),
    "starlette": ("0.45.3", ["anyio<5,>=3.6.2", 'httpx<0.29.0,>=0.27.0; extra == "full"']),
    "httpx": ("0.28.1", ["anyio", "certifi", "httpcore==1.*", "idna",
                         'h2<5,>=3; extra == "http2"', 'socksio==1.*; extra == "socks"']),
    "httptools": ("0.6.4", []), "uvloop": ("0.21.0", []), "python-dotenv": ("1.0.1", []),
    "PyYAML": ("6.0.2", []), "watchfiles": ("1.0.4", ["anyio>=3.0.0"]), "websockets": ("14.2", []),
    "click": ("8.1.8", []), "h11": ("0.14.0", []), "anyio": ("4.8.0", ["idna>=2.8", "sniffio>=1.1"]),
    "sniffio": ("1.3.1", []), "idna": ("3.10", []), "certifi": ("2025.1.31", []),
    "httpcore": ("1.0.7", ["certifi", "h11<0.15,>=0.13"]), "itsdangerous": ("2.2.0", []),
    # Asked for by the user; uvicorn wants it only on Windows, Python < 3.11.
    "colorama": ("0.4.6", []), "typing_extensions": ("4.12.2", []),
    # Not installed, asked for through an extra nobody uses: h2, socksio.
}


def test_packages_an_extra_pulled_in_are_not_user_installs(fake: Any, run_module: Any, root_prefix: Path) -> None:
    """Issue 10: uvicorn[standard]'s httptools, uvloop, ... came with python-fasthtml; only it is recorded."""
    used_prefix(root_prefix)
    write_records(root_prefix, {"fastcore": [dist_info(root_prefix, "fastcore", "1.8.1", ["packaging"])]})
    for project, (version, requires) in FASTHTML_DISTS.items():
        dist_info(root_prefix, project, version, requires)
    fake.on("env", "export", out=export_json(root_prefix, []))
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed, result
    assert result["pip"] == ["colorama==0.4.6", "fastbook==0.0.29", "python-fasthtml==0.12.0", "Some_Tool==1.0",
                             "typing_extensions==4.12.2"]
    assert not any("marker" in w for w in result.get("warnings", []))


def test_a_circle_of_user_installs_is_kept(fake: Any, run_module: Any, root_prefix: Path) -> None:
    """Nothing outside the circle requires them, so dropping both (as pip list --not-required does) loses them."""
    used_prefix(root_prefix)
    dist_info(root_prefix, "circle-a", "1.0", ["circle-b"])
    dist_info(root_prefix, "circle_b", "1.0", ["Circle.A>=1", "needed-by-circle"])
    dist_info(root_prefix, "needed-by-circle", "1.0")
    # A circle hanging off a user install is reached from it: not recorded.
    dist_info(root_prefix, "hangs-a", "1.0", ["hangs-b"])
    dist_info(root_prefix, "hangs-b", "1.0", ["hangs-a"])
    dist_info(root_prefix, "Some_Tool", "1.1", ["timm", "hangs-a"])
    fake.on("env", "export", out=export_json(root_prefix, []))
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed
    assert result["pip"] == ["circle-a==1.0", "circle_b==1.0", "fastbook==0.0.29", "Some_Tool==1.0"]


# conda >= 25.7's export (REAL-CONDA.md D10) ---------------------------------------
def test_conda_env_form_specs_of_conda_25_7_are_read(fake: Any, run_module: Any, root_prefix: Path) -> None:
    """conda_env_form(): no channel, the first '==' becomes '=', brackets stay."""
    used_prefix(root_prefix, INSTALLER_HISTORY)
    write_records(root_prefix, {"tool": []})
    fake.on("env", "export", out=export_json(root_prefix, [
        "python=3.13", "conda[version='>=26.7.2']", "fastai", "numpy=1.26.4", "tool[version='>=2']"]))
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed, result
    assert result["unpinned_conda"] == ["fastai", "numpy", "tool"]
    assert "numpy=1.26.4" in result["conda"]


def test_the_explicit_fallback_of_conda_25_7_keeps_only_what_nothing_needs(fake: Any, run_module: Any,
                                                                           raised: Any, root_prefix: Path) -> None:
    """With no request in the history, conda >= 25.7 exports every installed package with its build:
    those are not requests. What no other installed package depends on is kept."""
    depends = {"python": [], "pip": ["python >=3.8"], "conda": ["python", "openssl"], "mamba": [],
               "openssl": ["ca-certificates"], "ca-certificates": [], "fastai": ["fastcore >=1.5", "tinydep"],
               "fastcore": ["python"], "tinydep": ["python"]}
    for name, deps in depends.items():
        record = {"name": name, "version": "1.0", "build": "0", "files": [], "depends": deps}
        (root_prefix / "conda-meta" / ("%s-1.0-0.json" % name)).write_text(json.dumps(record))
    (root_prefix / "conda-meta" / "history").write_text("")
    fake.on("env", "export", out=export_json(root_prefix, ["%s=1.0=0" % name for name in sorted(depends)]))
    failed, result = run_module(conda_snapshot, {"prefix": str(root_prefix)})
    assert not failed, result
    assert result["unpinned_conda"] == ["fastai"]
    assert result["unreadable"] is False
    assert result["sources"] == ["conda env export (explicit list: packages nothing else needs)"]
    assert any("listed every installed package" in warning for warning in raised["warnings"])
