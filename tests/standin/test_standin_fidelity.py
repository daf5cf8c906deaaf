"""The stand-in copies what the real installer, conda and mamba 2 do that reforge must survive.

Each test shows one behaviour of ../../molecule/shared/standin (REAL-CONDA.md
D1, D2, D4, D5): mamba 2's history form, -u/-f rewriting the history and
PREFIX/.condarc, mamba's MAMBA_ROOT_PREFIX and create -y, the installer's
`mkdir ~/.conda` under set -eu, and the switch that makes conda's export fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_standin_installer import Standin, history_entries, install


@pytest.fixture(scope="module")
def used(tmp_path_factory: pytest.TempPathFactory) -> Standin:
    """A prefix where the user ran mamba install, mamba update and conda install."""
    root = tmp_path_factory.mktemp("fidelity")
    home = root / "home"
    home.mkdir()
    prefix = root / "miniforge3"
    install(prefix, home)
    standin = Standin(prefix=prefix, home=home)
    standin.mamba("install", "-y", "-q", "numpy>=1,<2", "fastcore=1.5")
    standin.mamba("update", "-y", "-q", "fastcore")
    standin.conda("install", "-y", "-q", "sentencepiece")
    return standin


def test_mamba_writes_mamba2_history_and_conda_writes_conda_form(used: Standin) -> None:
    entries = history_entries(used.prefix)
    mamba_install, mamba_update, conda_install = entries[-3:]
    assert mamba_install[1].endswith("bin/mamba install -y -q numpy>=1,<2 fastcore=1.5")
    assert mamba_install[2] == "# conda version: 3.8.0"
    assert mamba_install[-1] == '# update specs: ["numpy[version=\\">=1,<2\\"]", "fastcore=1.5"]'
    # An update request puts its spec on the update and on the remove line.
    assert mamba_update[-2:] == ['# update specs: ["fastcore"]', '# remove specs: ["fastcore"]']
    assert conda_install[2] == "# conda version: 26.3.2"
    assert conda_install[-1] == "# update specs: ['sentencepiece']"
    # Replayed per request (remove, then update), the update keeps fastcore requested;
    # conda prints each spec in its own spelling.
    exported = used.conda_json("env", "export", "--from-history")["dependencies"]
    assert exported[-3:] == ["numpy[version='>=1,<2']", "fastcore", "sentencepiece"]


def test_export_drops_specs_of_packages_no_longer_installed(used: Standin, tmp_path: Path) -> None:
    env = tmp_path / "env"
    used.conda("create", "-y", "-q", "-p", str(env), "fastai")
    used.conda("remove", "-y", "-q", "-p", str(env), "fastcore")
    assert "fastai" not in used.listed("-p", str(env))
    # No request left: conda >= 25.7 falls back to the explicit list of what is installed.
    exported = used.conda_json("env", "export", "--from-history", "-p", str(env))["dependencies"]
    listed = used.listed("-p", str(env))
    assert sorted(exported) == sorted(f"{n}={e['version']}={e['build_string']}" for n, e in listed.items()
                                      if e["channel"] != "pypi")
    assert "tinydep=0.1.0=pyhd8ed1ab_0" in exported


def test_a_switch_makes_conda_env_export_fail_on_mambas_spec(used: Standin) -> None:
    failed = used.conda("env", "export", "--from-history", "--json", check=False, STANDIN_CONDA_CANNOT_PARSE="1")
    assert failed.returncode == 1
    error = json.loads(failed.stdout)
    assert error["exception_name"] == "InvalidMatchSpec"
    assert 'numpy[version=">=1,<2"]' in error["message"]
    # mamba reads its own form; without the switch conda does too.
    assert used.mamba("env", "export", "--from-history", "--json", STANDIN_CONDA_CANNOT_PARSE="1").returncode == 0
    assert used.conda("env", "export", "--from-history", "--json").returncode == 0


def test_u_and_f_replace_the_history_and_the_prefix_condarc(tmp_path: Path) -> None:
    prefix = tmp_path / "miniforge3"
    install(prefix, tmp_path)
    standin = Standin(prefix=prefix, home=tmp_path)
    installer_history = (prefix / "conda-meta" / "history").read_text()
    for flag, package in (("-u", "fastai"), ("-f", "sentencepiece")):
        standin.mamba("install", "-y", "-q", package)
        (prefix / ".condarc").write_text("channels:\n  - conda-forge\nchannel_priority: strict\n")

        install(prefix, tmp_path, flag)

        history = (prefix / "conda-meta" / "history").read_text()
        assert len(history_entries(prefix)) == 1 and package not in history, flag
        assert history.splitlines()[3:] == installer_history.splitlines()[3:], flag
        assert (prefix / ".condarc").read_text() == "channels:\n  - conda-forge\n", flag
        # The package stays installed; only the record of asking for it is gone.
        assert package in standin.listed(), flag
        assert package not in standin.conda_json("env", "export", "--from-history")["dependencies"], flag


def test_mamba_resolves_n_against_mamba_root_prefix(used: Standin, tmp_path: Path) -> None:
    other = tmp_path / "other-root"
    created = used.mamba("create", "-y", "-q", "-n", "side", "tinydep", MAMBA_ROOT_PREFIX=str(other))
    assert created.returncode == 0
    assert (other / "envs" / "side" / "conda-meta").is_dir()
    assert not (used.prefix / "envs" / "side").exists()
    # conda ignores the variable: it does not find the environment mamba made.
    missing = used.conda("list", "-n", "side", check=False, MAMBA_ROOT_PREFIX=str(other))
    assert missing.returncode == 1 and "EnvironmentNameNotFound" in missing.stderr


def test_mamba_create_y_over_an_existing_environment_recreates_it(used: Standin) -> None:
    env = used.prefix / "envs" / "again"
    used.mamba("create", "-y", "-q", "-n", "again", "fastcore")
    (env / "user-file").write_text("precious\n")
    used.mamba("create", "-y", "-q", "-n", "again", "tinydep")
    assert not (env / "user-file").exists()
    listed = used.listed("-n", "again")
    assert "tinydep" in listed and "fastcore" not in listed
    refused = used.conda("create", "-y", "-n", "again", "tinydep", check=False)
    assert refused.returncode == 1 and "already exists" in refused.stderr


def test_installer_aborts_on_a_dangling_conda_dir_link_or_a_conda_dir_file(tmp_path: Path) -> None:
    """mkdir ~/.conda under set -eu (constructor's header.sh); a linked directory that exists is fine
    (tests/standin/test_roles_on_standin.py installs through one)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".conda").symlink_to(tmp_path / "storage" / ".conda")
    result = install(tmp_path / "mf1", home, check=False)
    assert result.returncode != 0
    assert "mkdir" in result.stderr and ".conda" in result.stderr
    assert not (tmp_path / "mf1" / "conda-meta").exists()
    assert not (tmp_path / "storage").exists()

    (home / ".conda").unlink()
    (home / ".conda").write_text("not a directory\n")
    result = install(tmp_path / "mf2", home, check=False)
    assert result.returncode != 0 and not (tmp_path / "mf2" / "conda-meta").exists()
    assert (home / ".conda").read_text() == "not a directory\n"
