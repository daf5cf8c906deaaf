"""The teardown guard decides by file identity: plugins/modules/conda_prefix_{info,remove}.py.

Every refusal has a test here, on real directories in pytest's scratch dir. The
tests that need a real bind mount or tmpfs mount it under that scratch dir and
unmount it afterwards; without root they are skipped (and say so), never passed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.reforge.workstation.plugins.module_utils import conda_prefix_guard as guard
from ansible_collections.reforge.workstation.plugins.modules import conda_prefix_info as prefix_info
from ansible_collections.reforge.workstation.plugins.modules import conda_prefix_remove as prefix_remove

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount in a scratch dir")


class Layout:
    """A home holding a finished conda prefix, and a few files that must survive."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home" / "me"
        self.prefix = self.home / "miniforge3"
        (self.prefix / "conda-meta").mkdir(parents=True)
        (self.prefix / "conda-meta" / "history").write_text("==> 2026-12-01 <==\n")
        (self.prefix / "bin").mkdir()
        (self.prefix / "bin" / "conda").write_text("#!/bin/sh\nexit 0\n")
        (self.prefix / "bin" / "conda").chmod(0o755)
        (self.home / "thesis").mkdir()
        (self.home / "thesis" / "ch1.tex").write_text("work\n")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """mount(source, target) bind-mounts; mount(None, target) mounts a small tmpfs. All unmounted after."""
    done: list[Path] = []

    def do(source: Path | None, target: Path) -> Path:
        assert str(target).startswith(str(tmp_path)), "mount only inside the scratch dir"
        target.mkdir(parents=True, exist_ok=True)
        argv = ["mount", "--bind", str(source), str(target)] if source else \
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target)]
        subprocess.run(argv, check=True, capture_output=True)
        done.append(target)
        return target

    yield do
    for target in reversed(done):
        subprocess.run(["umount", str(target)], check=False, capture_output=True)


def info(run_module: Callable[..., Any], path: Path | str, home: Path, purpose: str = "remove",
         system_dirs: list[str] | None = None) -> dict[str, Any]:
    failed, result = run_module(prefix_info, {"path": str(path), "home": str(home), "purpose": purpose,
                                              "system_dirs": system_dirs or []})
    assert not failed, result
    return result


def remove(run_module: Callable[..., Any], path: Path | str, home: Path, check_mode: bool = False,
           system_dirs: list[str] | None = None) -> tuple[bool, dict[str, Any]]:
    return run_module(prefix_remove, {"path": str(path), "home": str(home), "system_dirs": system_dirs or []},
                      check_mode=check_mode)


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# What passes -------------------------------------------------------------------
def test_a_finished_prefix_in_home_is_accepted_and_removed(run_module, layout):
    assert info(run_module, layout.prefix, layout.home)["refusal"] == ""
    failed, result = remove(run_module, layout.prefix, layout.home)
    assert not failed and result["changed"], result
    assert not os.path.lexists(layout.prefix)
    assert tree(layout.home) == ["thesis", "thesis/ch1.tex"]


def test_check_mode_reports_the_removal_and_removes_nothing(run_module, layout):
    failed, result = remove(run_module, layout.prefix, layout.home, check_mode=True)
    assert not failed and result["changed"]
    assert (layout.prefix / "conda-meta" / "history").is_file()


def test_a_missing_prefix_is_nothing_to_remove(run_module, layout):
    failed, result = remove(run_module, layout.home / "mambaforge", layout.home)
    assert not failed and not result["changed"]


def test_a_prefix_reached_through_a_linked_home_is_accepted(run_module, layout, tmp_path):
    (tmp_path / "linked-home").symlink_to(layout.home)
    assert info(run_module, tmp_path / "linked-home" / "miniforge3", tmp_path / "linked-home")["refusal"] == ""


def test_an_interrupted_install_may_be_repaired_but_not_removed(run_module, layout):
    (layout.prefix / "conda-meta" / "history").unlink()
    assert info(run_module, layout.prefix, layout.home, purpose="install")["refusal"] == ""
    refusal = info(run_module, layout.prefix, layout.home)["refusal"]
    assert refusal.startswith(f"Refusing prefix '{layout.prefix}': it has no conda-meta/history")


# Each refusal ---------------------------------------------------------------------
def assert_refused(run_module, path: Path | str, home: Path, reason: str,
                   system_dirs: list[str] | None = None) -> None:
    """Both modules refuse with the same sentence, and the removal deletes nothing."""
    before = {p: tree(p) for p in (home, Path(path)) if os.path.isdir(p) and not os.path.islink(p)}
    refusal = info(run_module, path, home, system_dirs=system_dirs)["refusal"]
    assert refusal.startswith(f"Refusing prefix '{path}': "), refusal
    assert reason in refusal, refusal
    failed, result = remove(run_module, path, home, system_dirs=system_dirs)
    assert failed and result["msg"] == refusal
    assert {p: tree(p) for p in before} == before


def test_the_home_directory_is_refused(run_module, layout):
    assert_refused(run_module, layout.home, layout.home, "it is the home directory")


def test_an_ancestor_of_home_is_refused(run_module, layout):
    assert_refused(run_module, layout.home.parent, layout.home, "an ancestor of the home directory")


def test_the_root_directory_is_refused(run_module, layout):
    refusal = info(run_module, "/", layout.home)["refusal"]
    assert refusal == "Refusing prefix '/': it is the root directory ('/')."


def test_a_system_directory_is_refused_by_identity(run_module, layout, tmp_path):
    system = tmp_path / "usr"
    (system / "conda-meta").mkdir(parents=True)
    (system / "conda-meta" / "history").write_text("")
    (tmp_path / "alias").symlink_to(system)
    assert_refused(run_module, system, layout.home, f"it is the system directory '{tmp_path / 'alias'}'",
                   system_dirs=[str(tmp_path / "alias")])


def test_a_prefix_directly_in_a_system_directory_is_refused(run_module, layout):
    refusal = info(run_module, "/usr/reforge-no-such-prefix", layout.home, purpose="install")["refusal"]
    assert refusal.endswith("it sits directly in the system directory '/usr'.")


def test_a_symlinked_prefix_is_refused(run_module, layout, tmp_path):
    link = layout.home / "mf-link"
    link.symlink_to(layout.prefix)
    assert_refused(run_module, link, layout.home, "reached through a symlink")
    assert (layout.prefix / "conda-meta" / "history").is_file()


def test_a_file_is_refused(run_module, layout):
    (layout.home / "notes").write_text("keep\n")
    assert_refused(run_module, layout.home / "notes", layout.home, "it is not a directory")


def test_a_directory_without_conda_markers_is_refused(run_module, layout):
    assert_refused(run_module, layout.home / "thesis", layout.home, "it is not a conda prefix")


@pytest.mark.parametrize("history", ["missing", "symlink", "directory"])
def test_removal_needs_conda_meta_history_as_a_regular_file(run_module, layout, history):
    path = layout.prefix / "conda-meta" / "history"
    path.unlink()
    if history == "symlink":
        path.symlink_to(layout.home / "thesis" / "ch1.tex")
    elif history == "directory":
        path.mkdir()
    assert_refused(run_module, layout.prefix, layout.home, "it has no conda-meta/history regular file")


@needs_root
def test_a_prefix_owned_by_someone_else_is_refused(run_module, layout):
    os.chown(layout.prefix, 65534, 65534)
    assert_refused(run_module, layout.prefix, layout.home, "it is not owned by ")


@needs_root
def test_a_bind_mounted_alias_of_home_is_refused(run_module, layout, mount, tmp_path):
    # R6(b): home holds bin/conda (a dangling link even), so every string check passed.
    (layout.home / "bin").mkdir()
    (layout.home / "bin" / "conda").symlink_to(tmp_path / "nowhere")
    (layout.home / "conda-meta").mkdir()
    (layout.home / "conda-meta" / "history").write_text("")
    alias = mount(layout.home, tmp_path / "mnt" / "alias")
    assert_refused(run_module, alias, layout.home, "it is the home directory")
    assert (layout.home / "thesis" / "ch1.tex").read_text() == "work\n"


@needs_root
def test_a_bind_mounted_alias_of_an_ancestor_of_home_is_refused(run_module, layout, mount, tmp_path):
    alias = mount(layout.home.parent, tmp_path / "mnt" / "homes")
    assert_refused(run_module, alias, layout.home, "an ancestor of the home directory")


@needs_root
def test_a_prefix_that_contains_a_mount_point_is_refused(run_module, layout, mount, tmp_path):
    # R6(a): a shared package cache bind-mounted into the prefix.
    shared = tmp_path / "storage" / "pkgs"
    shared.mkdir(parents=True)
    (shared / "dataset.bin").write_text("data\n")
    mount(shared, layout.prefix / "pkgs")
    assert_refused(run_module, layout.prefix, layout.home, f"contains a mount point ('{layout.prefix / 'pkgs'}')")
    assert (shared / "dataset.bin").read_text() == "data\n"


@needs_root
def test_a_prefix_that_is_a_mount_point_is_refused(run_module, layout, mount, tmp_path):
    volume = tmp_path / "volume"
    (volume / "conda-meta").mkdir(parents=True)
    (volume / "conda-meta" / "history").write_text("")
    mount(volume, layout.home / "mf-volume")
    assert_refused(run_module, layout.home / "mf-volume", layout.home, "it is or contains a mount point")


@needs_root
def test_the_removal_stops_at_another_file_system_even_with_stale_mount_facts(layout, mount):
    # A mount that appeared after mountinfo was read: the device check alone must stop the walk.
    cache = mount(None, layout.prefix / "pkgs")
    (cache / "shared.tar.bz2").write_text("shared\n")
    expected = guard.identity(str(layout.prefix), follow=False)
    with pytest.raises(guard.PrefixRemovalError, match="is a mount point"):
        guard.remove_prefix(str(layout.prefix), expected, mounts=[])
    assert (cache / "shared.tar.bz2").read_text() == "shared\n"


def test_the_removal_refuses_a_prefix_swapped_after_the_check(layout, tmp_path):
    expected = guard.identity(str(layout.prefix), follow=False)
    layout.prefix.rename(tmp_path / "moved")
    (layout.prefix / "conda-meta").mkdir(parents=True)
    with pytest.raises(guard.PrefixRemovalError, match="was replaced"):
        guard.remove_prefix(str(layout.prefix), expected, mounts=[])
    assert (tmp_path / "moved" / "conda-meta" / "history").is_file()


# mountinfo -------------------------------------------------------------------------
def test_mount_points_are_read_from_mountinfo_with_its_escapes(tmp_path):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw\n"
        "36 22 0:30 / /home/me/mini\\040forge/pkgs rw - tmpfs tmpfs rw\n"
        "37 22 0:31 / /home/me/mini rw - tmpfs tmpfs rw\n"
    )
    mounts = guard.mount_points(str(mountinfo))
    assert mounts == ["/", "/home/me/mini forge/pkgs", "/home/me/mini"]
    assert guard.mounts_at_or_below("/home/me/mini forge", mounts) == ["/home/me/mini forge/pkgs"]
    assert guard.mounts_at_or_below("/home/me/miniforge3", mounts) == []
