#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Swap a conda prefix aside and back: the transaction around a rebuild, its journal, and generations."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: miniforge_transaction
short_description: Rebuild a conda prefix as a transaction that can always be undone
description:
  - A conda prefix embeds its own path, so the only safe way to keep an old prefix while a
    new one is installed at the same path is to rename it aside on the same file system,
    and to rename it back to undo. This module does those renames, backs up the rc files
    and C(~/.condarc) byte for byte, and records each step in a journal, so that a run
    killed at any point is finished or undone by the next one.
  - C(begin) checks (same file system, enough free space), backs up the files, writes the
    journal and renames the prefix into the generations directory beside it.
  - C(rollback) (and C(recover) for a journal left by a killed run) removes the partial new
    prefix, renames the old one back and restores the backed-up files.
  - C(commit) keeps the old prefix as a generation, prunes generations beyond I(keep), and
    drops the journal.
  - C(switch) makes generation I(generation) (1 = the most recently retired) the prefix, and
    retires the current prefix as a generation, so a switch can itself be switched back.
  - C(list) describes the current prefix and every generation.
options:
  step:
    description: The transaction step to take (not a desired state, so not named C(state)).
    type: str
    required: true
    choices: [begin, commit, rollback, recover, switch, list]
  prefix:
    description: The managed prefix (absolute path).
    type: path
    required: true
  generations_dir:
    description: Directory beside the prefix, on the same file system, that holds the generations.
    type: path
    required: true
  journal_dir:
    description: Where the journal and the backups live (outside the prefix).
    type: path
    required: true
  backup_files:
    description: Files to back up on C(begin) and restore byte for byte on a rollback (rc files, .condarc).
    type: list
    elements: path
    default: []
  keep:
    description: Generations to keep on C(commit); 0 deletes the old prefix at once.
    type: int
    default: 1
  generation:
    description: >-
      For C(switch), which generation to bring back (1 = the most recently retired); 0 only
      undoes a pending rebuild and never switches.
    type: int
    default: 1
  snapshot:
    description: For C(begin), the snapshot taken before the swap, recorded in the journal.
    type: str
    default: ""
  miniforge_version:
    description: For C(commit), the Miniforge release just installed, stamped on the new prefix.
    type: str
    default: ""
  reason:
    description: For C(rollback), what failed, repeated in the report.
    type: str
    default: ""
  check_space:
    description: For C(begin), refuse when the prefix's file system has less free space than the prefix uses.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - reforge.workstation.common
attributes:
  check_mode:
    support: full
    details: Renames, writes and deletes nothing; RV(report) says what the step would do.
  diff_mode:
    support: none
    details: RV(report) names every step taken.
"""

EXAMPLES = r"""
- name: Rename the prefix aside
  reforge.workstation.miniforge_transaction:
    step: begin
    prefix: /home/me/miniforge3
    generations_dir: /home/me/miniforge3.generations
    journal_dir: /home/me/.local/state/reforge/transactions
    backup_files: [/home/me/.bashrc, /home/me/.condarc]
"""

RETURN = r"""
changed:
  description: Whether the step renamed, removed or recorded anything (or would, in check mode).
  returned: always
  type: bool
journal:
  description: Path of the journal file.
  returned: always
  type: str
aside:
  description: Where the old prefix was renamed to (begin), or empty when there was none.
  returned: when step is begin
  type: str
report:
  description: One line per step taken, for a person to read.
  returned: always
  type: list
  elements: str
pending:
  description: Whether a journal was found (recover, rollback).
  returned: when step is recover or rollback
  type: bool
seconds:
  description: How long the renames of a switch took.
  returned: when step is switch
  type: float
generations:
  description: The current prefix and the generations, newest first, each with id, path, current, date,
    miniforge_version, conda_version, conda_packages, pip_packages and size_bytes.
  returned: when step is list
  type: list
  elements: dict
"""

import json
import os
import re
import shutil
import signal
import stat
import time
from dataclasses import dataclass
from typing import Any, Callable

from ansible_collections.reforge.workstation.plugins.module_utils.conda_prefix_guard import (
    PrefixRemovalError,
    identity,
    mount_points,
    remove_prefix,
)


STAMP = ".reforge-generation.json"
TRASH = ".trash-"
GENERATION_ID = re.compile(r"^\d{8}T\d{6}(\.\d+)?Z$")
# micromamba: Miniforge unpacks it (then links _conda to it) before anything else.
MARKERS = ("conda-meta", "condabin/conda", "bin/conda", "_conda", "micromamba")


class TransactionError(Exception):
    """A precondition does not hold; nothing was changed."""


@dataclass
class Paths:
    prefix: str
    generations: str
    journal_dir: str

    @property
    def journal(self) -> str:
        name = self.prefix.strip("/").replace("/", "%") or "root"
        return os.path.join(self.journal_dir, name + ".json")

    @property
    def backup_dir(self) -> str:
        return self.journal[: -len(".json")] + ".backup"


def now_id() -> str:
    stamp = time.time()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(stamp)) + f".{int(stamp * 1e6) % 1000000:06d}Z"


def iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def write_json(path: str, data: dict[str, Any]) -> None:
    """Write atomically and durably: a journal must survive a kill -9 whole or not at all."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path))


def fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_journal(paths: Paths) -> dict[str, Any] | None:
    try:
        with open(paths.journal, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise TransactionError(f"The journal {paths.journal} is unreadable ({error}); inspect it by hand.") from None
    return data if isinstance(data, dict) else None


def drop_journal(paths: Paths) -> None:
    if os.path.lexists(paths.backup_dir):
        shutil.rmtree(paths.backup_dir)
    if os.path.lexists(paths.journal):
        os.unlink(paths.journal)
    fsync_dir(paths.journal_dir)


def rename(source: str, target: str) -> None:
    if os.path.lexists(target):
        raise TransactionError(f"Refusing to rename {source} to {target}: {target} exists.")
    os.rename(source, target)
    fsync_dir(os.path.dirname(target))
    if os.path.dirname(source) != os.path.dirname(target):
        fsync_dir(os.path.dirname(source))


def check_owned_dir(path: str, what: str) -> None:
    """A directory the user owns, reached without a symlink; anything else is refused."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise TransactionError(f"Refusing {what} '{path}': it is a symlink.")
    if not stat.S_ISDIR(info.st_mode):
        raise TransactionError(f"Refusing {what} '{path}': it is not a directory.")
    if info.st_uid != os.getuid():
        raise TransactionError(f"Refusing {what} '{path}': it is not owned by uid {os.getuid()}.")


def is_conda_prefix(path: str) -> bool:
    return any(os.path.lexists(os.path.join(path, marker)) for marker in MARKERS)


def tree_bytes(path: str) -> int:
    """Disk use of a tree, each inode counted once, links not followed."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                info = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            key = (info.st_dev, info.st_ino)
            if key in seen:
                continue
            seen.add(key)
            total += getattr(info, "st_blocks", 0) * 512 or info.st_size
    return total


def free_bytes(path: str) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def boot_time() -> float:
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def proc_started(pid: str, btime: float) -> float:
    """When a process started (epoch seconds), from /proc/PID/stat field 22."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def procs_running_from(path: str, since: float) -> list[int]:
    """This user's processes that run from `path`: their executable lies in it, or they
    started after `since` with an argument in it (a venv's python resolves elsewhere).
    Linux /proc only; none elsewhere."""
    found: list[int] = []
    if not os.path.isdir("/proc/self"):
        return found
    btime = boot_time()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != os.getuid():
                continue
            exe = os.readlink(f"/proc/{entry}/exe")
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().decode(errors="replace").split("\0")
            started = proc_started(entry, btime)
        except (OSError, IndexError, ValueError):
            continue
        inside = exe.startswith(path + "/") or (
            started >= since - 1 and any(arg.startswith(path + "/") for arg in args[:3]))
        if inside:
            found.append(int(entry))
    return found


def stop_procs(path: str, since: float, report: list[str]) -> None:
    """A killed run can leave mamba or pip writing into the new prefix: stop them before it goes."""
    pids = procs_running_from(path, since)
    if not pids:
        return
    report.append(f"stopped {len(pids)} process(es) still running from the partial {path}")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and procs_running_from(path, since):
            time.sleep(0.1)
        pids = procs_running_from(path, since)
        if not pids:
            return


def delete_tree(path: str, what: str, report: list[str]) -> bool:
    """Delete a directory the user owns, never through a link and never into another mount; False if kept.

    What is mounted inside (a dataset, a shared package cache) belongs to another file
    system: the directory is then kept, and the report says why.
    """
    check_owned_dir(path, what)
    expected = identity(path, follow=False)
    mounts = mount_points()
    if expected is None or mounts is None:
        report.append(f"kept {what} {path}: the mount table is unreadable, so a mount inside it cannot be ruled out")
        return False
    try:
        remove_prefix(path, expected, mounts)
    except PrefixRemovalError as error:
        report.append(f"kept {what} {path}: {error}; remove it by hand")
        return False
    return True


def remove_tree(path: str, generations: str, report: list[str], what: str) -> None:
    """Rename into the generations dir first (instant, atomic), then delete."""
    check_owned_dir(path, what)
    os.makedirs(generations, mode=0o755, exist_ok=True)
    trash = os.path.join(generations, TRASH + now_id())
    rename(path, trash)
    if delete_tree(trash, what, report):
        report.append(f"removed {what} {path}")


# ---------------------------------------------------------------- backups


def backup_files(files: list[str], backup_dir: str) -> dict[str, Any]:
    """Copy each file's bytes and mode; record the ones that do not exist."""
    os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    record: dict[str, Any] = {}
    for index, path in enumerate(files):
        if not os.path.exists(path):
            record[path] = None
            continue
        copy = os.path.join(backup_dir, f"{index}-{os.path.basename(path)}")
        with open(path, "rb") as source, open(copy, "wb") as target:
            shutil.copyfileobj(source, target)
            target.flush()
            os.fsync(target.fileno())
        record[path] = {"copy": copy, "mode": stat.S_IMODE(os.stat(path).st_mode)}
    fsync_dir(backup_dir)
    return record


def same_bytes(path: str, copy: str) -> bool:
    with open(path, "rb") as one, open(copy, "rb") as two:
        return one.read() == two.read()


def restore_files(record: dict[str, Any], report: list[str]) -> None:
    for path, saved in record.items():
        if saved is None:
            if os.path.lexists(path) and not os.path.islink(path):
                os.unlink(path)
                report.append(f"removed {path}, which did not exist before")
            continue
        if os.path.exists(path) and same_bytes(path, saved["copy"]):
            continue
        # Writing through the path keeps a symlinked rc file a symlink, as conda init does.
        with open(saved["copy"], "rb") as source, open(path, "wb") as target:
            shutil.copyfileobj(source, target)
        os.chmod(path, saved["mode"])
        report.append(f"restored {path} byte for byte")


# ---------------------------------------------------------------- generations


def generation_ids(generations: str) -> list[str]:
    """Generation names, most recently retired first."""
    if not os.path.isdir(generations) or os.path.islink(generations):
        return []
    return sorted((name for name in os.listdir(generations) if GENERATION_ID.match(name)), reverse=True)


def read_stamp(prefix: str) -> dict[str, Any]:
    try:
        with open(os.path.join(prefix, STAMP), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def conda_version(prefix: str) -> str:
    meta = os.path.join(prefix, "conda-meta")
    try:
        names = os.listdir(meta)
    except OSError:
        return ""
    for name in names:
        match = re.match(r"^conda-(\d[^-]*)-[^-]+\.json$", name)
        if match:
            return match.group(1)
    return ""


def count_conda(prefix: str) -> int:
    try:
        return sum(name.endswith(".json") for name in os.listdir(os.path.join(prefix, "conda-meta")))
    except OSError:
        return 0


def count_pip(prefix: str) -> int:
    total = 0
    lib = os.path.join(prefix, "lib")
    try:
        pythons = [name for name in os.listdir(lib) if name.startswith("python")]
    except OSError:
        return 0
    for python in pythons:
        site = os.path.join(lib, python, "site-packages")
        try:
            infos = [name for name in os.listdir(site) if name.endswith(".dist-info")]
        except OSError:
            continue
        for info in infos:
            try:
                with open(os.path.join(site, info, "INSTALLER"), encoding="utf-8") as handle:
                    total += handle.read().strip() == "pip"
            except OSError:
                continue
    return total


def describe(path: str, ident: str, current: bool) -> dict[str, Any]:
    stamp = read_stamp(path)
    try:
        fallback = iso(os.stat(os.path.join(path, "conda-meta")).st_mtime)
    except OSError:
        fallback = ""
    return {
        "id": ident,
        "path": path,
        "current": current,
        "date": stamp.get("installed", fallback),
        "miniforge_version": stamp.get("miniforge_version", ""),
        "conda_version": conda_version(path),
        "conda_packages": count_conda(path),
        "pip_packages": count_pip(path),
        "size_bytes": tree_bytes(path),
    }


def list_generations(paths: Paths) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    if os.path.isdir(paths.prefix) and not os.path.islink(paths.prefix):
        listed.append(describe(paths.prefix, "current", True))
    for number, ident in enumerate(generation_ids(paths.generations), start=1):
        entry = describe(os.path.join(paths.generations, ident), str(number), False)
        entry["retired"] = ident
        listed.append(entry)
    return listed


def render(listed: list[dict[str, Any]]) -> list[str]:
    lines = []
    for entry in listed:
        name = "current" if entry["current"] else f"generation {entry['id']} (retired {entry['retired']})"
        lines.append(
            f"{name}: {entry['path']}, installed {entry['date'] or '?'}, Miniforge {entry['miniforge_version'] or '?'}, "
            f"conda {entry['conda_version'] or '?'}, {entry['conda_packages']} conda + {entry['pip_packages']} pip "
            f"packages, {human(entry['size_bytes'])}"
        )
    return lines or ["no prefix and no generation"]


def prune(paths: Paths, keep: int, report: list[str]) -> None:
    if os.path.isdir(paths.generations) and not os.path.islink(paths.generations):
        # What a killed removal left behind: renamed out of the way, never a generation.
        for name in os.listdir(paths.generations):
            trash = os.path.join(paths.generations, name)
            if name.startswith(TRASH) and not os.path.islink(trash) and os.lstat(trash).st_uid == os.getuid():
                delete_tree(trash, "leftover", report)
    for ident in generation_ids(paths.generations)[max(keep, 0):]:
        path = os.path.join(paths.generations, ident)
        if delete_tree(path, "generation", report):
            report.append(f"deleted generation {path} (keeping {keep})")


# ---------------------------------------------------------------- the transaction


def check_generations_dir(paths: Paths) -> None:
    parent = os.path.dirname(paths.prefix)
    if os.path.lexists(paths.generations):
        check_owned_dir(paths.generations, "generations directory")
        where = paths.generations
    else:
        where = os.path.dirname(paths.generations)
    if os.stat(where).st_dev != os.stat(parent).st_dev:
        raise TransactionError(
            f"The generations directory {paths.generations} is not on the file system of {paths.prefix}: "
            "a prefix can only be renamed aside on its own file system."
        )
    real_gen = os.path.realpath(paths.generations)
    real_prefix = os.path.realpath(paths.prefix)
    if (real_gen + "/").startswith(real_prefix + "/"):
        raise TransactionError(f"The generations directory {paths.generations} must not be inside {paths.prefix}.")


def check_space(paths: Paths, report: list[str]) -> None:
    needed = tree_bytes(paths.prefix)
    free = free_bytes(os.path.dirname(paths.prefix))
    if free < needed:
        raise TransactionError(
            f"Not enough free space for a new prefix beside the old one: {paths.prefix} uses {human(needed)}, "
            f"and only {human(free)} is free on its file system. The old prefix is kept until the new one works, "
            "so both must fit. Free some space (old generations, caches) and run the rebuild again; "
            "nothing was changed."
        )
    report.append(f"free space: {human(free)} for a prefix of {human(needed)}")


def begin(paths: Paths, files: list[str], snapshot: str, space: bool, check: bool) -> dict[str, Any]:
    report: list[str] = []
    if read_journal(paths) is not None:
        raise TransactionError(f"A rebuild of {paths.prefix} is still pending ({paths.journal}): recover it first.")
    exists = os.path.lexists(paths.prefix)
    if exists:
        check_owned_dir(paths.prefix, "prefix")
        check_generations_dir(paths)
        if space:
            check_space(paths, report)
    aside = os.path.join(paths.generations, now_id()) if exists else ""
    if check:
        report.append(f"would rename {paths.prefix} to {aside}" if exists else f"would install into {paths.prefix}")
        return {"changed": True, "aside": aside, "journal": paths.journal, "report": report}
    journal: dict[str, Any] = {
        "op": "rebuild", "prefix": paths.prefix, "aside": aside, "snapshot": snapshot,
        "started": iso(time.time()), "epoch": time.time(), "phase": "begun",
    }
    journal["backups"] = backup_files(files, paths.backup_dir)
    write_json(paths.journal, journal)
    if exists:
        os.makedirs(paths.generations, mode=0o755, exist_ok=True)
        rename(paths.prefix, aside)
        report.append(f"renamed {paths.prefix} aside to {aside}")
    journal["phase"] = "swapped"
    write_json(paths.journal, journal)
    return {"changed": True, "aside": aside, "journal": paths.journal, "report": report}


def undo_rebuild(paths: Paths, journal: dict[str, Any], report: list[str]) -> None:
    aside = journal.get("aside") or ""
    prefix = paths.prefix
    old_is_aside = bool(aside) and os.path.lexists(aside)
    if os.path.lexists(prefix) and (old_is_aside or not aside):
        stop_procs(prefix, float(journal.get("epoch", 0)), report)
        remove_tree(prefix, paths.generations, report, "partial new prefix")
    if old_is_aside:
        rename(aside, prefix)
        report.append(f"renamed the old prefix back from {aside} to {prefix}")
    restore_files(journal.get("backups") or {}, report)


def finish_commit(paths: Paths, journal: dict[str, Any], keep: int, report: list[str]) -> None:
    aside = journal.get("aside") or ""
    if aside and os.path.lexists(aside) and (keep <= 0 or not is_conda_prefix(aside)):
        if delete_tree(aside, "old prefix", report):
            report.append(f"deleted the old prefix {aside} (no generation kept)")
    elif aside and os.path.lexists(aside):
        report.append(f"kept the old prefix as a generation: {aside}")
    prune(paths, keep, report)


def commit(paths: Paths, keep: int, version: str, check: bool) -> dict[str, Any]:
    report: list[str] = []
    journal = read_journal(paths)
    if journal is None:
        return {"changed": False, "journal": paths.journal, "report": ["no rebuild pending"]}
    if check:
        return {"changed": True, "journal": paths.journal, "report": ["would keep the old prefix as a generation"]}
    if os.path.isdir(paths.prefix):
        write_json(os.path.join(paths.prefix, STAMP), {"installed": iso(time.time()), "miniforge_version": version})
    journal["phase"] = "committed"
    journal["keep"] = keep
    write_json(paths.journal, journal)
    finish_commit(paths, journal, keep, report)
    drop_journal(paths)
    return {"changed": True, "journal": paths.journal, "report": report}


def finish_switch(paths: Paths, journal: dict[str, Any], report: list[str]) -> None:
    source, retired = journal["source"], journal["retired"]
    if not os.path.lexists(paths.prefix):
        if os.path.lexists(source):
            rename(source, paths.prefix)
            report.append(f"finished the switch: {source} is the prefix again")
        elif os.path.lexists(retired):
            rename(retired, paths.prefix)
            report.append(f"undid the switch: {retired} renamed back to {paths.prefix}")


def recover(paths: Paths, check: bool) -> dict[str, Any]:
    """Finish a committed rebuild or a switch; undo any other pending rebuild."""
    report: list[str] = []
    journal = read_journal(paths)
    if journal is None:
        return {"changed": False, "pending": False, "journal": paths.journal, "report": report}
    if check:
        return {"changed": True, "pending": True, "journal": paths.journal,
                "report": [f"would finish or undo the pending {journal.get('op')} of {paths.prefix}"]}
    if journal.get("op") == "switch":
        finish_switch(paths, journal, report)
    elif journal.get("phase") == "committed":
        finish_commit(paths, journal, int(journal.get("keep", 1)), report)
        report.append("finished the rebuild that was being committed")
    else:
        undo_rebuild(paths, journal, report)
        report.insert(0, f"rolled back the interrupted rebuild of {paths.prefix} (started {journal.get('started')})")
    drop_journal(paths)
    return {"changed": True, "pending": True, "journal": paths.journal, "report": report}


def rollback(paths: Paths, reason: str, check: bool) -> dict[str, Any]:
    result = recover(paths, check)
    if result["pending"] and reason:
        result["report"].insert(0, f"rolled back after: {reason}")
    return result


def switch(paths: Paths, number: int, check: bool) -> dict[str, Any]:
    pending = read_journal(paths)
    if pending is not None:
        return recover(paths, check)
    if number == 0:
        return {"changed": False, "journal": paths.journal, "report": [f"no rebuild of {paths.prefix} was pending"],
                "seconds": 0.0}
    ids = generation_ids(paths.generations)
    if not 1 <= number <= len(ids):
        raise TransactionError(
            f"No generation {number} of {paths.prefix}: {len(ids)} kept in {paths.generations}; "
            "see `reforge generations`."
        )
    source = os.path.join(paths.generations, ids[number - 1])
    check_owned_dir(source, "generation")
    if not is_conda_prefix(source):
        raise TransactionError(f"Refusing generation {source}: it is not a conda prefix.")
    retired = os.path.join(paths.generations, now_id())
    report = [f"{paths.prefix} is now generation {number} ({source}); the previous prefix is kept as {retired}"]
    if check:
        return {"changed": True, "journal": paths.journal, "report": report, "seconds": 0.0}
    exists = os.path.lexists(paths.prefix)
    if exists:
        check_owned_dir(paths.prefix, "prefix")
    write_json(paths.journal, {"op": "switch", "prefix": paths.prefix, "source": source, "retired": retired,
                               "started": iso(time.time())})
    started = time.monotonic()
    if exists:
        rename(paths.prefix, retired)
    rename(source, paths.prefix)
    seconds = time.monotonic() - started
    drop_journal(paths)
    report.append(f"swapped by rename in {seconds:.3f} s")
    return {"changed": True, "journal": paths.journal, "report": report, "seconds": round(seconds, 4)}


def run(params: dict[str, Any], check: bool) -> dict[str, Any]:
    paths = Paths(os.path.normpath(params["prefix"]), os.path.normpath(params["generations_dir"]),
                  os.path.normpath(params["journal_dir"]))
    step = params["step"]
    actions: dict[str, Callable[[], dict[str, Any]]] = {
        "begin": lambda: begin(paths, params.get("backup_files") or [], params.get("snapshot") or "",
                               params.get("check_space", True), check),
        "commit": lambda: commit(paths, params.get("keep", 1), params.get("miniforge_version") or "", check),
        "rollback": lambda: rollback(paths, params.get("reason") or "", check),
        "recover": lambda: recover(paths, check),
        "switch": lambda: switch(paths, params.get("generation", 1), check),
        "list": lambda: list_result(paths),
    }
    return actions[step]()


def list_result(paths: Paths) -> dict[str, Any]:
    listed = list_generations(paths)
    return {"changed": False, "journal": paths.journal, "generations": listed, "report": render(listed)}


ARGUMENT_SPEC: dict[str, Any] = {
    "step": {"type": "str", "required": True,
             "choices": ["begin", "commit", "rollback", "recover", "switch", "list"]},
    "prefix": {"type": "path", "required": True},
    "generations_dir": {"type": "path", "required": True},
    "journal_dir": {"type": "path", "required": True},
    "backup_files": {"type": "list", "elements": "path", "default": []},
    "keep": {"type": "int", "default": 1},
    "generation": {"type": "int", "default": 1},
    "snapshot": {"type": "str", "default": ""},
    "miniforge_version": {"type": "str", "default": ""},
    "reason": {"type": "str", "default": ""},
    "check_space": {"type": "bool", "default": True},
}


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    for name in ("prefix", "generations_dir", "journal_dir"):
        if not os.path.isabs(module.params[name]):
            module.fail_json(msg=f"{name} '{module.params[name]}' is not an absolute path.")
    try:
        result = run(module.params, module.check_mode)
    except TransactionError as error:
        module.fail_json(msg=str(error))
    except OSError as error:
        module.fail_json(msg=f"{module.params['step']} of {module.params['prefix']} failed: {error}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
