# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""reforge's one link engine: keep home entries on persistent storage and link them back.

Stdlib only. The storage_link module imports it, and pre-run.sh runs the very same
source at every start that needs work (``python3 -I -S -c <this file> <config json>``).

Storage may have been written by a teammate, so nothing here acts through a link:
every check is an lstat, files are opened with O_NOFOLLOW, modes change through a
descriptor, and the last step of every move refuses to replace what appeared
meanwhile. Home content is merged into storage; only colliding files go to the
backup, under one stamp per run. Nothing is deleted but empty entries, links that
hold no data, our own partial copies, and backups past their retention.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import stat
import sys
import time

# Every start that needs work imports this module, so it imports only what every run uses:
# typing (annotations only), dataclasses (it loads inspect) and ctypes cost milliseconds
# each; ctypes is imported where it is used (a move within one file system).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

HOME_STATES = ("absent", "real_dir", "real_file", "correct_link", "wrong_link", "broken_link")
STORAGE_STATES = ("absent", "empty", "content")
PARTIAL = ".reforge-partial"
STAMP_RE = re.compile(r"^\d{8}T\d{6}Z(\.\d+)?$")
OWNER_RE = re.compile(r"^(\d{1,10}) ([A-Za-z0-9._-]{1,64})(?: (\d{1,12}))?\n?$")
RENAME_NOREPLACE = 1
AT_FDCWD = -100


def record(cls: type) -> type:
    """A small stand-in for @dataclass: keyword or positional init, list defaults copied, repr and ==."""
    names = list(cls.__dict__.get("__annotations__", {}))
    defaults = {name: cls.__dict__[name] for name in names if name in cls.__dict__}

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__} takes at most {len(names)} arguments")
        values = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names or key in values:
                raise TypeError(f"{cls.__name__} got an unexpected or repeated argument {key!r}")
            values[key] = value
        for name in names:
            if name not in values:
                if name not in defaults:
                    raise TypeError(f"{cls.__name__} is missing the argument {name!r}")
                default = defaults[name]
                values[name] = list(default) if isinstance(default, list) else default
            setattr(self, name, values[name])

    def __repr__(self: Any) -> str:
        return f"{cls.__name__}(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in names) + ")"

    def __eq__(self: Any, other: Any) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in names)

    cls.__init__, cls.__repr__, cls.__eq__ = __init__, __repr__, __eq__  # type: ignore[method-assign]
    cls.__hash__ = None  # type: ignore[assignment]
    return cls


class Refused(Exception):
    """A layout the engine will not act on; nothing was changed for that entry."""


class LockBusy(Refused):
    """Another run holds the lock past the wait; this run changes nothing."""


class Stopped(Exception):
    """The start's timeout (SIGTERM) arrived."""


@record
class Entry:
    """One home entry that must end as a link to its storage copy."""

    path: str
    storage: str
    kind: str = "dir"
    mode: Optional[int] = None


@record
class Settings:
    """Where the engine keeps its state, and its limits."""

    storage_dir: str
    backup_dir: str
    state_dir: str
    ssh_dir: str = ""
    lock_timeout: float = 30.0
    lease_seconds: int = 600
    use_flock: bool = True
    backup_keep: int = 10
    backup_max_age_days: int = 30
    backup_max_bytes: int = 5 * 1024**3
    remember_failures: bool = False
    log_file: str = ""
    log_max_bytes: int = 262144
    log_keep: int = 5


@record
class Outcome:
    """What happened (or, in check mode, would happen) to one entry."""

    path: str
    storage: str
    kind: str
    home_state: str = "absent"
    storage_state: str = "absent"
    actions: list[str] = []
    moved: list[str] = []
    backups: list[str] = []
    replaced_link: Optional[str] = None
    created: bool = False
    mode_changed: bool = False
    error: str = ""
    before: str = ""
    after: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.actions)


# Small safe primitives ---------------------------------------------------------
def clean(text: Any) -> str:
    """Text safe for one log line: control characters (a planted newline) become escapes."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", str(text))


def lstat_or_none(path: str) -> Optional[os.stat_result]:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def inside(child: str, parent: str) -> bool:
    child, parent = os.path.normpath(child), os.path.normpath(parent)
    return child == parent or child.startswith(parent.rstrip(os.sep) + os.sep)


def require_real(path: str, want: str, uid: int, what: str) -> os.stat_result:
    """lstat path and refuse anything but a real dir/file owned by uid."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise Refused(f"{what} {path} is a symbolic link; refusing to act through it (remove it by hand)")
    is_dir = stat.S_ISDIR(info.st_mode)
    if (want == "dir") != is_dir or (want == "file" and not stat.S_ISREG(info.st_mode)):
        kind = "directory" if want == "dir" else "regular file"
        raise Refused(f"{what} {path} is not a {kind}; move it aside by hand")
    if info.st_uid != uid:
        raise Refused(f"{what} {path} belongs to uid {info.st_uid}, not {uid}; refusing to use it")
    return info


def check_parents(root: str, path: str, uid: int) -> None:
    """Every existing directory between root (excluded) and path (excluded) must be real and ours."""
    relative = os.path.relpath(os.path.dirname(path), root)
    if relative == ".":
        return
    current = root
    for part in relative.split(os.sep):
        current = os.path.join(current, part)
        if lstat_or_none(current) is None:
            return
        require_real(current, "dir", uid, "storage folder")


def safe_makedirs(root: str, path: str, uid: int) -> None:
    """Create path (0700) below root, refusing any link or foreign directory on the way."""
    # The root is configured (the volume) or was checked by an earlier call; below it, nothing is followed.
    if root != path and not os.path.isdir(root):
        raise Refused(f"{root} is not a directory")
    current = root
    for part in os.path.relpath(path, root).split(os.sep):
        if part in ("", "."):
            continue
        current = os.path.join(current, part)
        try:
            os.mkdir(current, 0o700)
        except FileExistsError:
            pass
        require_real(current, "dir", uid, "folder")


def open_nofollow(path: str, flags: int, want: str, uid: int, mode: int = 0o600) -> int:
    """Open without following a final link, then check the opened object is ours and of the kind."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0), mode)
    info = os.fstat(fd)
    good = stat.S_ISDIR(info.st_mode) if want == "dir" else stat.S_ISREG(info.st_mode)
    if not good or info.st_uid != uid:
        os.close(fd)
        raise Refused(f"{path} is not a {want} owned by uid {uid}; refusing to use it")
    # O_NONBLOCK only kept a planted FIFO from blocking the open; a regular file is used blocking
    # (ansible-playbook refuses a non-blocking stdout).
    os.set_blocking(fd, True)
    return fd


def chmod_nofollow(path: str, mode: int) -> bool:
    """Set mode through a no-follow descriptor; a link is never followed. True when changed."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
            return False
        if stat.S_IMODE(info.st_mode) == mode:
            return False
        os.fchmod(fd, mode)
        return True
    finally:
        os.close(fd)


def _renameat2(src: str, dest: str) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    func = getattr(libc, "renameat2", None)
    if func is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if func(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dest), RENAME_NOREPLACE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), dest)


def place(src: str, dest: str) -> None:
    """Move src to dest on one file system; FileExistsError if dest exists (never replaced)."""
    info = os.lstat(src)
    if not stat.S_ISDIR(info.st_mode):
        os.link(src, dest, follow_symlinks=False)  # EEXIST when something appeared
        os.unlink(src)
        return
    try:
        _renameat2(src, dest)
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise
    # No RENAME_NOREPLACE here: mkdir is atomic, then each child moves without replacing.
    os.mkdir(dest, stat.S_IMODE(info.st_mode))
    for child in os.listdir(src):
        place(os.path.join(src, child), os.path.join(dest, child))
    os.rmdir(src)


def tree_bytes(path: str) -> int:
    """Bytes a copy of path needs (file sizes, plus a block per directory), never following links."""
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        return info.st_size + 4096
    total = 4096
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            total += os.lstat(os.path.join(folder, name)).st_size + 4096
    return total


def free_bytes(path: str) -> int:
    data = os.statvfs(path)
    return data.f_bavail * data.f_frsize


def remove_tree(path: str) -> None:
    """Remove our own partial copy (a file or a real directory; rmtree never follows links)."""
    info = lstat_or_none(path)
    if info is None:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def is_partial_of(staging: str, source: str) -> bool:
    """True when every file in staging also exists in source at least as large (an interrupted copy)."""
    s_info, h_info = lstat_or_none(staging), lstat_or_none(source)
    if s_info is None or h_info is None:
        return False
    if not stat.S_ISDIR(s_info.st_mode):
        return stat.S_ISREG(h_info.st_mode) and s_info.st_size <= h_info.st_size
    if not stat.S_ISDIR(h_info.st_mode):
        return False
    for folder, dirs, files in os.walk(staging):
        for name in dirs + files:
            relative = os.path.relpath(os.path.join(folder, name), staging)
            mine, theirs = lstat_or_none(os.path.join(folder, name)), lstat_or_none(os.path.join(source, relative))
            if mine is None or theirs is None or stat.S_IFMT(mine.st_mode) != stat.S_IFMT(theirs.st_mode):
                return False
            if stat.S_ISREG(mine.st_mode) and mine.st_size > theirs.st_size:
                return False
    return True


def _is_empty(path: str, info: os.stat_result) -> bool:
    if stat.S_ISDIR(info.st_mode):
        with os.scandir(path) as entries:
            return next(entries, None) is None
    return info.st_size == 0


def describe_side(path: str) -> str:
    """One line describing a path without following it, for the diff."""
    info = lstat_or_none(path)
    if info is None:
        return f"{path} absent"
    if stat.S_ISLNK(info.st_mode):
        broken = "" if os.path.exists(path) else " (broken)"
        return f"{path} -> {os.readlink(path)}{broken}"
    mode = f"{stat.S_IMODE(info.st_mode):04o}"
    if stat.S_ISDIR(info.st_mode):
        return f"{path} directory, mode {mode}, " + ("empty" if _is_empty(path, info) else "holding content")
    return f"{path} file, mode {mode}, {info.st_size} bytes"


# The engine ----------------------------------------------------------------------
class Engine:
    """Converge a list of entries; one backup stamp and one lock per run."""

    def __init__(self, settings: Settings, check_mode: bool = False, log: Optional[Callable[[str], None]] = None,
                 now: Optional[float] = None) -> None:
        self.s = settings
        self.check = check_mode
        self.uid = os.geteuid()
        self.stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        self.log = log or (lambda _msg: None)
        self.pruned: list[str] = []
        self.memory: dict[str, Any] = {}
        self._backup_stamp_dir = ""

    # Classification ------------------------------------------------------------
    def classify_home(self, entry: Entry) -> str:
        info = lstat_or_none(entry.path)
        if info is None:
            return "absent"
        if stat.S_ISLNK(info.st_mode):
            if os.readlink(entry.path) == entry.storage:
                return "correct_link"
            if not os.path.exists(entry.path):
                return "broken_link"
            target = lstat_or_none(entry.storage)
            if target is not None and os.path.samestat(os.stat(entry.path), target):
                return "correct_link"
            return "wrong_link"
        if stat.S_ISDIR(info.st_mode):
            return "real_dir"
        if stat.S_ISREG(info.st_mode):
            return "real_file"
        raise Refused(f"{entry.path} is neither a file, a directory nor a link (a socket or device?); "
                      "move it away by hand")

    def classify_storage(self, entry: Entry) -> str:
        if not inside(entry.storage, self.s.storage_dir) or os.path.normpath(entry.storage) == os.path.normpath(
                self.s.storage_dir):
            raise Refused(f"{entry.storage} is not inside the storage folder {self.s.storage_dir}")
        if not os.path.isdir(self.s.storage_dir):
            raise Refused(f"{self.s.storage_dir} (the storage folder) is not a directory; "
                          "is the persistent volume mounted?")
        check_parents(self.s.storage_dir, entry.storage, self.uid)
        info = lstat_or_none(entry.storage)
        if info is None:
            return "absent"
        if stat.S_ISLNK(info.st_mode):
            raise Refused(f"{entry.storage} on the storage side is a symbolic link (to {clean(os.readlink(entry.storage))}); "
                          "refusing to act through it; replace it with a real "
                          + ("directory" if entry.kind == "dir" else "file") + " by hand")
        if entry.kind == "dir" and not stat.S_ISDIR(info.st_mode):
            raise Refused(f"{entry.storage} is not a directory but the entry is declared as kind=dir; "
                          "move it aside or declare kind=file")
        if entry.kind == "file" and not stat.S_ISREG(info.st_mode):
            raise Refused(f"{entry.storage} is not a regular file but the entry is declared as kind=file; "
                          "move it aside or declare kind=dir")
        if info.st_uid != self.uid:
            raise Refused(f"{entry.storage} belongs to uid {info.st_uid}, not {self.uid}; refusing to use it")
        return "empty" if _is_empty(entry.storage, info) else "content"

    def check_overlap(self, entry: Entry, home_state: str) -> None:
        if home_state in ("real_dir", "real_file"):
            if inside(entry.storage, entry.path) or inside(entry.path, entry.storage):
                raise Refused(f"{entry.path} and {entry.storage} overlap; moving one into the other would lose data")
            if inside(self.s.backup_dir, entry.path):
                raise Refused(f"backup_dir {self.s.backup_dir} lies inside {entry.path}; choose a folder outside it")

    # State folder, backups --------------------------------------------------------
    def state_ready(self) -> None:
        """The state folder exists as a real directory of ours (created 0700)."""
        safe_makedirs(self.s.storage_dir, self.s.state_dir, self.uid) if inside(
            self.s.state_dir, self.s.storage_dir) else require_real(self.s.state_dir, "dir", self.uid, "state folder")

    def backup_path(self, source: str) -> str:
        """<backup dir>/<this run's stamp>/<absolute source path>, made unique, its parents created."""
        if not self._backup_stamp_dir:
            parent = self.s.storage_dir if inside(self.s.backup_dir, self.s.storage_dir) else os.path.dirname(
                self.s.backup_dir)
            safe_makedirs(parent, self.s.backup_dir, self.uid)
            chmod_nofollow(self.s.backup_dir, 0o700)
            self._backup_stamp_dir = os.path.join(self.s.backup_dir, self.stamp)
            safe_makedirs(self.s.backup_dir, self._backup_stamp_dir, self.uid)
        base = os.path.join(self._backup_stamp_dir, source.lstrip(os.sep))
        safe_makedirs(self._backup_stamp_dir, os.path.dirname(base), self.uid)
        candidate, counter = base, 1
        while lstat_or_none(candidate) is not None:
            candidate, counter = f"{base}.{counter}", counter + 1
        return candidate

    # Moving ----------------------------------------------------------------------
    def move(self, src: str, dest: str, outcome: Outcome) -> None:
        """Move src to the absent dest, never replacing; across file systems through a staging copy."""
        same_fs = os.lstat(src).st_dev == os.lstat(os.path.dirname(dest)).st_dev
        if same_fs:
            place(src, dest)
            return
        staging = dest + PARTIAL
        self.clear_staging(staging, src, outcome)
        needed, free = tree_bytes(src), free_bytes(os.path.dirname(dest))
        if needed > free:
            self.remember_full(outcome, free)
            raise Refused(f"{src} needs {needed // 1024} KiB but {os.path.dirname(dest)} has {free // 1024} KiB free; "
                          "left it in place")
        try:
            if stat.S_ISDIR(os.lstat(src).st_mode):
                shutil.copytree(src, staging, symlinks=True)
            else:
                shutil.copy2(src, staging, follow_symlinks=False)
        except (OSError, shutil.Error, Stopped) as exc:
            remove_tree(staging)
            full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "No space left" in str(exc)
            if full:
                self.remember_full(outcome, free_bytes(os.path.dirname(dest)))
                raise Refused(f"storage ran out of space while copying {src}; the partial copy was removed "
                              "and home is unchanged") from None
            if isinstance(exc, Stopped):
                raise Stopped(f"stopped by the start's timeout while copying {src} into storage; the partial copy "
                              "was removed and home is unchanged") from None
            raise
        try:
            place(staging, dest)
        except FileExistsError:
            # Something appeared at dest during the copy: keep both, ours goes to the backup.
            kept = self.backup_path(src)
            place(staging, kept)
            outcome.backups.append(kept)
            self.log(f"{dest} appeared while {src} was copied; kept it and backed up the home copy to {kept}")
        remove_tree(src)

    def clear_staging(self, staging: str, src: str, outcome: Outcome) -> None:
        """An interrupted copy of src is removed; anything else found there is backed up, never lost."""
        if lstat_or_none(staging) is None:
            return
        if is_partial_of(staging, src):
            remove_tree(staging)
            self.log(f"removed {staging}, an interrupted copy of {src}")
        else:
            kept = self.backup_path(staging)
            self.move(staging, kept, outcome)
            outcome.backups.append(kept)
            self.log(f"backed up {staging} to {kept} (left by an interrupted move)")

    def backup(self, src: str, outcome: Outcome, why: str) -> None:
        dest = self.backup_path(src)
        self.move(src, dest, outcome)
        outcome.backups.append(dest)
        self.log(f"backed up {src} to {dest} ({why})")

    def merge(self, home: str, store: str, outcome: Outcome) -> None:
        """Move every home item that storage lacks into storage; back up only the colliding ones."""
        for name in sorted(os.listdir(home)):
            src, dest = os.path.join(home, name), os.path.join(store, name)
            src_info, dest_info = os.lstat(src), lstat_or_none(dest)
            if dest_info is None:
                try:
                    self.move(src, dest, outcome)
                    outcome.moved.append(dest)
                    continue
                except FileExistsError:
                    dest_info = lstat_or_none(dest)
            if (dest_info is not None and stat.S_ISDIR(src_info.st_mode) and stat.S_ISDIR(dest_info.st_mode)
                    and dest_info.st_uid == self.uid):
                self.merge(src, dest, outcome)
            else:
                self.backup(src, outcome, f"{clean(dest)} already exists in storage")
        os.rmdir(home)

    # Planning and applying one entry ------------------------------------------------
    def plan(self, entry: Entry) -> tuple[Outcome, list[str]]:
        """Classify both sides and list the steps; changes nothing."""
        out = Outcome(entry.path, entry.storage, entry.kind)
        out.home_state = self.classify_home(entry)
        out.storage_state = self.classify_storage(entry)
        self.check_overlap(entry, out.home_state)
        out.before = describe_side(entry.path) + "\n" + describe_side(entry.storage) + "\n"
        steps: list[str] = []
        home = out.home_state
        if home in ("wrong_link", "broken_link"):
            steps.append("unlink")
            home = "absent"
        if home in ("real_dir", "real_file"):
            info = os.lstat(entry.path)
            if (home == "real_dir") != (entry.kind == "dir"):
                steps.append("backup_wrong_kind")
            elif out.storage_state == "content":
                steps.append("remove_empty_home" if _is_empty(entry.path, info)
                             else ("merge" if entry.kind == "dir" else "backup_collision"))
            else:
                if out.storage_state == "empty":
                    steps.append("remove_empty_storage")
                steps.append("move")
        if out.storage_state == "absent" and "move" not in steps:
            steps.append("create")
        if out.home_state != "correct_link":
            steps.append("link")
        if entry.mode is not None:
            steps.append("chmod")
        return out, steps

    def _predict(self, entry: Entry, step: str, out: Outcome, steps: list[str]) -> Optional[str]:
        """Plain words for a step (None for a chmod that is not needed)."""
        if step == "unlink":
            out.replaced_link = os.readlink(entry.path)
            return f"remove link {entry.path} (it pointed to {clean(out.replaced_link)})"
        if step in ("backup_wrong_kind", "backup_collision"):
            return f"back up {entry.path} to {os.path.join(self.s.backup_dir, self.stamp, entry.path.lstrip(os.sep))}"
        if step == "merge":
            moving, colliding = self.count_merge(entry.path, entry.storage)
            return (f"merge {entry.path} into {entry.storage}: {moving} item(s) move, "
                    f"{colliding} colliding item(s) to the backup")
        if step == "remove_empty_home":
            return f"remove empty {entry.path}"
        if step == "remove_empty_storage":
            return f"remove empty {entry.storage}"
        if step == "move":
            return f"move {entry.path} to {entry.storage}"
        if step == "create":
            return f"create empty {'directory' if entry.kind == 'dir' else 'file'} {entry.storage}"
        if step == "link":
            return f"link {entry.path} -> {entry.storage}"
        if entry.mode is None:
            return None
        if "create" in steps:
            final: Optional[int] = 0o700 if entry.kind == "dir" else 0o600
        else:
            source = lstat_or_none(entry.path if "move" in steps else entry.storage)
            final = None if source is None else stat.S_IMODE(source.st_mode)
        return None if final == entry.mode else f"set mode {entry.mode:04o} on {entry.storage}"

    def count_merge(self, home: str, store: str) -> tuple[int, int]:
        moving = colliding = 0
        for name in os.listdir(home):
            src, dest = os.path.join(home, name), os.path.join(store, name)
            dest_info = lstat_or_none(dest)
            if dest_info is None:
                moving += 1
            elif stat.S_ISDIR(os.lstat(src).st_mode) and stat.S_ISDIR(dest_info.st_mode):
                more, clash = self.count_merge(src, dest)
                moving, colliding = moving + more, colliding + clash
            else:
                colliding += 1
        return moving, colliding

    def _apply(self, entry: Entry, step: str, out: Outcome) -> bool:
        """Carry out one step; False when it turned out to be unnecessary."""
        if step == "unlink":
            if not os.path.islink(entry.path):
                raise Refused(f"{entry.path} is no longer a link; left it in place")
            os.unlink(entry.path)
            self.log(f"removed the link {entry.path} (it pointed to {out.replaced_link})")
        elif step in ("backup_wrong_kind", "backup_collision"):
            why = "declared as a " + entry.kind + " but found otherwise" if step == "backup_wrong_kind" else \
                "storage already held content"
            self.backup(entry.path, out, why)
        elif step == "merge":
            self.merge(entry.path, entry.storage, out)
            self.log(f"merged {entry.path} into {entry.storage}: {len(out.moved)} item(s) moved, "
                     f"{len(out.backups)} colliding item(s) backed up")
        elif step == "remove_empty_home":
            info = os.lstat(entry.path)
            if not _is_empty(entry.path, info):
                raise Refused(f"{entry.path} is no longer empty; left it in place")
            os.rmdir(entry.path) if stat.S_ISDIR(info.st_mode) else os.unlink(entry.path)
        elif step == "remove_empty_storage":
            info = os.lstat(entry.storage)
            if stat.S_ISLNK(info.st_mode) or not _is_empty(entry.storage, info):
                raise Refused(f"{entry.storage} is no longer empty; left {entry.path} in place")
            os.rmdir(entry.storage) if stat.S_ISDIR(info.st_mode) else os.unlink(entry.storage)
        elif step == "move":
            safe_makedirs(self.s.storage_dir, os.path.dirname(entry.storage), self.uid)
            self.clear_staging(entry.storage + PARTIAL, entry.path, out)
            try:
                self.move(entry.path, entry.storage, out)
            except FileExistsError:
                raise Refused(f"{entry.storage} appeared while moving {entry.path}; left it in place") from None
            out.moved.append(entry.storage)
            self.log(f"moved {entry.path} into {entry.storage}")
        elif step == "create":
            safe_makedirs(self.s.storage_dir, os.path.dirname(entry.storage), self.uid)
            if entry.kind == "dir":
                os.mkdir(entry.storage, 0o700)
            else:
                os.close(os.open(entry.storage, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
            out.created = True
        elif step == "link":
            os.makedirs(os.path.dirname(entry.path), exist_ok=True)
            os.symlink(entry.storage, entry.path)
            self.log(f"linked {entry.path} -> {entry.storage}")
        elif step == "chmod" and entry.mode is not None:
            if not chmod_nofollow(entry.storage, entry.mode):
                return False
            out.mode_changed = True
            self.log(f"set mode {entry.mode:04o} on {entry.storage}")
        return True

    def converge_entry(self, entry: Entry) -> Outcome:
        """Plan one entry, then apply it unless in check mode; a refusal is reported in the outcome."""
        try:
            out, steps = self.plan(entry)
        except (Refused, OSError) as exc:
            out = Outcome(entry.path, entry.storage, entry.kind, error=clean(exc))
            return out
        described = [(step, self._predict(entry, step, out, steps)) for step in steps]
        described = [(step, words) for step, words in described if words is not None]
        if self.check:
            out.actions = [words for _step, words in described]
            out.mode_changed = any(step == "chmod" for step, _words in described)
            out.created = any(step == "create" for step, _words in described)
            if any(step == "move" for step, _words in described):
                out.moved = [entry.storage]
            out.after = self.predict_after(entry, out, [s for s, _words in described])
            return out
        for step, words in described:
            try:
                if self._apply(entry, step, out):
                    out.actions.append(words)
            except (Refused, OSError) as exc:
                out.error = clean(f"could not {words}: {exc}. Steps already done: {out.actions or 'none'}. "
                                  "No data was deleted; rerun after fixing the cause.")
                break
        out.after = describe_side(entry.path) + "\n" + describe_side(entry.storage) + "\n"
        if out.backups:
            out.after += "".join(f"backed up to {path}\n" for path in out.backups)
        return out

    def predict_after(self, entry: Entry, out: Outcome, steps: list[str]) -> str:
        if not steps:
            return out.before
        lines = [f"{entry.path} -> {entry.storage}"]
        if "move" in steps:
            lines.append(f"{entry.storage} receives the content of {entry.path}")
        elif "merge" in steps:
            lines.append(f"{entry.storage} receives what it lacks from {entry.path}")
        elif "create" in steps:
            lines.append(f"{entry.storage} empty {'directory' if entry.kind == 'dir' else 'file'}")
        else:
            lines.append(describe_side(entry.storage))
        if entry.mode is not None:
            lines.append(f"{entry.storage} mode {entry.mode:04o}")
        if any(s.startswith("backup") for s in steps):
            lines.append(f"{entry.path} backed up under {os.path.join(self.s.backup_dir, self.stamp)}")
        return "\n".join(lines) + "\n"

    # SSH key modes -------------------------------------------------------------------
    def fix_ssh_modes(self) -> list[str]:
        """OpenSSH's modes inside the real storage .ssh; links inside are skipped, never followed."""
        ssh = self.s.ssh_dir
        info = lstat_or_none(ssh) if ssh else None
        if info is None or not stat.S_ISDIR(info.st_mode) or info.st_uid != self.uid:
            return []
        changed = []
        for name in sorted(os.listdir(ssh)):
            path = os.path.join(ssh, name)
            item = os.lstat(path)
            if not stat.S_ISREG(item.st_mode) or item.st_uid != self.uid:
                continue
            current = stat.S_IMODE(item.st_mode)
            if name.endswith(".pub"):
                want = 0o644
            elif name == "config" or name.startswith(("known_hosts", "authorized_keys")):
                want = current & ~0o022
            else:
                want = 0o600
            if want != current:
                if not self.check:
                    chmod_nofollow(path, want)
                changed.append(f"set mode {want:04o} on {path}")
        return changed

    # Retention -----------------------------------------------------------------------
    def prune_backups(self) -> list[str]:
        """Drop whole stamps beyond the count and older than the age, then oldest first above the size cap."""
        root = self.s.backup_dir
        info = lstat_or_none(root)
        if info is None or not stat.S_ISDIR(info.st_mode) or info.st_uid != self.uid:
            return []
        stamps = []
        for name in sorted(os.listdir(root)):
            path = os.path.join(root, name)
            item = os.lstat(path)
            if STAMP_RE.match(name) and stat.S_ISDIR(item.st_mode) and item.st_uid == self.uid:
                stamps.append((name, path, tree_bytes(path)))
        now, doomed = time.time(), []
        keep_newest = {name for name, _p, _b in stamps[-max(self.s.backup_keep, 1):]}
        for name, path, _size in stamps:
            made = time.mktime(time.strptime(name[:16], "%Y%m%dT%H%M%SZ")) - time.timezone
            if name not in keep_newest and now - made > self.s.backup_max_age_days * 86400 and name != self.stamp:
                doomed.append(path)
        left = [s for s in stamps if s[1] not in doomed]
        total = sum(size for _n, _p, size in left)
        for name, path, size in left[:-1]:
            if total <= self.s.backup_max_bytes:
                break
            if name != self.stamp:
                doomed.append(path)
                total -= size
        if not self.check:
            for path in doomed:
                shutil.rmtree(path)
                self.log(f"pruned the backup {path} (retention: keep {self.s.backup_keep}, "
                         f"{self.s.backup_max_age_days} days, {self.s.backup_max_bytes} bytes)")
        return doomed

    # Remembering a copy that cannot fit -----------------------------------------------------
    def _memory_file(self) -> str:
        return os.path.join(self.s.state_dir, "storage-engine.json")

    def load_memory(self) -> None:
        try:
            fd = open_nofollow(self._memory_file(), os.O_RDONLY, "file", self.uid)
        except (OSError, Refused):
            return
        with os.fdopen(fd, "rb") as handle:
            try:
                data = json.loads(handle.read(65536) or b"{}")
            except ValueError:
                data = {}
        self.memory = data if isinstance(data, dict) else {}

    def save_memory(self) -> None:
        if self.check or not self.s.remember_failures:
            return
        path = self._memory_file()
        if not self.memory.get("full") and lstat_or_none(path) is None:
            return
        try:
            fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "file", self.uid)
        except (OSError, Refused):
            return
        with os.fdopen(fd, "w") as handle:
            json.dump(self.memory, handle)

    def remember_full(self, outcome: Outcome, free: int) -> None:
        self.memory.setdefault("full", {})[outcome.path] = free

    def skipped_for_space(self, entry: Entry) -> Optional[int]:
        """The free space recorded when this entry last did not fit, while it has not changed since."""
        recorded = self.memory.get("full", {}).get(entry.path)
        if not self.s.remember_failures or not isinstance(recorded, int):
            return None
        parent = os.path.dirname(entry.storage)
        try:
            if free_bytes(parent) > recorded:
                return None
        except OSError:
            return None
        return recorded

    # The whole run -------------------------------------------------------------------
    def run(self, entries: list[Entry]) -> dict[str, Any]:
        """Converge every entry under one lock; return a report that never raises for one entry."""
        old_umask = os.umask(0o077)
        try:
            return self._run(entries)
        finally:
            os.umask(old_umask)

    def _run(self, entries: list[Entry]) -> dict[str, Any]:
        outcomes: list[Outcome] = []
        lock = None
        problems: list[str] = []
        ssh: list[str] = []
        if not self.check:
            try:
                self.state_ready()
                lock = Lock(self.s, self.uid, self.log)
                lock.acquire()
            except LockBusy as exc:
                return {"outcomes": [], "errors": [clean(exc)], "backups": [], "pruned": [], "ssh_modes": []}
            except (Refused, OSError) as exc:
                self.log(clean(f"going on without a lock: {exc}"))
                lock = None
            self.load_memory()
        try:
            for entry in entries:
                recorded = None if self.check else self.skipped_for_space(entry)
                if recorded is not None:
                    out = Outcome(entry.path, entry.storage, entry.kind,
                                  error=f"skipped {entry.path}: it did not fit in storage and the free space "
                                        f"({recorded // 1024} KiB) has not grown since")
                    outcomes.append(out)
                    continue
                out = self.converge_entry(entry)
                if not out.error and "full" in self.memory:
                    self.memory["full"].pop(entry.path, None)
                outcomes.append(out)
                if lock is not None:
                    lock.renew()
            ssh = self.fix_ssh_modes()
            for line in ssh:
                self.log(line)
            self.pruned = self.prune_backups()
        except Stopped as exc:
            problems.append(clean(exc))
        finally:
            self.save_memory()
            if lock is not None:
                lock.release()
        problems += [f"{o.path}: {o.error}" if not o.error.startswith("skipped") else o.error
                     for o in outcomes if o.error]
        return {
            "outcomes": outcomes,
            "errors": problems,
            "backups": [b for o in outcomes for b in o.backups],
            "pruned": self.pruned,
            "ssh_modes": ssh,
        }


# One lock across containers ---------------------------------------------------------------
class Lock:
    """A POSIX lock on <state>/pre-run.lock (NFS passes it between hosts); a leased mkdir lock without one."""

    def __init__(self, settings: Settings, uid: int, log: Callable[[str], None]) -> None:
        self.s = settings
        self.uid = uid
        self.log = log
        self.fd: Optional[int] = None
        self.dir = os.path.join(settings.state_dir, "pre-run.lock.d")
        self.held_dir = False

    def acquire(self) -> None:
        if self.s.use_flock:
            path = os.path.join(self.s.state_dir, "pre-run.lock")
            self.fd = open_nofollow(path, os.O_RDWR | os.O_CREAT, "file", self.uid)
            import fcntl

            deadline = time.monotonic() + self.s.lock_timeout
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except OSError as exc:
                    if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                        os.close(self.fd)
                        self.fd = None
                        break  # this file system has no locks: the mkdir lock below
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() >= deadline:
                    raise LockBusy(f"another start has held {path} for more than {self.s.lock_timeout:g}s; "
                                   "nothing was changed this time")
                time.sleep(0.1)
        self._acquire_dir()

    def _owner(self) -> tuple[Optional[int], str, int]:
        try:
            fd = open_nofollow(os.path.join(self.dir, "owner"), os.O_RDONLY, "file", self.uid)
        except (OSError, Refused):
            return None, "", 0
        with os.fdopen(fd, "rb") as handle:
            match = OWNER_RE.match(handle.read(200).decode("ascii", "replace"))
        if match is None:
            return None, "", 0
        if match.group(3) is None:  # no lease written: it runs from the owner file's change
            info = lstat_or_none(os.path.join(self.dir, "owner"))
            lease = int(info.st_mtime) + self.s.lease_seconds if info is not None else 0
            return int(match.group(1)), match.group(2), lease
        return int(match.group(1)), match.group(2), int(match.group(3))

    def _write_owner(self) -> None:
        lease = int(time.time()) + self.s.lease_seconds
        path = os.path.join(self.dir, "owner")
        fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "file", self.uid)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()} {os.uname().nodename[:64] or 'unknown'} {lease}\n")

    def _gone(self, pid: Optional[int], host: str, lease: int) -> Optional[str]:
        """Why the current holder may be overtaken, or None while it must be respected."""
        if pid is None:
            info = lstat_or_none(self.dir)
            if info is not None and time.time() - info.st_mtime > self.s.lease_seconds:
                return "took over a lock with no readable owner whose lease has expired"
            return None
        if time.time() > lease:
            return f"took over the lock of pid {pid} on {host}: its lease expired"
        if host == os.uname().nodename[:64] and not os.path.exists(f"/proc/{pid}"):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return f"took over the lock left by pid {pid} on {host}"
            except PermissionError:
                return None
        return None

    def _acquire_dir(self) -> None:
        deadline = time.monotonic() + self.s.lock_timeout
        while True:
            try:
                os.mkdir(self.dir, 0o700)
                self.held_dir = True
                self._write_owner()
                return
            except FileExistsError:
                require_real(self.dir, "dir", self.uid, "lock folder")
            pid, host, lease = self._owner()
            why = self._gone(pid, host, lease)
            if why is not None and self._owner() == (pid, host, lease):
                self.log(clean(why))
                self._remove_dir()
                continue
            if time.monotonic() >= deadline:
                raise LockBusy(f"the lock {self.dir} is held by pid {pid} on {clean(host) or 'an unknown host'} "
                               "until its lease expires; nothing was changed this time")
            time.sleep(0.1)

    def _remove_dir(self) -> None:
        try:
            os.unlink(os.path.join(self.dir, "owner"))
        except FileNotFoundError:
            pass
        try:
            os.rmdir(self.dir)
        except OSError:
            pass

    def renew(self) -> None:
        if self.held_dir:
            self._write_owner()

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.held_dir:
            self._remove_dir()
            self.held_dir = False


# Start-up entry point (pre-run.sh) ---------------------------------------------------------
class StartLog:
    """pre-run.log opened without following links; every problem also goes to stderr."""

    def __init__(self, path: str, uid: int, max_bytes: int, keep: int) -> None:
        self.fd: Optional[int] = None
        self.path = path
        self.failed = False
        if not path:
            return
        try:
            self._rotate(path, uid, max_bytes, keep)
            self.fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "file", uid)
        except (OSError, Refused) as exc:
            self.stderr(f"cannot write {path} ({clean(exc)}); logging here")

    @staticmethod
    def _rotate(path: str, uid: int, max_bytes: int, keep: int) -> None:
        info = lstat_or_none(path)
        if info is None or stat.S_ISLNK(info.st_mode) or info.st_size <= max_bytes:
            return
        for index in range(keep, 1, -1):
            older = f"{path}.{index - 1}"
            older_info = lstat_or_none(older)
            if older_info is not None and stat.S_ISREG(older_info.st_mode):
                os.rename(older, f"{path}.{index}")  # rename replaces a name; it never writes through a link
        if keep >= 1:
            os.rename(path, f"{path}.1")
        else:
            fd = open_nofollow(path, os.O_WRONLY | os.O_TRUNC, "file", uid)
            os.close(fd)

    @staticmethod
    def line(message: str) -> str:
        return f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} pre-run[{os.getpid()}]: {clean(message)}\n"

    def stderr(self, message: str) -> None:
        try:
            sys.stderr.write("reforge " + self.line(message))
            sys.stderr.flush()
        except OSError:
            pass

    def __call__(self, message: str, problem: bool = False) -> None:
        if problem:
            self.stderr(message)
        if self.fd is None:
            if not problem:
                self.stderr(message)
            return
        try:
            os.write(self.fd, self.line(message).encode())
        except OSError as exc:
            if not self.failed:
                self.stderr(f"cannot write {self.path} ({exc.strerror}); logging here")
                self.failed = True
            if not problem:
                self.stderr(message)


def _stop(_signum: int, _frame: Any) -> None:
    raise Stopped("stopped by the start's timeout")


# The startup phase: a background ansible-playbook, at most once per change or interval ------
# What a fingerprint of the project copy leaves out: caches and environments, which change
# without changing what the playbook does. Of .git only HEAD and the index count (a checkout,
# a pull or a reset rewrites them).
FINGERPRINT_SKIP = frozenset(("__pycache__", ".venv", "venv", ".tox", "node_modules", ".mypy_cache",
                              ".pytest_cache", ".ruff_cache", ".cache"))
# pre-run.sh has just relinked the entries and fixed the key modes: a run after a change of the
# project copy skips the links; a run because the interval elapsed only fast-forwards the repositories.
STARTUP_ON_CHANGE = ["--skip-tags", "storage_links"]
STARTUP_ON_INTERVAL = ["--tags", "git_repos"]
# Backdating the stamp's mtime by this much keeps a file written while the fingerprint was taken
# newer than the stamp even where the kernel's file timestamps lag the clock (one jiffy).
STAMP_MARGIN_NS = 50_000_000


def project_fingerprint(project: str, settings: str) -> str:
    """A cheap stat fingerprint (path, mtime, size, inode) of the project copy plus the startup settings."""
    import hashlib

    digest = hashlib.sha256(settings.encode())
    for folder, dirs, files in os.walk(project):  # os.walk follows no link
        relative = os.path.relpath(folder, project)
        if relative == ".git":
            names, dirs[:] = [n for n in ("HEAD", "index") if n in files], []
        else:
            dirs[:] = sorted(d for d in dirs if d not in FINGERPRINT_SKIP)
            names = sorted(files) + dirs
        for name in names:
            info = lstat_or_none(os.path.join(folder, name))
            if info is not None:
                digest.update(f"{relative}/{name}\0{info.st_mtime_ns}\0{info.st_size}\0{info.st_ino}\n"
                              .encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def read_stamp(path: str, uid: int) -> tuple[Optional[int], str]:
    """(due time or 0 for never, fingerprint) of the last successful run; (None, "") without one."""
    try:
        fd = open_nofollow(path, os.O_RDONLY, "file", uid)
    except (OSError, Refused):
        return None, ""
    with os.fdopen(fd, "rb") as handle:
        fields = handle.read(200).decode("ascii", "replace").split()
    if len(fields) != 2 or not fields[0].isdigit():
        return None, ""
    return int(fields[0]), fields[1]


def write_stamp(path: str, uid: int, due: int, fingerprint: str, mtime_ns: int) -> None:
    """Replace the stamp (never written through a link): a new file renamed over the old name."""
    temporary = f"{path}.{os.getpid()}"
    fd = open_nofollow(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, "file", uid)
    try:
        os.write(fd, f"{due} {fingerprint}\n".encode())
        os.utime(fd, ns=(mtime_ns, mtime_ns))
    finally:
        os.close(fd)
    os.rename(temporary, path)


def touch_stamp(path: str, uid: int, mtime_ns: int) -> None:
    """Mark the stamp as checked now, so the next start's builtins-only test passes again."""
    try:
        fd = open_nofollow(path, os.O_RDONLY, "file", uid)
    except (OSError, Refused):
        return
    try:
        os.utime(fd, ns=(mtime_ns, mtime_ns))
    finally:
        os.close(fd)


def startup_command(startup: dict[str, Any], state_dir: str, tags: list[str]) -> list[str]:
    tool = os.path.join(startup["venv"], "bin", startup["runner"])
    if startup["runner"] == "ansible-runner":
        return [tool, "run", os.path.join(state_dir, "runner"), "--project-dir", startup["project"],
                "--playbook", startup["playbook"], "--inventory",
                os.path.join(startup["project"], startup["inventory"]), "--rotate-artifacts", "5",
                "--cmdline", " ".join(startup["cmdline"] + tags)]
    return [tool, "-i", startup["inventory"], startup["playbook"], *tags, *startup["extra_args"]]


def startup_environment(startup: dict[str, Any]) -> dict[str, str]:
    """ansible's settings for the background run: pipelining, no callback the venv may lack, no colour, no bytecode."""
    env = dict(os.environ, PATH=os.path.join(startup["venv"], "bin") + os.pathsep + os.environ.get("PATH", ""))
    config = os.path.join(startup["project"], "ansible.cfg")
    if os.path.isfile(config):
        env["ANSIBLE_CONFIG"] = config
    # Only the stdout callback (an empty value is refused): ansible.cfg may enable one the venv lacks,
    # which would put a warning into startup.log at every run.
    env.update(ANSIBLE_PIPELINING="True", ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.default", ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="False",
               # The controller imports the copy's plugins (the link_entries filter): without this it would
               # write __pycache__ into the copy, which changes its fingerprint and reruns the next start.
               PYTHONDONTWRITEBYTECODE="1")
    return env


def run_startup_in_background(cmd: list[str], startup: dict[str, Any], state_dir: str, out: int, uid: int,
                              stamp: tuple[str, int, str, int]) -> int:
    """Fork a detached child that runs cmd at low priority and writes the stamp when it succeeds."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()  # out of the start's process group: its timeout never reaches the run
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        code = _startup_child(cmd, startup, state_dir, out, uid, stamp)
    except BaseException as exc:  # noqa: BLE001 - the child must never return into the start
        try:
            os.write(out, StartLog.line(f"startup phase failed: {exc!r}").encode())
        except OSError:
            pass
    finally:
        os._exit(code)


def _startup_child(cmd: list[str], startup: dict[str, Any], state_dir: str, out: int, uid: int,
                   stamp: tuple[str, int, str, int]) -> int:
    import fcntl
    import subprocess

    lock = open_nofollow(os.path.join(state_dir, "startup.lock"), os.O_RDWR | os.O_CREAT, "file", uid)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.write(out, StartLog.line("startup phase skipped: another run holds startup.lock").encode())
        return 0
    os.nice(10)
    ionice = shutil.which("ionice")
    if ionice:
        cmd = [ionice, "-c", "2", "-n", "7", "-t", *cmd]
    rc = subprocess.call(cmd, cwd=startup["project"], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                         env=startup_environment(startup))
    path, due, fingerprint, mtime_ns = stamp
    if rc == 0:
        write_stamp(path, uid, due, fingerprint, mtime_ns)
        after = f"after {time.strftime('%Y-%m-%dT%H:%M:%S%z', time.localtime(due))} or " if due else ""
        os.write(out, StartLog.line(f"startup phase finished; it runs again {after}after a change").encode())
    else:
        os.write(out, StartLog.line(f"startup phase failed (exit {rc}); the next start runs it again").encode())
    return rc


def start_startup_phase(config: dict[str, Any], log: StartLog, uid: int) -> None:
    """Launch the startup playbook in the background, detached, logging to startup.log, when it is due.

    It is due when the project copy or the startup settings changed since the last successful run
    (the stamp's fingerprint differs) or the interval elapsed; otherwise only the stamp's mtime is
    renewed, so that the next start's builtins-only test passes again.
    """
    startup = config["startup"]
    tool = os.path.join(startup["venv"], "bin", startup["runner"])
    playbook = os.path.join(startup["project"], startup["playbook"])
    if not os.access(tool, os.X_OK):
        log(f"startup phase skipped: {tool} is missing")
        return
    if not os.path.isfile(playbook):
        log(f"startup phase skipped: {playbook} is missing")
        return
    state_dir = config["state_dir"]
    stamp_path = os.path.join(state_dir, "startup.stamp")
    checked_ns = time.time_ns() - STAMP_MARGIN_NS
    fingerprint = project_fingerprint(startup["project"], json.dumps(startup, sort_keys=True))
    due, recorded = read_stamp(stamp_path, uid)
    interval = int(startup.get("interval", 0))
    if due is not None and recorded == fingerprint:
        if due == 0 or checked_ns < due * 1_000_000_000:
            touch_stamp(stamp_path, uid, checked_ns)
            log("startup phase not needed: nothing changed since its last run")
            return
        tags = STARTUP_ON_INTERVAL
    else:
        tags = STARTUP_ON_CHANGE
    cmd = startup_command(startup, state_dir, tags)
    startup_log = os.path.join(state_dir, "startup.log")
    try:
        StartLog._rotate(startup_log, uid, config["log_max_bytes"], config["log_keep"])
        out = open_nofollow(startup_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "file", uid)
    except (OSError, Refused) as exc:
        log(f"startup phase skipped: cannot write {startup_log} ({clean(exc)})", problem=True)
        return
    os.write(out, StartLog.line("startup phase: " + " ".join(cmd)).encode())
    next_due = (checked_ns // 1_000_000_000 + interval) if interval > 0 else 0
    try:
        pid = run_startup_in_background(cmd, startup, state_dir, out, uid,
                                        (stamp_path, next_due, fingerprint, checked_ns))
    finally:
        os.close(out)
    log(f"startup phase started in the background (pid {pid}), logging to {startup_log}")


def rebase(path: str, rendered: str, runtime: str) -> str:
    """A path rendered below one root, moved below the root this start really uses."""
    if rendered and inside(path, rendered):
        return os.path.normpath(runtime + path[len(rendered.rstrip(os.sep)):])
    return path


def start_entries(config: dict[str, Any], storage: str, home: str, log: "StartLog") -> list[Entry]:
    """The configured entries as absolute paths; a name that leaves home is refused."""
    entries = []
    modes = config.get("modes") or {}
    for kind, names in (("dir", config["dirs"]), ("file", config["files"])):
        for name in names:
            if name.startswith("/") or ".." in name.split("/") or name in ("", "."):
                log(f"skipped the entry {name!r}: names must be relative paths inside home, without '..'",
                    problem=True)
                continue
            mode = int(str(modes[name]), 8) if modes.get(name) else None
            entries.append(Entry(os.path.join(home, name), os.path.join(storage, name), kind, mode))
    return entries


def main(argv: list[str]) -> int:
    """pre-run.sh's worker: link every entry of the JSON config, log, then the startup phase."""
    os.umask(0o077)
    # Nothing started from here (the startup phase) inherits the bench's listing switch.
    os.environ.pop("REFORGE_PRERUN_STAGE", None)
    started = time.monotonic()
    config = json.loads(argv[1])
    storage, home, notebooks_dir = (os.path.normpath(a) for a in argv[2:5])
    uid = os.geteuid()
    if not os.path.isdir(storage):
        sys.stderr.write(f"reforge pre-run: {clean(storage)} is missing; nothing was linked\n")
        return 0

    def under(path: str) -> str:
        return rebase(path, config["storage_dir"], storage)

    config["state_dir"] = under(config["state_dir"])
    settings = Settings(
        storage_dir=storage, backup_dir=under(config["backup_dir"]), state_dir=config["state_dir"],
        ssh_dir=os.path.join(storage, ".ssh") if config.get("ssh") else "",
        lock_timeout=float(config["lock_timeout"]), lease_seconds=int(config["lease_seconds"]),
        use_flock=not os.environ.get("REFORGE_PRERUN_NO_FLOCK"),
        backup_keep=int(config["backup_keep"]), backup_max_age_days=int(config["backup_max_age_days"]),
        backup_max_bytes=int(config["backup_max_bytes"]), remember_failures=True,
    )
    log = StartLog("", uid, 0, 0)
    try:
        Engine(settings).state_ready()
        log = StartLog(os.path.join(settings.state_dir, "pre-run.log"), uid, int(config["log_max_bytes"]),
                       int(config["log_keep"]))
    except (OSError, Refused) as exc:
        log(f"cannot write {os.path.join(settings.state_dir, 'pre-run.log')} (read-only storage?): {clean(exc)}",
            problem=True)
    signal.signal(signal.SIGTERM, _stop)
    entries = start_entries(config, storage, home, log)
    notebooks = config.get("notebooks_git")
    if notebooks:
        if os.path.isdir(notebooks_dir):
            entries.append(Entry(os.path.join(notebooks_dir, "git"), under(notebooks["storage"]), "dir", None))
        else:
            log(f"skipped the git link: {notebooks_dir} does not exist")
    try:
        report = Engine(settings, log=log).run(entries)
    except Stopped as exc:
        report = {"outcomes": [], "errors": [clean(exc)]}
    for problem in report["errors"]:
        log(problem, problem=True)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if config.get("startup"):
        startup = config["startup"]
        startup["project"], startup["venv"] = under(startup["project"]), under(startup["venv"])
        start_startup_phase(config, log, uid)
    worked = sum(1 for o in report["outcomes"] if o.changed or o.error)
    log(f"done in {int((time.monotonic() - started) * 1000)} ms; {worked} entries needed work")
    return 0


if __name__ == "__main__":
    # pre-run.sh runs this file as the start's worker; its exit status is the worker's.
    raise SystemExit(main(sys.argv))
