#!/usr/bin/python
"""Read-only facts the doctor needs about links, file modes and free space, in one module run."""

from __future__ import annotations

import os
import stat
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: filesystem_facts
short_description: Read links, file modes and free space in one pass
description:
  - Reports, for each link to check, whether the path is a link to the expected target, and if not
    what is there instead; the modes of the files in directories (for SSH keys); and the free space
    of the file systems holding some paths.
  - Gathers everything in one run, because each module run costs a round trip to the host.
  - Never changes anything, and never reads a file's content.
options:
  links:
    description: Entries, relative to O(links_from), that must be symlinks to the same entry in O(links_to).
    type: list
    elements: str
    default: []
  links_from:
    description: The directory holding the links (the home directory).
    type: str
  links_to:
    description: >-
      The directory the links must lead into (the persistent volume); when it is not a directory,
      no link is checked and RV(links_to_exists) is false.
    type: str
  directories:
    description: Directories whose own mode and whose files' modes are reported (links are followed).
    type: list
    elements: str
    default: []
  free_space:
    description: Paths whose file system's free space is reported.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author: reforge
"""

EXAMPLES = r"""
- name: Read the links into /storage, the key modes and the free space
  filesystem_facts:
    links: [.local, .ssh, .gitconfig]
    links_from: /root
    links_to: /storage
    directories: [/root/.ssh]
    free_space: [/storage, /root/miniforge3]
  register: __doctor_files
"""

RETURN = r"""
links_to_exists:
  description: Whether O(links_to) is a directory, so that the links were checked.
  returned: always
  type: bool
links:
  description: One entry per link to check, in order; empty when O(links_to) is not a directory.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The entry, as given in O(links).
      type: str
    path:
      description: The path that must be a link.
      type: str
    target:
      description: Where it must lead.
      type: str
    state:
      description: >-
        C(linked) (a link to the target, which exists), C(dangling) (a link to the target, which does
        not exist), C(wrong) (a link elsewhere), C(real) (a real file or directory), C(missing).
      type: str
    kind:
      description: What is at the path without following a link (C(link), C(directory), C(file), C(other), C(missing)).
      type: str
    link_target:
      description: The link's text as stored; null when the path is not a link.
      type: str
    realpath:
      description: The path with every link resolved.
      type: str
directories:
  description: One entry per directory, in order.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The directory.
      type: str
    exists:
      description: Whether it is a directory (after following links).
      type: bool
    mode:
      description: Its permission bits in octal, for example C(0700); null when it does not exist.
      type: str
    files:
      description: Its regular files (not recursive), sorted by name, each with C(name), C(path) and C(mode).
      type: list
      elements: dict
free_space:
  description: One entry per path, in order.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The path.
      type: str
    exists:
      description: Whether the path exists.
      type: bool
    mount:
      description: The mount point of its file system; null when the path does not exist.
      type: str
    free_bytes:
      description: Bytes available to the user; null when the path does not exist.
      type: int
    total_bytes:
      description: Size of the file system; null when the path does not exist.
      type: int
changed:
  description: Always false; the module only reads.
  returned: always
  type: bool
"""

ARGUMENT_SPEC: dict[str, Any] = {
    "links": {"type": "list", "elements": "str", "default": []},
    "links_from": {"type": "str"},
    "links_to": {"type": "str"},
    "directories": {"type": "list", "elements": "str", "default": []},
    "free_space": {"type": "list", "elements": "str", "default": []},
}


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


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if module.params["links"] and not module.params["links_to"]:
        module.fail_json(msg="links needs links_to, the directory the links must lead into.")
    module.exit_json(changed=False, **gather(module.params))


if __name__ == "__main__":
    main()
