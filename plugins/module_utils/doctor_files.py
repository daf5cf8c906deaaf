# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only facts the doctor needs about links, file modes, free space and the link engine's backups,
shared by its modules."""

from __future__ import annotations

import os
import stat
from typing import Any, Optional


def kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


def same_file(one: str, other: str) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


def link_facts(path: str, target: str) -> dict[str, Any]:
    """What is at `path`, and whether it is a link leading to `target`."""
    facts: dict[str, Any] = {"path": path, "target": target, "kind": "missing", "link_target": None,
                             "realpath": os.path.realpath(path), "state": "missing"}
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return facts
    facts["kind"] = kind_of(mode)
    if not stat.S_ISLNK(mode):
        facts["state"] = "real"
        return facts
    facts["link_target"] = os.readlink(path)
    leads_to_target = facts["realpath"] == os.path.realpath(target) or same_file(path, target)
    if not leads_to_target:
        facts["state"] = "wrong"
    else:
        facts["state"] = "linked" if os.path.exists(path) else "dangling"
    return facts


def octal(mode: int) -> str:
    return "%04o" % stat.S_IMODE(mode)


def directory_facts(path: str) -> dict[str, Any]:
    """A directory's mode and its regular files' modes; never their content."""
    if not os.path.isdir(path):
        return {"path": path, "exists": False, "mode": None, "files": []}
    files = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        try:
            info = os.lstat(full)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode):
            files.append({"name": name, "path": full, "mode": octal(info.st_mode)})
    return {"path": path, "exists": True, "mode": octal(os.stat(path).st_mode), "files": files}


def mount_point(path: str) -> str:
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def free_space_facts(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {"path": path, "exists": False, "mount": None, "free_bytes": None, "total_bytes": None}
    usage = os.statvfs(path)
    return {
        "path": path,
        "exists": True,
        "mount": mount_point(path),
        "free_bytes": usage.f_bavail * usage.f_frsize,
        "total_bytes": usage.f_blocks * usage.f_frsize,
    }


def gather(params: dict[str, Any]) -> dict[str, Any]:
    links_to = os.path.expanduser(params["links_to"] or "")
    links_to_exists = bool(links_to) and os.path.isdir(links_to)
    links = []
    if links_to_exists:
        links_from = os.path.expanduser(params["links_from"] or "~")
        for name in params["links"]:
            facts = link_facts(os.path.join(links_from, name), os.path.join(links_to, name))
            links.append(dict(facts, name=name))
    return {
        "links_to_exists": links_to_exists,
        "links": links,
        "directories": [directory_facts(os.path.expanduser(p)) for p in params["directories"]],
        "free_space": [free_space_facts(os.path.expanduser(p)) for p in params["free_space"]],
    }


def backup_facts(path: Optional[str]) -> dict[str, Any]:
    """Every entry under the backup folder that is not a directory, sorted; no link is followed, and a
    backup folder that is itself a link is not read."""
    if not path:
        return {"path": path, "isdir": False, "files": []}
    path = os.path.expanduser(path)
    try:
        isdir = stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        isdir = False
    files = []
    if isdir:
        for root, dirs, names in os.walk(path, followlinks=False):
            for name in dirs + names:
                full = os.path.join(root, name)
                try:
                    if not stat.S_ISDIR(os.lstat(full).st_mode):
                        files.append(full)
                except FileNotFoundError:
                    continue
    return {"path": path, "isdir": isdir, "files": sorted(files)}
