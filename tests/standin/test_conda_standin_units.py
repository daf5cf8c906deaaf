"""Unit tests of the stand-in's front end, imported directly (no installer, no subprocess).

The modules are the ones the installer ships (molecule/shared/standin/conda_standin);
the expected strings are the ones real conda 24 and mamba 2 write, as the README
in molecule/shared/standin describes them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

import pytest

STANDIN_DIR = Path(__file__).resolve().parents[2] / "molecule" / "shared" / "standin"
if str(STANDIN_DIR) not in sys.path:
    sys.path.insert(0, str(STANDIN_DIR))

from conda_standin import commands, common, config, history, index, shell, solver, specs  # noqa: E402

CONDA_BLOCK_START = "# >>> conda initialize >>>"


@pytest.fixture(autouse=True)
def fresh_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test has its own root prefix and HOME, and runs as conda unless it says otherwise."""
    root = tmp_path / "miniforge3"
    (root / "conda-meta").mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("CONDARC", "XDG_CONFIG_HOME", "ZDOTDIR", "MAMBA_ROOT_PREFIX", "STANDIN_CONDA_CANNOT_PARSE",
                 "STANDIN_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(common, "ROOT_PREFIX", str(root))
    monkeypatch.setattr(common, "PROG", "conda")
    monkeypatch.setattr(common, "JSON_ERRORS", False)
    index._INDEX_CACHE.clear()
    yield root
    index._INDEX_CACHE.clear()


def write_record(prefix: Path, name: str, version: str) -> None:
    """A conda-meta record with the fields the front end reads."""
    record = {"name": name, "version": version, "build": "h0_0", "build_number": 0, "files": []}
    (prefix / "conda-meta" / f"{name}-{version}-h0_0.json").write_text(json.dumps(record))


# ---------------------------------------------------------------- versions and specs


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        ("1.5.29", "1.5.*", True),
        ("1.7.1", "1.5.*", False),
        ("1.26.4", ">=1,<2", True),
        ("2.1.3", ">=1,<2", False),
        ("3.9.20", "<3.10", True),
        ("3.10.16", "<3.10", False),
        ("3.10.16", ">3.9", True),
        ("1.5.29", "==1.5.29", True),
        ("1.5.290", "==1.5.29", False),
        ("1.5", "1.5.0", True),
        ("2.0", "1.5|>=2", True),
        ("1.7.1", "!=1.7.1", False),
        ("1.7.1", "~=1.7", True),
        ("2.0.0", "~=1.7", False),
        ("3.12.8", None, True),
    ],
)
def test_version_matches_like_conda(version: str, spec: str | None, expected: bool) -> None:
    assert specs.version_matches(version, spec) is expected


def test_version_key_orders_numerically() -> None:
    ordered = sorted(["1.10.0", "1.9.1", "1.9", "2.0.0", "1.9.1a"], key=specs.version_key)
    assert ordered == ["1.9", "1.9.1", "1.9.1a", "1.10.0", "2.0.0"]


@pytest.mark.parametrize(
    ("typed", "name", "version", "build", "channel"),
    [
        ("fastcore", "fastcore", None, None, None),
        ("fastcore=1.5", "fastcore", "1.5.*", None, None),
        ("numpy==1.26.4", "numpy", "==1.26.4", None, None),
        ("numpy 1.26.*", "numpy", "1.26.*", None, None),
        ("numpy 1.26.4 py312h8a8b9a9_0", "numpy", "1.26.4", "py312h8a8b9a9_0", None),
        ("python<3.10", "python", "<3.10", None, None),
        ("numpy>=1,<2", "numpy", ">=1,<2", None, None),
        ("conda-forge::fastai", "fastai", None, None, "conda-forge"),
        ("conda-forge/noarch::fastai", "fastai", None, None, "conda-forge"),
        ("python[version='<3.10']", "python", "<3.10", None, None),
        ('python[version="<3.10"]', "python", "<3.10", None, None),
        ("NumPy=1.26=py312h8a8b9a9_0", "numpy", "1.26", "py312h8a8b9a9_0", None),
    ],
)
def test_parse_spec(typed: str, name: str, version: str | None, build: str | None, channel: str | None) -> None:
    assert specs.parse_spec(typed) == specs.Spec(name, version, build, channel)


@pytest.mark.parametrize(
    ("typed", "conda", "mamba"),
    [
        ("fastcore", "fastcore", '"fastcore"'),
        ("fastcore=1.5", "fastcore=1.5", '"fastcore=1.5"'),
        ("numpy==1.26.4", "numpy==1.26.4", '"numpy==1.26.4"'),
        ("numpy 1.26.*", "numpy=1.26", '"numpy=1.26"'),
        ("python<3.10", "python[version='<3.10']", '"python[version=\\"<3.10\\"]"'),
        ("numpy>=1,<2", "numpy[version='>=1,<2']", '"numpy[version=\\">=1,<2\\"]"'),
    ],
)
def test_specs_are_written_as_conda_and_mamba_write_them(typed: str, conda: str, mamba: str) -> None:
    """The README's table: conda's str(MatchSpec), and mamba 2's std::quoted form of it."""
    canonical = specs.parse_spec(typed).canonical()
    assert canonical == conda
    assert history.std_quoted(history.mamba_spec(canonical)) == mamba
    assert specs.parse_spec(canonical).canonical() == conda  # accepted again as typed


def test_invalid_spec_is_conda_error() -> None:
    with pytest.raises(common.CondaError) as raised:
        specs.parse_spec("!!nope")
    assert raised.value.name == "InvalidMatchSpec"
    assert raised.value.message == "Invalid spec '!!nope'"


# ---------------------------------------------------------------- history


def test_history_entry_as_conda_writes_it(fresh_state: Path) -> None:
    history.append_history(
        str(fresh_state),
        "/p/bin/conda remove -y fastcore",
        ["conda-forge/noarch::fastcore-1.7.1-pyhd8ed1ab_0"],
        [],
        ["numpy>=1"],
        ["fastcore"],
        stamp="2024-05-01 12:00:00",
    )
    assert (fresh_state / "conda-meta" / "history").read_text() == (
        "==> 2024-05-01 12:00:00 <==\n"
        "# cmd: /p/bin/conda remove -y fastcore\n"
        "# conda version: 26.3.2\n"
        "-conda-forge/noarch::fastcore-1.7.1-pyhd8ed1ab_0\n"
        "# remove specs: ['fastcore']\n"
        "# update specs: ['numpy>=1']\n"
    )


def test_history_update_as_mamba_writes_update_and_remove_lines(fresh_state: Path) -> None:
    common.PROG = "mamba"
    history.append_history(
        str(fresh_state),
        "/prefix/bin/mamba update -y numpy",
        ["conda-forge/linux-64::numpy-1.26.4-py312h8a8b9a9_0"],
        ["conda-forge/linux-64::numpy-2.1.3-py312h8a8b9a9_0"],
        ["numpy"],
        [],
        updating=True,
        stamp="2024-05-01 12:00:00",
    )
    assert (fresh_state / "conda-meta" / "history").read_text() == (
        "==> 2024-05-01 12:00:00 <==\n"
        "# cmd: /prefix/bin/mamba update -y numpy\n"
        "# conda version: 3.8.0\n"
        "-conda-forge/linux-64::numpy-1.26.4-py312h8a8b9a9_0\n"
        "+conda-forge/linux-64::numpy-2.1.3-py312h8a8b9a9_0\n"
        '# update specs: ["numpy"]\n'
        '# remove specs: ["numpy"]\n'
    )


def test_requested_specs_replay_history_like_conda(fresh_state: Path) -> None:
    """Removes drop a name, updates set it in conda's spelling, names no longer installed are left out."""
    (fresh_state / "conda-meta" / "history").write_text(
        "==> 2024-05-01 12:00:00 <==\n"
        "# update specs: ['python=3.12', 'fastcore', 'tinydep']\n"
        "==> 2024-05-01 12:01:00 <==\n"
        '# update specs: ["numpy[version=\\">=1,<2\\"]", "fastai"]\n'
        '# remove specs: ["fastai"]\n'
        "==> 2024-05-01 12:02:00 <==\n"
        "# remove specs: ['tinydep']\n"
        "# update specs: ['sentencepiece']\n"
    )
    for name, version in [("python", "3.12.8"), ("fastcore", "1.7.1"), ("numpy", "1.26.4"), ("fastai", "2.7.18")]:
        write_record(fresh_state, name, version)
    assert history.requested_specs(str(fresh_state)) == [
        "python=3.12",
        "fastcore",
        "numpy[version='>=1,<2']",
        "fastai",
    ]


def test_cannot_parse_switch_fails_only_conda_on_double_quoted_brackets(
    fresh_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (fresh_state / "conda-meta" / "history").write_text(
        '==> 2024-05-01 12:00:00 <==\n# update specs: ["numpy[version=\\">=1\\"]"]\n'
    )
    write_record(fresh_state, "numpy", "1.26.4")
    monkeypatch.setenv("STANDIN_CONDA_CANNOT_PARSE", "1")
    with pytest.raises(common.CondaError) as raised:
        history.requested_specs(str(fresh_state))
    assert raised.value.name == "InvalidMatchSpec"
    common.PROG = "mamba"
    assert history.requested_specs(str(fresh_state)) == ["numpy[version='>=1']"]


# ---------------------------------------------------------------- shell init blocks


def test_conda_block_is_appended_replaced_and_reversed_byte_for_byte() -> None:
    user = "export EDITOR=vi\r\nalias ll='ls -l'"  # CRLF and no final newline stay as they are
    block = shell.conda_block("bash", "/opt/mf")
    added = shell.edit_rc(user, common.CONDA_BLOCK, block)
    assert added == user + "\n" + block + "\n"
    assert block.startswith(CONDA_BLOCK_START + "\n")
    assert "__conda_setup=\"$('/opt/mf/bin/conda' 'shell.bash' 'hook' 2> /dev/null)\"" in block
    moved = shell.edit_rc(added + "echo after\n", common.CONDA_BLOCK, shell.conda_block("bash", "/new/mf"))
    assert moved == user + "\n" + shell.conda_block("bash", "/new/mf") + "\necho after\n"
    assert shell.edit_rc(added, common.CONDA_BLOCK, None) == user
    assert shell.edit_rc(shell.edit_rc("", common.CONDA_BLOCK, block), common.CONDA_BLOCK, None) == ""


def test_mamba_block_exports_root_and_exe() -> None:
    block = shell.mamba_block("zsh", "/opt/mf", "/opt/mf/bin/mamba")
    lines = block.splitlines()
    assert lines[0] == "# >>> mamba initialize >>>" and lines[-1] == "# <<< mamba initialize <<<"
    assert "export MAMBA_EXE='/opt/mf/bin/mamba';" in lines
    assert "export MAMBA_ROOT_PREFIX='/opt/mf';" in lines
    hook = '"$MAMBA_EXE" shell hook --shell zsh --root-prefix "$MAMBA_ROOT_PREFIX"'
    assert f'__mamba_setup="$({hook} 2> /dev/null)"' in lines


def test_apply_rc_keeps_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_bytes(b"# caf\xe9\n")
    assert shell.apply_rc(str(rc), common.CONDA_BLOCK, shell.conda_block("bash", "/opt/mf"), dry_run=True)
    assert rc.read_bytes() == b"# caf\xe9\n"  # a dry run writes nothing
    assert shell.apply_rc(str(rc), common.CONDA_BLOCK, shell.conda_block("bash", "/opt/mf"), dry_run=False)
    assert shell.apply_rc(str(rc), common.CONDA_BLOCK, None, dry_run=False)
    assert rc.read_bytes() == b"# caf\xe9\n"
    assert not shell.apply_rc(str(rc), common.CONDA_BLOCK, None, dry_run=False)


def test_rc_file_follows_zdotdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert shell.rc_file("bash") == str(tmp_path / "home" / ".bashrc")
    assert shell.rc_file("zsh") == str(tmp_path / "home" / ".zshrc")
    monkeypatch.setenv("ZDOTDIR", str(tmp_path / "zdot"))
    assert shell.rc_file("zsh") == str(tmp_path / "zdot" / ".zshrc")


# ---------------------------------------------------------------- configuration


def test_yaml_subset() -> None:
    text = (
        "channels: [conda-forge, bioconda]  # flow list\n"
        "pkgs_dirs:\n"
        "  - /storage/pkgs\n"
        "- ~/pkgs\n"
        "auto_activate_base: false\n"
        "changeps1: 'yes'\n"
        "ssl_verify: ~\n"
        "remote_max_retries: 3\n"
        "custom_channels:\n"
        "  mine: https://example.invalid\n"
    )
    assert config.parse_yaml_subset(text, "test") == {
        "channels": ["conda-forge", "bioconda"],
        "pkgs_dirs": ["/storage/pkgs", "~/pkgs"],
        "auto_activate_base": False,
        "changeps1": "yes",
        "ssl_verify": None,
        "remote_max_retries": 3,
        "custom_channels": [],  # a nested mapping's lines are skipped: the key is left with nothing in it
    }


def test_load_config_merges_in_conda_order(fresh_state: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert config.load_config()["channels"] == ["defaults"]
    assert config.load_config()["envs_dirs"] == [str(fresh_state / "envs"), str(home / ".conda" / "envs")]
    (fresh_state / ".condarc").write_text("channels:\n  - conda-forge\nauto_activate_base: true\n")
    (home / ".condarc").write_text("channels: [bioconda, conda-forge]\nauto_activate_base: false\n"
                                   "pkgs_dirs: [~/cache]\n")
    merged = config.load_config()
    assert merged["channels"] == ["bioconda", "conda-forge"]
    assert merged["auto_activate_base"] is False
    assert merged["pkgs_dirs"] == [str(home / "cache")]


# ---------------------------------------------------------------- solver


def test_solver_keeps_installed_and_pulls_dependencies() -> None:
    solved = solver.Solver({"python": "3.12.8", "fastcore": "1.5.29"}, "install", {"fastai"}).solve(
        [specs.parse_spec("fastai")]
    )
    assert solved["fastai"] == "2.7.18"
    assert solved["fastcore"] == "1.5.29"  # still satisfies fastcore >=1.5.29,<1.8
    assert solved["tinydep"] == "0.1.0"
    assert solved["python"] == "3.12.8"


def test_solver_update_takes_newest() -> None:
    solved = solver.Solver({"python": "3.12.8", "fastcore": "1.5.29"}, "update", {"fastcore"}).solve(
        [specs.parse_spec("fastcore")]
    )
    assert solved["fastcore"] == "1.7.1"


def test_a_requested_older_python_downgrades_instead_of_failing() -> None:
    """conda-libmamba-solver pins the installed Python only when Python is not requested (D8)."""
    solved = solver.Solver({"python": "3.12.8", "numpy": "2.1.3"}, "install", {"python"}).solve(
        [specs.parse_spec("python<3.10")]
    )
    assert solved["python"] == "3.9.20"
    assert solved["numpy"] == "1.26.4"  # numpy 2 needs python >=3.10


def test_conda_updates_what_it_is_asked_to_update_and_mamba_keeps_it() -> None:
    installed = {"python": "3.12.8", "fastcore": "1.5.29"}
    kept = solver.Solver(installed, "install", {"fastcore"}).solve([specs.parse_spec("fastcore>=1.5")])
    assert kept["fastcore"] == "1.5.29"
    moved = solver.Solver(installed, "install", {"fastcore"}, frozenset({"fastcore"})).solve(
        [specs.parse_spec("fastcore>=1.5")]
    )
    assert moved["fastcore"] == "1.7.1"


def test_solver_errors_read_like_libmamba() -> None:
    with pytest.raises(common.SolveError) as raised:
        solver.Solver({}, "install", set()).solve([specs.parse_spec("nosuchpkg"), specs.parse_spec("numpy>=3")])
    assert raised.value.problems == [
        "nosuchpkg =* * does not exist (perhaps a typo or a missing channel).",
        "numpy >=3 * does not exist (perhaps a typo or a missing channel).",
    ]
    assert "The following packages are incompatible" in raised.value.render()
    # conda --json: every problem a missing package -> PackagesNotFoundError with the specs.
    document = raised.value.conda_json()
    assert document["exception_name"] == "PackagesNotFoundError"
    assert document["packages"] == ["nosuchpkg", "numpy[version='>=3']"]
    with pytest.raises(common.SolveError) as raised:
        solver.Solver({"python": "3.9.20"}, "install", {"numpy"}).solve([specs.parse_spec("numpy>=2")])
    document = raised.value.conda_json()
    assert document["exception_name"] == "LibMambaUnsatisfiableError"
    assert "numpy 2.1.3 is not installable because it requires" in document["message"]


def test_new_environment_python_prefers_the_host(fresh_state: Path) -> None:
    host = ".".join(str(part) for part in sys.version_info[:3])
    assert solver.Solver({}, "install", {"python"}).solve([specs.parse_spec("python")])["python"] == host
    old = solver.Solver({}, "install", {"python"}).solve([specs.parse_spec("python<3.10"), specs.parse_spec("numpy")])
    assert old["python"] == "3.9.20" and old["numpy"] == "1.26.4"
    assert index.index_package("numpy", "1.26.4", "3.9.20").build.startswith("py39h")


def test_reverse_removes_every_conda_block_whatever_its_prefix() -> None:
    """As real conda's --reverse: the image's own block goes too, not only this prefix's."""
    content = shell.edit_rc("export A=1\n", common.CONDA_BLOCK, shell.conda_block("bash", "/opt/conda"))
    content = shell.edit_rc(content + "export B=2\n", common.MAMBA_BLOCK, shell.mamba_block("bash", "/o", "/o/m"))
    content += "\n" + shell.conda_block("bash", "/home/u/miniforge3") + "\n"
    assert content.count(CONDA_BLOCK_START) == 2
    mamba_only = "export A=1\nexport B=2\n\n" + shell.mamba_block("bash", "/o", "/o/m") + "\n"
    assert shell.edit_rc(content, common.CONDA_BLOCK, None) == mamba_only
    assert shell.edit_rc(mamba_only, common.MAMBA_BLOCK, None) == "export A=1\nexport B=2\n"


# ---------------------------------------------------------------- conda init's real rc edits (D3, D11)


def test_conda_init_comments_out_user_lines_and_replaces_every_block() -> None:
    """As conda/core/initialize.py init_sh_user: the user's venv line and the image's block do not survive as they were."""
    prefix = "/home/u/miniforge3"
    ours = shell.conda_block("bash", prefix) + "\n"
    image = shell.conda_block("bash", "/opt/conda") + "\n"
    user = (
        "export EDITOR=vi\n    source ~/venv/bin/activate\n. /opt/conda/etc/profile.d/conda.sh\nconda activate web\n"
        'export PATH="$HOME/miniforge3/bin:$PATH"\n' + image + "echo end\n"
    )
    forward = shell.conda_edit_rc(user, ours, False, prefix)
    comment = "  # commented out by conda initialize\n"
    assert forward == (
        "export EDITOR=vi\n# source ~/venv/bin/activate" + comment + "# . /opt/conda/etc/profile.d/conda.sh" + comment
        + "# conda activate web" + comment + '# export PATH="$HOME/miniforge3/bin:$PATH"' + comment + ours + "echo end\n"
    )
    assert shell.conda_edit_rc(forward, ours, False, prefix) == forward
    # --reverse un-comments (indentation lost) and removes every conda block.
    assert shell.conda_edit_rc(forward, ours, True, prefix) == (
        "export EDITOR=vi\nsource ~/venv/bin/activate\n. /opt/conda/etc/profile.d/conda.sh\nconda activate web\n"
        'export PATH="$HOME/miniforge3/bin:$PATH"\necho end\n'
    )


def test_conda_init_appends_newline_block_newline_and_reverse_leaves_one_newline() -> None:
    ours = shell.conda_block("bash", "/p/miniforge3") + "\n"
    added = shell.conda_edit_rc("foo\n", ours, False, "/p/miniforge3")
    assert added == "foo\n\n" + ours + "\n"
    assert shell.conda_edit_rc(added, ours, True, "/p/miniforge3") == "foo\n\n"


def test_macos_writes_bash_profile_and_mamba_ignores_zdotdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_PLATFORM", "osx")
    monkeypatch.setenv("ZDOTDIR", str(tmp_path / "zdot"))
    assert shell.rc_file("bash") == str(tmp_path / "home" / ".bash_profile")
    assert shell.rc_file("zsh") == str(tmp_path / "zdot" / ".zshrc")
    assert shell.rc_file("zsh", follow_zdotdir=False) == str(tmp_path / "home" / ".zshrc")
    monkeypatch.setenv("STANDIN_PLATFORM", "linux")
    assert shell.rc_file("bash") == str(tmp_path / "home" / ".bashrc")


def test_mamba_remove_prunes_unrequested_dependencies_nothing_else_needs() -> None:
    records = {
        "python": {"depends": []},
        "fastai": {"depends": ["python >=3.8", "fastcore >=1.5.29,<1.8", "tinydep"]},
        "fastcore": {"depends": ["python >=3.7"]},
        "tinydep": {"depends": ["python >=3.7"]},
        "sentencepiece": {"depends": ["python >=3.8", "tinydep"]},
    }
    assert commands.orphans(records, {"fastai"}, {"python", "fastai", "sentencepiece"}) == {"fastcore"}
    assert commands.orphans(records, {"fastai"}, {"python", "fastai", "fastcore"}) == set()


@pytest.mark.parametrize(
    ("spec", "form"),
    [
        ("numpy==1.26.4", "numpy=1.26.4"),
        ("conda-forge::numpy==1.26.4", "numpy=1.26.4"),
        ("fastcore=1.5", "fastcore=1.5"),
        ("python[version='<3.10']", "python[version='<3.10']"),
        ("conda-forge::numpy[version='>=1,<2']", "numpy[version='>=1,<2']"),
    ],
)
def test_export_uses_conda_env_form(spec: str, form: str) -> None:
    assert commands.env_form(spec) == form
