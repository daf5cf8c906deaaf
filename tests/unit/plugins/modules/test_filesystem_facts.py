"""Unit tests of plugins/modules/filesystem_facts.py (the doctor's links, key modes and free space),
on real trees in a scratch dir."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest

from ansible_collections.reforge.workstation.plugins.modules import filesystem_facts as ff


def test_filesystem_facts_documentation_matches_the_argument_spec(cj: Any) -> None:
    assert cj.documentation_problems(ff) == []


@pytest.fixture
def home_and_storage(tmp_path: Path) -> tuple[Path, Path]:
    """Every state a home entry can be in, relative to the storage volume."""
    home, storage = tmp_path / "home", tmp_path / "storage"
    (storage / ".local").mkdir(parents=True)
    (storage / ".gitconfig").write_text("[user]\n")
    (storage / ".config").mkdir()
    home.mkdir()
    (home / ".local").symlink_to(storage / ".local")  # linked
    (home / ".gitconfig").symlink_to("../storage/.gitconfig")  # linked, relative
    (home / ".ssh").symlink_to(storage / ".ssh")  # dangling
    (home / ".config").mkdir()  # real
    (home / ".conda").symlink_to(tmp_path)  # wrong
    return home, storage


def test_each_link_gets_its_state(home_and_storage: tuple[Path, Path], run_module: Callable[..., Any]) -> None:
    home, storage = home_and_storage
    names = [".local", ".gitconfig", ".ssh", ".config", ".conda", ".kaggle"]
    failed, result = run_module(ff, {"links": names, "links_from": str(home), "links_to": str(storage)},
                                check_mode=True)
    assert not failed
    assert result["changed"] is False and result["links_to_exists"] is True
    states = {entry["name"]: (entry["state"], entry["kind"]) for entry in result["links"]}
    assert states == {
        ".local": ("linked", "link"),
        ".gitconfig": ("linked", "link"),
        ".ssh": ("dangling", "link"),
        ".config": ("real", "directory"),
        ".conda": ("wrong", "link"),
        ".kaggle": ("missing", "missing"),
    }
    by_name = {entry["name"]: entry for entry in result["links"]}
    assert by_name[".gitconfig"]["link_target"] == "../storage/.gitconfig"
    assert by_name[".conda"]["realpath"] == str(home.parent)
    assert by_name[".local"]["target"] == str(storage / ".local")


def test_links_into_storage_reached_through_a_symlink_count(home_and_storage: tuple[Path, Path]) -> None:
    home, storage = home_and_storage
    alias = storage.parent / "storage-alias"
    alias.symlink_to(storage)
    result = ff.gather({"links": [".local"], "links_from": str(home), "links_to": str(alias),
                        "directories": [], "free_space": []})
    assert result["links"][0]["state"] == "linked"


def test_no_link_is_checked_without_the_storage_volume(tmp_path: Path) -> None:
    result = ff.gather({"links": [".local"], "links_from": str(tmp_path), "links_to": str(tmp_path / "storage"),
                        "directories": [], "free_space": []})
    assert result["links_to_exists"] is False
    assert result["links"] == []


def test_links_without_a_storage_directory_are_refused(run_module: Callable[..., Any]) -> None:
    failed, result = run_module(ff, {"links": [".local"]})
    assert failed
    assert "links needs links_to" in result["msg"]


def test_the_modes_of_the_key_files_are_read_but_not_their_content(tmp_path: Path) -> None:
    ssh = tmp_path / ".ssh"
    ssh.mkdir(mode=0o755)
    ssh.chmod(0o755)
    for name, mode in (("id_ed25519", 0o644), ("id_ed25519.pub", 0o644), ("config", 0o600)):
        (ssh / name).write_text("secret material" if name == "id_ed25519" else "public")
        (ssh / name).chmod(mode)
    (ssh / "sockets").mkdir()
    linked = tmp_path / "ssh-link"
    linked.symlink_to(ssh)
    result = ff.gather({"links": [], "links_from": None, "links_to": None,
                        "directories": [str(linked), str(tmp_path / "absent")], "free_space": []})
    present, absent = result["directories"]
    assert (present["exists"], present["mode"]) == (True, "0755")
    assert present["files"] == [
        {"name": "config", "path": str(linked / "config"), "mode": "0600"},
        {"name": "id_ed25519", "path": str(linked / "id_ed25519"), "mode": "0644"},
        {"name": "id_ed25519.pub", "path": str(linked / "id_ed25519.pub"), "mode": "0644"},
    ]
    assert "secret" not in json.dumps(result)
    assert absent == {"path": str(tmp_path / "absent"), "exists": False, "mode": None, "files": []}


def test_free_space_is_that_of_the_paths_file_system(tmp_path: Path) -> None:
    result = ff.gather({"links": [], "links_from": None, "links_to": None, "directories": [],
                        "free_space": [str(tmp_path), str(tmp_path / "absent")]})
    present, absent = result["free_space"]
    usage = os.statvfs(tmp_path)
    assert present["exists"] is True
    assert abs(present["free_bytes"] - usage.f_bavail * usage.f_frsize) < 64 * 1024 * 1024
    assert present["total_bytes"] == usage.f_blocks * usage.f_frsize
    assert os.path.ismount(present["mount"])
    assert str(tmp_path).startswith(present["mount"])
    assert absent == {"path": str(tmp_path / "absent"), "exists": False, "mount": None, "free_bytes": None,
                      "total_bytes": None}
