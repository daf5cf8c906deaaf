"""Tests of the stand-in Miniforge3 installer and its conda / mamba front ends.

They check the contract in molecule/shared/standin/README.md against the real
resulting state: files in the prefix, conda-meta records, the history file,
rc files byte for byte, and what a new login shell really resolves. Every
command runs with HOME inside pytest's tmp_path and without the caller's
conda / mamba variables.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

STANDIN = Path(__file__).resolve().parents[2] / "molecule" / "shared" / "standin" / "Miniforge3-standin.sh"
DROPPED_PREFIXES = ("CONDA", "_CE_", "MAMBA", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "PS1", "ZDOTDIR")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without conda state, with HOME moved to HOME."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(DROPPED_PREFIXES)}
    env["HOME"] = str(home)
    env.update(extra)
    return env


def run(args: list[str], home: Path, check: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, env=clean_env(home, **extra), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def install(
    prefix: Path, home: Path, *flags: str, check: bool = True, **extra: str
) -> subprocess.CompletedProcess[str]:
    return run(["bash", str(STANDIN), "-b", "-p", str(prefix), *flags], home, check=check, **extra)


@dataclass
class Standin:
    """An installed stand-in prefix and a helper to call its front ends."""

    prefix: Path
    home: Path

    def conda(
        self, *args: str, home: Path | None = None, check: bool = True, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return run([str(self.prefix / "bin" / "conda"), *args], home or self.home, check=check, **extra)

    def mamba(
        self, *args: str, home: Path | None = None, check: bool = True, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return run([str(self.prefix / "bin" / "mamba"), *args], home or self.home, check=check, **extra)

    def conda_json(self, *args: str, home: Path | None = None) -> Any:
        return json.loads(self.conda(*args, "--json", home=home).stdout)

    def mamba_json(self, *args: str, home: Path | None = None) -> Any:
        return json.loads(self.mamba(*args, "--json", home=home).stdout)

    def listed(self, *args: str) -> dict[str, dict[str, Any]]:
        return {entry["name"]: entry for entry in self.conda_json("list", *args)}


@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Standin:
    """One batch install shared by the tests that only add to it or use their own HOME."""
    root = tmp_path_factory.mktemp("standin")
    home = root / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# user's bashrc\nexport EDITOR=vi\n")
    prefix = root / "miniforge3"
    install(prefix, home)
    return Standin(prefix=prefix, home=home)


SOLVER_ERROR_NOSUCHPKG = (
    "error    libmamba Could not solve for environment specs\n"
    "    The following package could not be installed\n"
    "    └─ nosuchpkg =* * does not exist (perhaps a typo or a missing channel).\n"
    "critical libmamba Could not solve for environment specs\n"
)
HISTORY_HEADER = re.compile(r"^==> \d{4}-\d\d-\d\d \d\d:\d\d:\d\d <==$")


def tree(path: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under PATH with its mtime and content."""
    return {
        str(item.relative_to(path)): (item.stat().st_mtime_ns, item.read_bytes())
        for item in sorted(path.rglob("*"))
        if item.is_file()
    }


def history_entries(prefix: Path) -> list[list[str]]:
    entries: list[list[str]] = []
    for line in (prefix / "conda-meta" / "history").read_text().splitlines():
        if HISTORY_HEADER.match(line):
            entries.append([])
        entries[-1].append(line)
    return entries


def names(records: list[dict[str, object]]) -> set[object]:
    return {record["name"] for record in records}


# --------------------------------------------------------------------------
# The installer
# --------------------------------------------------------------------------


def test_batch_install_builds_the_prefix(standin: Standin) -> None:
    prefix = standin.prefix
    for path in ("bin/conda", "bin/mamba", "condabin/conda"):
        script = prefix / path
        assert os.access(script, os.X_OK), path
        assert script.read_text().splitlines()[0] == f"#!{prefix}/bin/python"
    for path in ("etc/profile.d/conda.sh", "etc/profile.d/mamba.sh", "conda-meta/history"):
        assert (prefix / path).is_file(), path
    assert (prefix / "pkgs").is_dir()
    assert (prefix / ".condarc").read_text() == "channels:\n  - conda-forge\n"
    records = {json.loads(p.read_text())["name"]: p.name for p in (prefix / "conda-meta").glob("*.json")}
    assert {"python", "pip", "conda", "mamba"} <= set(records)
    assert records["conda"] == next(iter((prefix / "conda-meta").glob("conda-26.3.2-*.json"))).name
    # A real interpreter with a real pip.
    probe = run([str(prefix / "bin" / "python"), "-c", "import sys, pip; print(sys.prefix)"], standin.home)
    assert probe.stdout.strip() == str(prefix)
    python_version = run(
        [str(prefix / "bin" / "python"), "-c", "import platform; print(platform.python_version())"], standin.home
    ).stdout.strip()
    assert standin.listed()["python"]["version"] == python_version
    assert standin.conda("--version").stdout == "conda 26.3.2\n"
    assert standin.mamba("--version").stdout == "2.5.0\n"
    # The first history entry is the installer's, written by constructor at build time (D14):
    # no `# conda version` line, and Miniforge 26.3.2-3's requested specs.
    first = history_entries(prefix)[0]
    assert first[1] == "# cmd: constructor Miniforge3/ --output-dir build"
    assert not any(line.startswith("# conda version") for line in first)
    assert f"+conda-forge/noarch::pip-{standin.listed()['pip']['version']}-pyh8b19718_2" in first
    assert first[-1] == "# update specs: ['python=3.13', \"conda[version='>=26.3.2']\", \"mamba[version='>=2.5.0']\", 'pip']"
    # Miniforge's standalone is micromamba, and _conda a link to it (D14).
    assert (prefix / "micromamba").is_file() and os.readlink(prefix / "_conda") == str(prefix / "micromamba")
    # A batch install changes no shell rc file.
    assert (standin.home / ".bashrc").read_text() == "# user's bashrc\nexport EDITOR=vi\n"
    assert not (standin.home / ".zshrc").exists()


def test_front_end_is_the_shipped_package(standin: Standin) -> None:
    """bin/conda, bin/mamba and condabin/conda are one launcher of the conda_standin sources, unchanged."""
    prefix = standin.prefix
    sources = STANDIN.parent / "conda_standin"
    shipped = prefix / "lib" / "conda-standin" / "conda_standin"
    standin.conda("info", "--json")  # the front end has run: it must not have written into the prefix
    assert sorted(path.name for path in shipped.iterdir()) == sorted(path.name for path in sources.glob("*.py"))
    for path in sources.glob("*.py"):
        assert (shipped / path.name).read_bytes() == path.read_bytes(), path.name
    launchers = {(prefix / path).read_bytes() for path in ("bin/conda", "bin/mamba", "condabin/conda")}
    assert len(launchers) == 1
    assert f"STANDIN_ROOT_PREFIX = {str(prefix)!r}\n".encode() in launchers.pop()


def test_existing_prefix_is_refused_and_left_untouched(tmp_path: Path) -> None:
    prefix = tmp_path / "miniforge3"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "keep").write_text("precious\n")
    before = tree(prefix)
    result = install(prefix, tmp_path, check=False)
    assert result.returncode == 1
    assert f"ERROR: File or directory already exists: '{prefix}'" in result.stderr
    assert "use the -u option" in result.stderr
    assert tree(prefix) == before
    assert sorted(p.name for p in prefix.iterdir()) == ["bin"]


def test_batch_mode_is_required(tmp_path: Path) -> None:
    result = run(["bash", str(STANDIN), "-p", str(tmp_path / "mf")], tmp_path, check=False)
    assert result.returncode == 1
    assert "-b" in result.stderr
    assert not (tmp_path / "mf").exists()


def test_interrupted_install_is_repaired_with_u(tmp_path: Path) -> None:
    prefix = tmp_path / "miniforge3"
    interrupted = install(prefix, tmp_path, check=False, STANDIN_INTERRUPT_AFTER_PYTHON="1")
    assert interrupted.returncode == 1
    assert (prefix / "bin" / "python").exists()
    assert not (prefix / "bin" / "conda").exists()
    assert not (prefix / "conda-meta").exists()

    refused = install(prefix, tmp_path, check=False)
    assert refused.returncode == 1
    assert not (prefix / "bin" / "conda").exists()

    install(prefix, tmp_path, "-u")
    repaired = Standin(prefix=prefix, home=tmp_path)
    assert {"python", "pip", "conda", "mamba"} <= set(repaired.listed())
    assert len(history_entries(prefix)) == 1
    # A second -u leaves the records alone and rewrites the same installer history.
    records_before = {k: v for k, v in tree(prefix / "conda-meta").items() if k != "history"}
    history_before = (prefix / "conda-meta" / "history").read_bytes()
    install(prefix, tmp_path, "-u")
    assert {k: v for k, v in tree(prefix / "conda-meta").items() if k != "history"} == records_before
    assert (prefix / "conda-meta" / "history").read_bytes() == history_before


# --------------------------------------------------------------------------
# Packages in the base environment
# --------------------------------------------------------------------------


def test_install_update_remove_with_json_and_history(standin: Standin) -> None:
    python = str(standin.prefix / "bin" / "python")
    installed = standin.mamba_json("install", "-y", "fastai")
    assert installed["success"] is True and installed["dry_run"] is False
    assert installed["actions"]["PREFIX"] == str(standin.prefix)
    assert names(installed["actions"]["LINK"]) == {"fastai", "fastcore", "tinydep"}
    link = {entry["name"]: entry for entry in installed["actions"]["LINK"]}
    assert link["fastcore"]["version"] == "1.7.1"
    # mamba 2's --json: libmamba PackageInfo entries, not conda's list records (no dist_name).
    assert "dist_name" not in link["fastai"]
    assert {"name", "version", "build", "build_string", "channel", "subdir", "fn", "depends"} <= set(link["fastai"])
    imported = run(
        [python, "-c", "import fastai, fastcore; print(fastai.__version__, fastcore.__version__)"], standin.home
    )
    assert imported.stdout.split() == ["2.7.18", "1.7.1"]

    again = standin.mamba_json("install", "-y", "fastai")
    assert again == {"message": "All requested packages already installed", "success": True}

    # conda (not mamba) also updates the aggressive_update_packages and, in base, itself.
    conda_dry = standin.conda_json("install", "-y", "--dry-run", "fastcore=1.5")
    assert names(conda_dry["actions"]["LINK"]) == {"fastcore", "openssl", "ca-certificates", "conda"}
    mamba_dry = standin.mamba_json("install", "-y", "--dry-run", "fastcore=1.5")
    assert names(mamba_dry["actions"]["LINK"]) == {"fastcore"}
    assert standin.conda_json("install", "-y", "--dry-run", "-S", "fastai") == {
        "message": "All requested packages already installed.",
        "success": True,
    }
    mamba_like = {"CONDA_AGGRESSIVE_UPDATE_PACKAGES": "", "CONDA_AUTO_UPDATE_CONDA": "false"}
    downgraded = json.loads(standin.conda("install", "-y", "--json", "fastcore=1.5", **mamba_like).stdout)
    assert [e["dist_name"] for e in downgraded["actions"]["UNLINK"]] == ["fastcore-1.7.1-pyhd8ed1ab_0"]
    assert [e["dist_name"] for e in downgraded["actions"]["LINK"]] == ["fastcore-1.5.29-pyhd8ed1ab_0"]
    assert standin.listed()["fastcore"]["version"] == "1.5.29"

    dry = standin.conda_json("update", "-y", "--dry-run", "fastcore")
    assert dry["dry_run"] is True
    assert {e["name"]: e["version"] for e in dry["actions"]["LINK"]}["fastcore"] == "1.7.1"
    assert standin.listed()["fastcore"]["version"] == "1.5.29"

    updated = standin.mamba_json("update", "-y", "fastcore")
    assert [e["version"] for e in updated["actions"]["LINK"]] == ["1.7.1"]

    removed = standin.conda_json("remove", "-y", "fastcore")
    assert names(removed["actions"]["UNLINK"]) == {"fastcore", "fastai"}
    assert removed["actions"]["LINK"] == []
    listed = standin.listed()
    assert "fastcore" not in listed and "fastai" not in listed and "tinydep" in listed
    site_packages = Path(
        run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], standin.home).stdout.strip()
    )
    assert not (site_packages / "fastcore").exists()
    assert not list(site_packages.glob("fastai-*.dist-info"))
    standin.conda("remove", "-y", "-q", "tinydep")

    missing = standin.conda("remove", "-y", "--json", "fastcore", check=False)
    assert missing.returncode == 1
    error = json.loads(missing.stdout)
    assert error["exception_name"] == "PackagesNotFoundError"
    assert error["packages"] == ["fastcore"]
    assert "PackagesNotFoundError" in standin.conda("remove", "-y", "nosuchpkg", check=False).stderr

    # History: conda's format, replayed by env export --from-history.
    entries = history_entries(standin.prefix)
    install_entry = next(e for e in entries if e[1].endswith("install -y fastai --json"))
    assert install_entry[1] == f"# cmd: {standin.prefix}/bin/mamba install -y fastai --json"
    assert install_entry[3:] == [
        "+conda-forge/noarch::fastai-2.7.18-pyhd8ed1ab_0",
        "+conda-forge/noarch::fastcore-1.7.1-pyhd8ed1ab_0",
        "+conda-forge/noarch::tinydep-0.1.0-pyhd8ed1ab_0",
        '# update specs: ["fastai"]',
    ]
    downgrade_entry = next(e for e in entries if "fastcore=1.5" in e[1])
    assert downgrade_entry[3:] == [
        "-conda-forge/noarch::fastcore-1.7.1-pyhd8ed1ab_0",
        "+conda-forge/noarch::fastcore-1.5.29-pyhd8ed1ab_0",
        "# update specs: ['fastcore=1.5']",
    ]
    remove_entry = next(e for e in entries if e[1].endswith("remove -y fastcore --json"))  # conda: no pruning
    assert remove_entry[3:] == [
        "-conda-forge/noarch::fastai-2.7.18-pyhd8ed1ab_0",
        "-conda-forge/noarch::fastcore-1.7.1-pyhd8ed1ab_0",
        "# remove specs: ['fastcore']",
    ]
    exported = standin.conda_json("env", "export", "--from-history")
    assert exported["name"] == "base"
    assert exported["prefix"] == str(standin.prefix)
    assert exported["channels"] == ["conda-forge"]
    # fastai went with fastcore: a spec whose package is gone is not exported, as in real conda.
    assert "fastai" not in exported["dependencies"]
    assert "fastcore=1.5" not in exported["dependencies"] and "tinydep" not in exported["dependencies"]
    assert exported["dependencies"][:4] == ["python=3.13", "conda[version='>=26.3.2']", "mamba[version='>=2.5.0']", "pip"]


def test_solver_errors_are_text_from_mamba_and_json_on_stdout_from_conda(standin: Standin) -> None:
    before = tree(standin.prefix / "conda-meta")
    unknown = standin.mamba("install", "-y", "--json", "nosuchpkg", check=False)
    assert (unknown.returncode, unknown.stdout, unknown.stderr) == (1, "", SOLVER_ERROR_NOSUCHPKG)
    no_version = standin.conda("install", "-y", "--json", "numpy>=3", check=False)
    assert no_version.returncode == 1 and no_version.stderr == ""
    error = json.loads(no_version.stdout)
    assert error["exception_name"] == "PackagesNotFoundError"
    assert error["packages"] == ["numpy[version='>=3']"]
    assert "numpy >=3 * does not exist" in standin.conda("install", "-y", "numpy>=3", check=False).stderr
    # A requested older Python is a downgrade, not a conflict (D8).
    older = standin.mamba_json("install", "-y", "--dry-run", "python<3.10")
    assert {e["name"]: e["version"] for e in older["actions"]["LINK"]}["python"] == "3.9.20"
    assert tree(standin.prefix / "conda-meta") == before


def test_pip_installed_package_is_listed_as_pypi(standin: Standin, tmp_path: Path) -> None:
    wheel = tmp_path / "tinypip-0.3.0-py3-none-any.whl"
    files = {
        "tinypip/__init__.py": "__version__ = '0.3.0'\n",
        "tinypip-0.3.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypip\nVersion: 0.3.0\n",
        "tinypip-0.3.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(text)}")
        archive.writestr("tinypip-0.3.0.dist-info/RECORD", "\n".join(record) + "\ntinypip-0.3.0.dist-info/RECORD,,\n")
    pip = str(standin.prefix / "bin" / "pip")
    run([pip, "install", "-q", "--no-index", "--disable-pip-version-check", str(wheel)], standin.home)
    try:
        listed = standin.listed()
        assert listed["tinypip"] == {
            "base_url": listed["tinypip"]["base_url"],
            "build_number": 0,
            "build_string": "pypi_0",
            "channel": "pypi",
            "dist_name": "tinypip-0.3.0-pypi_0",
            "name": "tinypip",
            "platform": "pypi",
            "version": "0.3.0",
        }
        assert listed["pip"]["channel"] == "conda-forge"
        # The product's query: pip packages nothing requires, minus what conda owns.
        not_required = json.loads(
            run([pip, "list", "--not-required", "--format=json", "--disable-pip-version-check"], standin.home).stdout
        )
        pypi_only = {p["name"] for p in not_required if listed.get(p["name"], {}).get("channel") == "pypi"}
        assert pypi_only == {"tinypip"}
    finally:
        run([pip, "uninstall", "-q", "-y", "tinypip"], standin.home)
    assert "tinypip" not in standin.listed()


# --------------------------------------------------------------------------
# Side environments
# --------------------------------------------------------------------------


def test_named_environment_create_export_remove(standin: Standin, tmp_path: Path) -> None:
    home = tmp_path
    created = standin.mamba_json("create", "-y", "-n", "side", "python<3.10", "fastcore", home=home)
    env = standin.prefix / "envs" / "side"
    assert created["success"] is True and created["actions"]["PREFIX"] == str(env)
    assert {"python", "pip", "fastcore"} <= names(created["actions"]["LINK"])
    listed = standin.listed("-n", "side")
    assert listed["python"]["version"].startswith("3.9.")
    assert listed["fastcore"]["version"] == "1.7.1"
    assert all(entry["channel"] == "conda-forge" for entry in listed.values())
    probe = run([str(env / "bin" / "python"), "-c", "import sys, pip, fastcore; print(sys.prefix)"], home)
    assert probe.stdout.strip() == str(env)
    assert standin.conda_json("env", "list", home=home)["envs"] == [str(standin.prefix), str(env)]
    assert standin.conda_json("info", home=home)["envs"] == [str(standin.prefix), str(env)]

    exported = standin.conda_json("env", "export", "--from-history", "-n", "side", home=home)
    assert exported == {
        "name": "side",
        "channels": ["conda-forge"],
        "dependencies": ["python[version='<3.10']", "fastcore"],
        "prefix": str(env),
    }
    history = (env / "conda-meta" / "history").read_text()
    assert '# update specs: ["python[version=\\"<3.10\\"]", "fastcore"]\n' in history

    again = standin.conda("create", "-y", "-n", "side", "fastcore", home=home, check=False)
    assert again.returncode == 1 and "already exists" in again.stderr

    standin.conda("env", "remove", "-y", "-n", "side", home=home)
    assert not env.exists()
    assert standin.conda_json("env", "list", home=home)["envs"] == [str(standin.prefix)]

    empty = tmp_path / "empty-env"
    standin.conda("create", "-y", "-q", "-p", str(empty), home=home)
    assert (empty / "conda-meta" / "history").is_file()
    assert str(empty) in standin.conda_json("env", "list", home=home)["envs"]
    standin.conda("remove", "--all", "-y", "-p", str(empty), home=home)
    assert not empty.exists()
    assert standin.conda_json("env", "list", home=home)["envs"] == [str(standin.prefix)]


def test_install_into_empty_env_run_and_update_all(standin: Standin, tmp_path: Path) -> None:
    home = tmp_path
    env = tmp_path / "tools"
    standin.conda("create", "-y", "-q", "-p", str(env), home=home)
    assert standin.listed("-p", str(env)) == {}
    assert not (env / "bin").exists()
    standin.mamba("install", "-y", "-q", "-p", str(env), "numpy<2", "sentencepiece", home=home)
    listed = standin.listed("-p", str(env))
    assert {"python", "pip", "numpy", "sentencepiece"} <= set(listed)
    assert listed["numpy"]["version"] == "1.26.4"
    xy = "".join(listed["python"]["version"].split(".")[:2])
    assert listed["numpy"]["build_string"].startswith(f"py{xy}h")
    ran = standin.conda(
        "run",
        "-p",
        str(env),
        "python",
        "-c",
        "import os, sys, numpy; print(sys.prefix, numpy.__version__, os.environ['CONDA_PREFIX'])",
        home=home,
    )
    assert ran.stdout.split() == [str(env), "1.26.4", str(env)]
    updated = standin.conda_json("update", "--all", "-y", "-p", str(env), home=home)
    assert [(e["name"], e["version"]) for e in updated["actions"]["LINK"]] == [("numpy", "2.1.3")]
    assert [(e["name"], e["version"]) for e in updated["actions"]["UNLINK"]] == [("numpy", "1.26.4")]
    assert standin.conda_json("env", "export", "--from-history", "-p", str(env), home=home)["dependencies"] == [
        "numpy[version='<2']",
        "sentencepiece",
    ]


# --------------------------------------------------------------------------
# Shell integration
# --------------------------------------------------------------------------


def test_init_and_reverse_edit_the_rc_file_like_conda(standin: Standin, tmp_path: Path) -> None:
    """conda init appends "\n" + block + "\n"; --reverse removes the block and the whitespace before it."""
    home = tmp_path
    original = b"# no trailing newline\r\nalias ll='ls -l'\n\n\xe9\nexport X=1"
    bashrc = home / ".bashrc"
    bashrc.write_bytes(original)

    dry = standin.conda("init", "--dry-run", "bash", home=home).stdout
    assert f"modified      {bashrc}\n" in dry
    assert bashrc.read_bytes() == original

    assert f"modified      {bashrc}\n" in standin.conda("init", "bash", home=home).stdout
    text = bashrc.read_bytes()
    assert text.startswith(original + b"\n# >>> conda initialize >>>\n")
    assert f"'{standin.prefix}/bin/conda' 'shell.bash' 'hook'".encode() in text
    assert text.endswith(b"# <<< conda initialize <<<\n\n")
    assert f"no change     {bashrc}\n" in standin.conda("init", "bash", home=home).stdout
    assert f"no change     {bashrc}\n" in standin.conda("init", "--dry-run", "bash", home=home).stdout

    standin.mamba("shell", "init", "-s", "bash", "-r", str(standin.prefix), home=home)
    both = bashrc.read_bytes()
    assert both.count(b"# >>> mamba initialize >>>") == 1
    assert f"export MAMBA_ROOT_PREFIX='{standin.prefix}';".encode() in both
    standin.mamba("shell", "init", "-s", "bash", "-r", str(standin.prefix), home=home)
    assert bashrc.read_bytes() == both

    assert f"modified      {bashrc}\n" in standin.conda("init", "--reverse", "--dry-run", "bash", home=home).stdout
    assert bashrc.read_bytes() == both
    standin.conda("init", "--reverse", "bash", home=home)
    standin.mamba("shell", "deinit", "-s", "bash", "-r", str(standin.prefix), home=home)
    # The newlines conda init put around the block are left (this file had no final newline).
    assert bashrc.read_bytes() == original + b"\n\n"
    assert f"no change     {bashrc}\n" in standin.conda("init", "--reverse", "bash", home=home).stdout

    # zsh goes to ~/.zshrc; a file the init created keeps only the empty line.
    standin.conda("init", "zsh", home=home)
    assert b"'shell.zsh' 'hook'" in (home / ".zshrc").read_bytes()
    standin.conda("init", "--reverse", "zsh", home=home)
    assert (home / ".zshrc").read_bytes() == b"\n"


def test_macos_init_writes_bash_profile(standin: Standin, tmp_path: Path) -> None:
    home = tmp_path
    out = standin.conda("init", "bash", home=home, STANDIN_PLATFORM="osx").stdout
    assert f"modified      {home / '.bash_profile'}\n" in out
    standin.mamba("shell", "init", "-s", "bash", "-r", str(standin.prefix), home=home, STANDIN_PLATFORM="osx")
    text = (home / ".bash_profile").read_text()
    assert "# >>> conda initialize >>>" in text and "# >>> mamba initialize >>>" in text
    assert not (home / ".bashrc").exists()


def test_login_shell_activation(standin: Standin, tmp_path: Path) -> None:
    home = tmp_path
    standin.conda("create", "-y", "-q", "-n", "act", "python", home=home)
    env = standin.prefix / "envs" / "act"
    (home / ".profile").write_text('if [ -f "$HOME/.bashrc" ]; then . "$HOME/.bashrc"; fi\n')
    (home / ".bashrc").write_text("export FROM_BASHRC=1\n")
    standin.conda("init", "bash", home=home)
    standin.mamba("shell", "init", "-s", "bash", "-r", str(standin.prefix), home=home)
    script = (
        'echo "types: $(type -t conda) $(type -t mamba) $FROM_BASHRC"; '
        'echo "base: $CONDA_DEFAULT_ENV $(command -v python)"; '
        "mamba activate act; "
        'echo "mamba: $CONDA_PREFIX $CONDA_DEFAULT_ENV $(command -v python) '
        "$(python -c 'import sys; print(sys.prefix)')\"; "
        "mamba deactivate; "
        'echo "back: $CONDA_PREFIX $CONDA_DEFAULT_ENV $(command -v python)"; '
        "conda activate act; "
        'echo "conda: $CONDA_PREFIX $CONDA_DEFAULT_ENV $(command -v python)"; '
        "conda deactivate; conda deactivate; "
        'echo "none: ${CONDA_PREFIX-unset} ${CONDA_DEFAULT_ENV-unset} $PATH"'
    )
    result = run(["bash", "-lic", script], home, PATH="/usr/bin:/bin")
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].split() for line in result.stdout.splitlines() if ":" in line}
    assert lines["types"] == ["function", "function", "1"]
    assert lines["base"] == ["base", f"{standin.prefix}/bin/python"]
    assert lines["mamba"] == [str(env), "act", f"{env}/bin/python", str(env)]
    assert lines["back"] == [str(standin.prefix), "base", f"{standin.prefix}/bin/python"]
    assert lines["conda"] == [str(env), "act", f"{env}/bin/python"]
    unset, unset_name, path = lines["none"]
    assert (unset, unset_name) == ("unset", "unset")
    assert f"{standin.prefix}/bin" not in path.split(":") and f"{env}/bin" not in path.split(":")
    assert f"{standin.prefix}/condabin" in path.split(":")

    # With only the conda block, mamba is the program in the activated base.
    standin.mamba("shell", "deinit", "-s", "bash", "-r", str(standin.prefix), home=home)
    only_conda = run(["bash", "-lic", "type -P mamba; type -t conda"], home, PATH="/usr/bin:/bin")
    assert only_conda.stdout.split() == [f"{standin.prefix}/bin/mamba", "function"]
    plain = standin.mamba("activate", "act", home=home, check=False)
    assert plain.returncode == 1 and "mamba shell init" in plain.stderr
    standin.conda("env", "remove", "-y", "-n", "act", home=home)


# --------------------------------------------------------------------------
# Configuration and info
# --------------------------------------------------------------------------


def test_config_show_reads_condarc_subset(standin: Standin, tmp_path: Path) -> None:
    home = tmp_path
    (home / ".condarc").write_text(
        "# managed by a test\n"
        "channels:\n"
        "  - fastai  # old channel\n"
        "  - conda-forge\n"
        "channel_priority: strict\n"
        "pkgs_dirs:\n"
        "- ~/conda-cache/pkgs\n"
        "auto_activate_base: false\n"
    )
    shown = standin.conda_json("config", "--show", home=home)
    assert shown["channels"] == ["fastai", "conda-forge"]
    assert shown["channel_priority"] == "strict"
    assert shown["pkgs_dirs"] == [str(home / "conda-cache" / "pkgs")]
    assert shown["auto_activate_base"] is False
    hook = standin.conda("shell.bash", "hook", home=home).stdout
    assert "conda activate base" not in hook
    assert standin.conda_json("config", "--show", "channels", home=home) == {"channels": ["fastai", "conda-forge"]}

    default = standin.conda_json("config", "--show", home=tmp_path / "nohome")
    assert default["channels"] == ["conda-forge"]
    assert default["channel_priority"] == "flexible"
    assert default["pkgs_dirs"] == [str(standin.prefix / "pkgs"), str(tmp_path / "nohome" / ".conda" / "pkgs")]

    info = standin.conda_json("info", home=home)
    assert info["conda_version"] == "26.3.2"
    assert info["root_prefix"] == str(standin.prefix)
    assert info["active_prefix"] is None
    assert info["envs"][0] == str(standin.prefix)
    assert info["pkgs_dirs"] == shown["pkgs_dirs"]
    assert info["platform"].startswith("linux-")
    assert standin.conda("info", "--base", home=home).stdout == f"{standin.prefix}\n"
