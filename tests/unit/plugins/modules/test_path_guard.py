"""The prefix rules and the user-configuration deletion guards (plugins/modules/path_guard.py), in scratch dirs."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from ansible.module_utils.testing import patch_module_args
from ansible_collections.reforge.workstation.plugins.modules import path_guard

HOME = "/home/me"


@pytest.mark.parametrize(("given", "expanded"), [
    ("~", HOME),
    ("~/miniforge3", f"{HOME}/miniforge3"),
    ("$HOME/miniforge3", f"{HOME}/miniforge3"),
    ("${HOME}/miniforge3", f"{HOME}/miniforge3"),
    ("/opt/miniforge3", "/opt/miniforge3"),
    # Only a leading ~ or $HOME is the home: these stay as given (and are refused below).
    ("~other/miniforge3", "~other/miniforge3"),
    ("$HOMEDIR/miniforge3", "$HOMEDIR/miniforge3"),
    ("/x/~/miniforge3", "/x/~/miniforge3"),
])
def test_a_leading_tilde_or_home_expands_to_the_home(given: str, expanded: str) -> None:
    assert path_guard.expand_home(given, HOME) == expanded


@pytest.mark.parametrize(("prefix", "named"), [
    ("/home/me/mini forge", "a space"),
    ("/home/me/mini\tforge", "a tab"),
    ("/home/me/mini\nforge", "a newline"),
    ("/home/me/mini'forge", "a single quote (')"),
    ('/home/me/mini"forge', 'a double quote (")'),
    ("/home/me/mini\\forge", "a backslash (\\)"),
    ("/home/me/mini`id`", "a backtick (`)"),
    ("/home/me/mini$USER", "a dollar sign ($)"),
    ("/home/me/mini\x1bforge", "a control character (U+001B)"),
    ("/home/me/mini\x7fforge", "a control character (U+007F)"),
    ("/home/me/mini\u00a0forge", "whitespace (U+00A0)"),
    ("/home/me/mini\u200bforge", "a control character (U+200B)"),
])
def test_a_prefix_with_a_character_the_shell_init_cannot_carry_is_refused(prefix: str, named: str) -> None:
    with pytest.raises(ValueError) as refused:
        path_guard.check(prefix, "miniforge_prefix", "prefix", HOME, os.getuid())
    message = str(refused.value)
    assert message.startswith(f"Refusing prefix {prefix!r} (miniforge_prefix): it holds {named}")
    assert "\n" not in message


@pytest.mark.parametrize(("prefix", "reason"), [
    ("", "it is empty"),
    ("miniforge3", "not an absolute path"),
    ("/home/me/miniforge3/", "not normalised"),
    ("/home/me/../me/miniforge3", "not normalised"),
    ("//home/me/miniforge3", "not normalised"),
    ("~other/miniforge3", "not an absolute path"),
])
def test_a_prefix_that_is_not_a_plain_absolute_path_is_refused(prefix: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        path_guard.check(prefix, "miniforge_prefix", "prefix", HOME, os.getuid())


def test_a_good_prefix_comes_back_expanded(tmp_path: Path) -> None:
    result = path_guard.check("~/miniforge3", "miniforge_prefix", "prefix", str(tmp_path), os.getuid())
    assert result == {"path": f"{tmp_path}/miniforge3", "exists": False}


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


def test_a_condarc_that_is_a_regular_file_in_the_home_may_be_deleted(tmp_path: Path) -> None:
    home = _home(tmp_path)
    (home / ".condarc").write_text("channels: [conda-forge]\n")
    result = path_guard.check(str(home / ".condarc"), "miniforge_condarc_path", "config_file", str(home), os.getuid())
    assert result["exists"] is True
    assert path_guard.check("~/.condarc", "v", "config_file", str(home), os.getuid())["path"] == f"{home}/.condarc"


def test_an_absent_condarc_is_fine(tmp_path: Path) -> None:
    home = _home(tmp_path)
    assert path_guard.check(f"{home}/.condarc", "v", "config_file", str(home), os.getuid())["exists"] is False


@pytest.mark.parametrize(("layout", "reason"), [
    ("directory", "not a regular file (it is a directory)"),
    ("home", "not inside the home directory"),
    ("outside", "not inside the home directory"),
    ("link", "symbolic link"),
    ("through-link", "not inside the home directory"),
    ("relative", "not an absolute, normalised path"),
])
def test_a_condarc_path_aimed_at_anything_else_is_refused(tmp_path: Path, layout: str, reason: str) -> None:
    home = _home(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "condarc").write_text("keep\n")
    (home / "notes").mkdir()
    (home / "notes" / "sentinel").write_text("keep\n")
    os.symlink(outside / "condarc", home / "linked.condarc")
    os.symlink(outside, home / "elsewhere")
    path = {
        "directory": f"{home}/notes",
        "home": str(home),
        "outside": f"{outside}/condarc",
        "link": f"{home}/linked.condarc",
        "through-link": f"{home}/elsewhere/condarc",
        "relative": "notes",
    }[layout]
    with pytest.raises(ValueError, match=re.escape(reason)) as refused:
        path_guard.check(path, "miniforge_condarc_path", "config_file", str(home), os.getuid())
    assert str(refused.value).startswith("Refusing miniforge_condarc_path")


def test_a_condarc_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    home = _home(tmp_path)
    (home / ".condarc").write_text("x\n")
    with pytest.raises(ValueError, match="owned by uid"):
        path_guard.check(f"{home}/.condarc", "v", "config_file", str(home), os.getuid() + 1)


def test_the_conda_dir_conda_made_may_be_deleted(tmp_path: Path) -> None:
    home = _home(tmp_path)
    conda = home / ".conda"
    (conda / "pkgs").mkdir(parents=True)
    (conda / "environments.txt").write_text(f"{home}/miniforge3\n")
    (conda / "aau_token").write_text("t\n")
    assert path_guard.check(str(conda), "miniforge_remove_user_config", "conda_dir", str(home), os.getuid())["exists"]


@pytest.mark.parametrize(("layout", "reason"), [
    ("user-file", "entries conda does not write: notes.txt"),
    ("link", "symbolic link"),
    ("file", "not a directory"),
])
def test_a_conda_dir_conda_did_not_make_is_refused(tmp_path: Path, layout: str, reason: str) -> None:
    home = _home(tmp_path)
    conda = home / ".conda"
    if layout == "user-file":
        conda.mkdir()
        (conda / "environments.txt").write_text("")
        (conda / "notes.txt").write_text("keep\n")
    elif layout == "link":
        (tmp_path / "storage").mkdir()
        os.symlink(tmp_path / "storage", conda)
    else:
        conda.write_text("keep\n")
    with pytest.raises(ValueError, match=reason):
        path_guard.check(str(conda), "miniforge_remove_user_config", "conda_dir", str(home), os.getuid())


def test_the_module_fails_with_the_refusal_and_changes_nothing(tmp_path: Path, capsys) -> None:
    home = _home(tmp_path)
    (home / "notes").mkdir()
    args = {"path": f"{home}/notes", "variable": "miniforge_condarc_path", "rule": "config_file",
            "home": str(home), "_ansible_check_mode": True}
    with patch_module_args(args), pytest.raises(SystemExit):
        path_guard.main()
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True
    assert result["msg"].startswith(f"Refusing miniforge_condarc_path '{home}/notes': it is not a regular file")
    assert (home / "notes").is_dir()
