# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide by file identity whether a path may be installed into or removed as a conda prefix.

Shared by the conda_prefix_info and conda_prefix_remove modules (stdlib only).
Paths are compared as files, by ``(st_dev, st_ino)``, never as strings: a bind
mount or a case variant of the home directory (macOS) has another name but the
same identity. Removal never crosses into another mount.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

# micromamba: Miniforge unpacks it (then links _conda to it) before anything else.
MARKERS = ("conda-meta", "condabin/conda", "bin/conda", "_conda", "micromamba")
MOUNTINFO = "/proc/self/mountinfo"
# A prefix may not sit directly in one of these (a prefix in /opt or in root's home is normal).
PARENTS_REFUSED = ("/", "/usr", "/etc", "/proc", "/sys", "/dev", "/boot", "/bin", "/sbin", "/lib", "/lib64")

Identity = Tuple[int, int]


class PrefixRemovalError(Exception):
    """The removal met something it must not touch; what is left is intact."""


def home_dir() -> str:
    """The user's home as ``~`` means it: $HOME when set, else the password database's entry."""
    return os.environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir


def user_name() -> str:
    """The name of the user the module runs as (the uid when it has none)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def identity(path: str, follow: bool = True) -> Optional[Identity]:
    """(st_dev, st_ino) of a path, or None when it does not exist."""
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def ancestors(path: str) -> List[str]:
    """The path and every directory above it, up to the root."""
    out = [path]
    while path != os.path.dirname(path):
        path = os.path.dirname(path)
        out.append(path)
    return out


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_points(mountinfo: str = MOUNTINFO) -> Optional[List[str]]:
    """Every mount point the process sees, or None where the kernel has no mountinfo (macOS)."""
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    return [_unescape(line.split(" ")[4]) for line in lines if len(line.split(" ")) > 4]


def mounts_at_or_below(real: str, mounts: Optional[Iterable[str]]) -> List[str]:
    """Mount points at or below a real path; without mountinfo, whether the path itself is one."""
    if mounts is None:
        return [real] if os.path.ismount(real) else []
    return sorted(m for m in mounts if m == real or m.startswith(real.rstrip("/") + "/"))


def expected_realpath(path: str, home: str) -> str:
    """Where `path` should really be if nothing but the home directory is a link."""
    if path == home or path.startswith(home + os.sep):
        return os.path.realpath(home) + path[len(home):]
    return path


def _is_regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def describe(path: str, home: str) -> Dict[str, Any]:
    """Facts about the would-be prefix (links never followed for the prefix itself)."""
    path = os.path.normpath(path)
    home = os.path.normpath(home)
    real = os.path.realpath(path)
    exists = os.path.lexists(path)
    is_link = os.path.islink(path)
    is_dir = os.path.isdir(path) and not is_link
    markers = [m for m in MARKERS if is_dir and os.path.lexists(os.path.join(path, m))]
    conda_exe = os.path.join(path, "bin", "conda")
    return {
        "path": path,
        "realpath": real,
        "home_realpath": os.path.realpath(home),
        "exists": exists,
        "is_link": is_link,
        "is_dir": is_dir,
        "is_empty": not exists or (is_dir and not os.listdir(path)),
        "escapes": is_link or real != expected_realpath(path, home),
        "owned_by_user": exists and os.lstat(path).st_uid == os.getuid(),
        "markers": markers,
        "is_conda_prefix": bool(markers),
        "has_history": is_dir and _is_regular_file(os.path.join(path, "conda-meta", "history")),
        "complete": os.path.isdir(os.path.join(path, "conda-meta")) and os.access(conda_exe, os.X_OK),
    }


def _same_as(prefix: Identity, names: Iterable[str]) -> Optional[str]:
    """The first of `names` that is the same file as the prefix."""
    for name in names:
        if identity(name) == prefix:
            return name
    return None


def identity_refusal(facts: Dict[str, Any], home: str, system_dirs: Iterable[str]) -> str:
    """Why the prefix is the root, home, an ancestor of home or a system dir, by identity; '' if none."""
    own = identity(facts["path"])
    home_side = ancestors(os.path.normpath(home)) + ancestors(facts["home_realpath"])
    same = _same_as(own, home_side) if own is not None else None
    if same is not None:
        what = "the root directory" if same == "/" else (
            "the home directory" if identity(same) == identity(home) else "an ancestor of the home directory")
        alias = "" if same == facts["path"] else " under another name"
        return f"it is {what} ('{same}'){alias}"
    same = _same_as(own, system_dirs) if own is not None else None
    if same is not None:
        return f"it is the system directory '{same}'"
    parent = identity(os.path.dirname(facts["realpath"]))
    same = _same_as(parent, PARENTS_REFUSED) if parent is not None else None
    if same is not None:
        return f"it sits directly in the system directory '{same}'"
    return ""


def ownership_refusal(facts: Dict[str, Any], user: str) -> str:
    """Why an existing path is not a conda prefix under the user's control; '' if it is."""
    if not facts["exists"]:
        return ""
    if facts["escapes"]:
        return (f"its real path is '{facts['realpath']}', reached through a symlink, "
                "so acting on it would act on something else")
    if not facts["is_dir"]:
        return "it is not a directory"
    if not facts["owned_by_user"]:
        return f"it is not owned by {user}"
    if not (facts["is_conda_prefix"] or facts["is_empty"]):
        return "it is not a conda prefix (no conda-meta/, condabin/conda, bin/conda, _conda or micromamba inside)"
    return ""


def removal_refusal(facts: Dict[str, Any], mounts: Optional[Iterable[str]]) -> str:
    """Why an existing conda-looking directory must still not be deleted; '' if it may be."""
    if not facts["exists"]:
        return ""
    inside = mounts_at_or_below(facts["realpath"], mounts)
    if inside:
        return ("it is or contains a mount point (" + ", ".join(f"'{m}'" for m in inside)
                + "), whose contents belong to another file system")
    if not (facts["has_history"] or facts["is_empty"]):
        return ("it has no conda-meta/history regular file, so it is not a finished conda install; "
                "remove it by hand if it really is one")
    return ""


def refusal(facts: Dict[str, Any], home: str, system_dirs: Iterable[str], user: str,
            purpose: str, mounts: Optional[Iterable[str]] = None) -> str:
    """One sentence naming why the prefix is refused for `purpose` (install or remove); '' if it is not."""
    reason = identity_refusal(facts, home, system_dirs) or ownership_refusal(facts, user)
    if not reason and purpose == "remove":
        reason = removal_refusal(facts, mount_points() if mounts is None else mounts)
    return f"Refusing prefix '{facts['path']}': {reason}." if reason else ""


# Removal ----------------------------------------------------------------------
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _clear(dir_fd: int, where: str, dev: int, mounts: Set[str]) -> None:
    """Delete everything inside an open directory, never leaving its file system."""
    with os.scandir(dir_fd) as entries:
        names = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    for name, is_dir in names:
        here = os.path.join(where, name)
        if not is_dir:
            os.unlink(name, dir_fd=dir_fd)
            continue
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        try:
            if os.fstat(fd).st_dev != dev or here in mounts:
                raise PrefixRemovalError(f"'{here}' is a mount point; it and its parents are left in place")
            _clear(fd, here, dev, mounts)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=dir_fd)


def remove_prefix(path: str, expected: Identity, mounts: Optional[Iterable[str]]) -> None:
    """Remove the prefix directory `path`, which must still be the file `expected`."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != expected:
            raise PrefixRemovalError(f"'{path}' was replaced while it was being checked")
        _clear(fd, os.path.realpath(path), st.st_dev, set(mounts or ()))
    finally:
        os.close(fd)
    os.rmdir(path)
