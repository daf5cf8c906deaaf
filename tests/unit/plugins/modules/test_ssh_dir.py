"""Unit tests of plugins/modules/ssh_dir.py over real temporary trees.

The module replaces eight tasks of the ssh_keys role (the .ssh directory, its link
checks, the key modes and two blockinfile tasks). Each test builds the .ssh
directory on disk, runs the module as Ansible would, and reads back the files,
their modes and the links.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Callable

import pytest

from ansible_collections.reforge.workstation.plugins.modules import ssh_dir as sd

CONFIG = "Host github.com\n    HostName github.com\n    User git\n    IdentitiesOnly yes\n"
KNOWN = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
KEYS = [{"name": "id_ed25519", "mode": "0600"}, {"name": "id_ed25519.pub", "mode": "0644"}]
CONFIG_BLOCK = ("# BEGIN reforge ssh_keys: hosts\n" + CONFIG + "# END reforge ssh_keys: hosts\n")
KNOWN_BLOCK = ("# BEGIN reforge ssh_keys: pinned host keys\n" + KNOWN + "\n"
               "# END reforge ssh_keys: pinned host keys\n")

Run = Callable[..., tuple[bool, dict[str, Any]]]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def args(path: Path, **extra: Any) -> dict[str, Any]:
    return dict({"path": str(path), "config": CONFIG, "known_hosts": KNOWN, "keys": KEYS}, **extra)


def tree(path: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under path: kind, mode and content or link target, for before/after comparisons."""
    found = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = Path(root, name)
            info = os.lstat(full)
            if stat.S_ISLNK(info.st_mode):
                found[str(full.relative_to(path))] = ("link", 0, os.readlink(full))
            elif stat.S_ISDIR(info.st_mode):
                found[str(full.relative_to(path))] = ("dir", stat.S_IMODE(info.st_mode), "")
            else:
                found[str(full.relative_to(path))] = ("file", stat.S_IMODE(info.st_mode), full.read_text())
    info = os.lstat(path)
    found["."] = ("dir", stat.S_IMODE(info.st_mode), "")
    return found


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_creates_the_directory_0700_with_both_blocks(home: Path, run_module: Run) -> None:
    ssh = home / ".ssh"
    failed, result = run_module(sd, args(ssh))
    assert not failed, result
    assert result["changed"] is True
    assert cj_keys(result) == [("id_ed25519", False), ("id_ed25519.pub", False)]
    assert ssh.is_dir() and not ssh.is_symlink() and mode(ssh) == 0o700
    assert (ssh / "config").read_text() == CONFIG_BLOCK
    assert mode(ssh / "config") == 0o600
    assert (ssh / "known_hosts").read_text() == KNOWN_BLOCK
    assert mode(ssh / "known_hosts") == 0o644
    assert sorted(os.listdir(ssh)) == ["config", "known_hosts"]


def cj_keys(result: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(key["name"], key["exists"]) for key in result["keys"]]


def test_a_second_run_changes_nothing(home: Path, run_module: Run) -> None:
    ssh = home / ".ssh"
    run_module(sd, args(ssh))
    before = tree(ssh)
    failed, result = run_module(sd, args(ssh), diff=True)
    assert not failed
    assert result["changed"] is False and result["actions"] == [] and result["diff"] == []
    assert tree(ssh) == before


def test_the_config_block_goes_on_top_and_is_updated_in_place(home: Path, run_module: Run) -> None:
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700)
    (ssh / "config").write_text("Host *\n    ServerAliveInterval 60")  # no final newline
    (ssh / "config").chmod(0o600)
    (ssh / "known_hosts").write_text("example.org ssh-ed25519 AAAA")
    (ssh / "known_hosts").chmod(0o600)
    run_module(sd, args(ssh))
    assert (ssh / "config").read_text() == CONFIG_BLOCK + "Host *\n    ServerAliveInterval 60"
    # ssh's own 0600 is kept; the pinned block goes at the end, after a line break.
    assert (ssh / "known_hosts").read_text() == "example.org ssh-ed25519 AAAA\n" + KNOWN_BLOCK
    assert mode(ssh / "known_hosts") == 0o600

    changed_config = "Host git.example.org\n    Port 2222\n"
    failed, result = run_module(sd, args(ssh, config=changed_config))
    assert not failed and result["changed"] is True
    assert (ssh / "config").read_text() == (
        "# BEGIN reforge ssh_keys: hosts\n" + changed_config + "# END reforge ssh_keys: hosts\n"
        + "Host *\n    ServerAliveInterval 60")
    assert (ssh / "known_hosts").read_text() == "example.org ssh-ed25519 AAAA\n" + KNOWN_BLOCK
    failed, result = run_module(sd, args(ssh, config=changed_config))
    assert not failed and result["changed"] is False


def test_an_empty_block_removes_its_markers(home: Path, run_module: Run) -> None:
    ssh = home / ".ssh"
    run_module(sd, args(ssh))
    (ssh / "config").write_text("Host *\n" + CONFIG_BLOCK)
    failed, result = run_module(sd, args(ssh, config=""))
    assert not failed and result["changed"] is True
    assert (ssh / "config").read_text() == "Host *\n"


def test_modes_are_fixed_on_files_and_directory(home: Path, run_module: Run) -> None:
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o755)
    ssh.chmod(0o755)
    for name, file_mode in (("id_ed25519", 0o644), ("id_ed25519.pub", 0o666), ("config", 0o644),
                            ("known_hosts", 0o664)):
        (ssh / name).write_text("x\n")
        (ssh / name).chmod(file_mode)
    (ssh / "config").write_text(CONFIG_BLOCK)
    (ssh / "known_hosts").write_text(KNOWN_BLOCK)
    failed, result = run_module(sd, args(ssh))
    assert not failed and result["changed"] is True
    assert {name: mode(ssh / name) for name in os.listdir(ssh)} == {
        "id_ed25519": 0o600, "id_ed25519.pub": 0o644, "config": 0o600, "known_hosts": 0o644}
    assert mode(ssh) == 0o700
    assert (ssh / "id_ed25519").read_text() == "x\n"


def test_a_dot_ssh_link_to_a_real_directory_is_kept_and_its_target_gets_the_mode(
        tmp_path: Path, home: Path, run_module: Run) -> None:
    storage = tmp_path / "storage"
    (storage / ".ssh").mkdir(parents=True)
    (storage / ".ssh").chmod(0o755)
    (home / ".ssh").symlink_to("../storage/.ssh")  # relative, counted from home
    failed, result = run_module(sd, args(home / ".ssh"))
    assert not failed, result
    assert os.readlink(home / ".ssh") == "../storage/.ssh"
    assert result["path"] == str(home) + "/../storage/.ssh"
    assert mode(storage / ".ssh") == 0o700
    assert (storage / ".ssh" / "config").read_text() == CONFIG_BLOCK


def test_a_dot_ssh_link_to_a_link_is_refused(tmp_path: Path, home: Path, run_module: Run) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    elsewhere.chmod(0o755)
    (tmp_path / "hop").symlink_to(elsewhere)
    (home / ".ssh").symlink_to(tmp_path / "hop")
    before = tree(tmp_path)
    failed, result = run_module(sd, args(home / ".ssh"))
    assert failed
    assert result["msg"].startswith("%s is a link to %s, which is not a real directory" % (home / ".ssh", tmp_path / "hop"))
    assert "make %s a real directory" % (tmp_path / "hop") in result["msg"]
    assert tree(tmp_path) == before
    assert mode(elsewhere) == 0o755


def test_a_dangling_dot_ssh_link_is_refused(tmp_path: Path, home: Path, run_module: Run) -> None:
    (home / ".ssh").symlink_to(tmp_path / "missing")
    failed, result = run_module(sd, args(home / ".ssh"))
    assert failed and "which is not a real directory" in result["msg"]
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("name", ["config", "known_hosts", "id_ed25519"])
def test_a_link_inside_dot_ssh_is_refused_before_any_change(tmp_path: Path, home: Path, run_module: Run,
                                                            name: str) -> None:
    ssh = home / ".ssh"
    ssh.mkdir()
    ssh.chmod(0o755)
    victim = tmp_path / "victim"
    victim.write_text("do not touch\n")
    victim.chmod(0o666)
    (ssh / name).symlink_to(victim)
    (ssh / "id_ed25519.pub").write_text("pub\n")
    (ssh / "id_ed25519.pub").chmod(0o666)
    before = tree(tmp_path)
    failed, result = run_module(sd, args(ssh))
    assert failed
    assert result["msg"] == "%s in %s is a link; nothing is written through it. Replace it with a real file." % (
        name, ssh)
    # Nothing changed at all: not the victim, not the directory's mode, not the other key.
    assert tree(tmp_path) == before


def test_a_key_that_is_not_a_regular_file_is_left_alone(home: Path, run_module: Run) -> None:
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700)
    (ssh / "id_ed25519").mkdir(mode=0o755)
    (ssh / "id_ed25519").chmod(0o755)
    failed, result = run_module(sd, args(ssh))
    assert not failed
    assert mode(ssh / "id_ed25519") == 0o755


def test_check_mode_changes_nothing_and_reports_the_change(tmp_path: Path, home: Path, run_module: Run) -> None:
    ssh = home / ".ssh"
    failed, result = run_module(sd, args(ssh), check_mode=True, diff=True)
    assert not failed and result["changed"] is True
    assert not ssh.exists()
    assert result["actions"] == ["created %s with mode 0700" % ssh, "created %s/config" % ssh,
                                 "created %s/known_hosts" % ssh]

    ssh.mkdir()
    ssh.chmod(0o750)
    (ssh / "id_ed25519").write_text("k\n")
    (ssh / "id_ed25519").chmod(0o644)
    (ssh / "config").write_text("Host *\n")
    before = tree(home)
    failed, result = run_module(sd, args(ssh), check_mode=True, diff=True)
    assert not failed and result["changed"] is True
    assert tree(home) == before
    assert "set mode 0600 on %s/id_ed25519" % ssh in result["actions"]
    assert "set mode 0700 on %s" % ssh in result["actions"]

    # What check mode announced is what the real run does, and the real run reports the same.
    failed, real = run_module(sd, args(ssh), diff=True)
    assert not failed and real["actions"] == result["actions"] and real["diff"] == result["diff"]
    failed, again = run_module(sd, args(ssh), check_mode=True)
    assert not failed and again["changed"] is False


def test_diff_shows_each_file_before_and_after(home: Path, run_module: Run) -> None:
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700)
    (ssh / "config").write_text("Host *\n")
    (ssh / "config").chmod(0o600)
    failed, result = run_module(sd, args(ssh), diff=True)
    assert not failed
    by_header = {entry["after_header"]: entry for entry in result["diff"]}
    config = by_header[str(ssh / "config")]
    assert config["before"] == "Host *\n"
    assert config["after"] == CONFIG_BLOCK + "Host *\n"
    known = by_header[str(ssh / "known_hosts")]
    assert known["before_header"] == "/dev/null" and known["before"] == "" and known["after"] == KNOWN_BLOCK


def test_the_atomic_replace_keeps_no_temporary_file_and_replaces_the_inode(home: Path, run_module: Run) -> None:
    ssh = home / ".ssh"
    run_module(sd, args(ssh))
    inode = os.lstat(ssh / "config").st_ino
    failed, result = run_module(sd, args(ssh, config="Host other\n"))
    assert not failed and result["changed"]
    assert os.lstat(ssh / "config").st_ino != inode
    assert sorted(os.listdir(ssh)) == ["config", "known_hosts"]


def test_a_file_where_the_directory_belongs_is_refused(home: Path, run_module: Run) -> None:
    (home / ".ssh").write_text("not a directory\n")
    failed, result = run_module(sd, args(home / ".ssh"))
    assert failed and "is not a directory" in result["msg"]
    assert (home / ".ssh").read_text() == "not a directory\n"


def test_a_key_name_with_a_slash_is_refused(home: Path, run_module: Run) -> None:
    failed, result = run_module(sd, args(home / ".ssh", keys=[{"name": "../id", "mode": "0600"}]))
    assert failed and "expected a file name" in result["msg"]
    assert not (home / ".ssh").exists()


def test_the_public_key_is_returned_but_never_through_a_link(tmp_path: Path, home: Path, run_module: Run) -> None:
    ssh = home / ".ssh"
    failed, result = run_module(sd, args(ssh, public_key="id_ed25519.pub"))
    assert not failed and result["public_key"] is None
    (ssh / "id_ed25519.pub").write_text("ssh-ed25519 AAAA me\n")
    failed, result = run_module(sd, args(ssh, public_key="id_ed25519.pub"))
    assert not failed and result["public_key"] == "ssh-ed25519 AAAA me\n"
    (ssh / "id_ed25519.pub").unlink()
    (tmp_path / "secret").write_text("secret\n")
    (ssh / "id_ed25519.pub").symlink_to(tmp_path / "secret")
    failed, result = run_module(sd, args(ssh, public_key="id_ed25519.pub"))
    assert failed and "id_ed25519.pub in %s is a link" % ssh in result["msg"]
    assert "secret\n" not in str(result)
