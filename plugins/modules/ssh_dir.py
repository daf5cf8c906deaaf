#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The .ssh directory in one module run: the directory and its mode, the key modes, the ssh config block
and the pinned known_hosts block, never acting through a link."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ssh_dir
short_description: Put a .ssh directory, its key modes, an ssh config block and a known_hosts block in place
description:
  - Does in one run what the directory, link checks, key modes and two C(blockinfile) tasks of the
    ssh_keys role did in eight, since each task is a round trip to the host.
  - Creates O(path) with mode C(0700), or sets that mode. O(path) may be a link only when it points
    straight at a real directory (a relative link counts from the folder holding it); the mode then goes
    on that directory and the link is kept. A link to a link, or to nothing, is refused.
  - Refuses C(config), C(known_hosts) and the O(keys) when they are links, before anything changes;
    nothing is read or written through a link, because a teammate can plant one on shared storage.
  - Every mode is set on a descriptor opened without following links (C(O_NOFOLLOW), C(fchmod)).
  - 'Writes O(config) between the markers C(# BEGIN/END reforge ssh_keys: hosts) at the top of
    C(config) (mode C(0600)), and O(known_hosts) between C(# BEGIN/END reforge ssh_keys: pinned host keys)
    at the end of C(known_hosts), exactly as C(ansible.builtin.blockinfile) does; an empty block removes
    its markers. C(known_hosts) keeps mode C(0600) or C(0644) (ssh itself rewrites it as C(0600)); any
    other mode becomes C(0644). A changed file is replaced atomically (a temporary file in the same
    directory, then a rename), keeping its owner when run as root.'
  - Check mode changes nothing and reports what would change; C(--diff) shows each file's change.
options:
  path:
    description: The .ssh directory, an absolute path.
    type: path
    required: true
  config:
    description: The ssh config lines kept between the markers at the top of C(config); empty removes the block.
    type: str
    default: ""
  known_hosts:
    description: The known_hosts lines kept between the markers in C(known_hosts); empty removes the block.
    type: str
    default: ""
  keys:
    description:
      - Key files in O(path) and the mode each must have. A missing key is left alone (the key tasks
        create it); a key that is a link is refused.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The file name inside O(path).
        type: str
        required: true
      mode:
        description: The mode, in octal.
        type: str
        required: true
  public_key:
    description:
      - A public key file in O(path) to return the content of, so that showing it costs no second
        round trip. Only a regular file is read, without following a link.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - reforge.workstation.common
attributes:
  check_mode:
    support: full
    details: Changes nothing and reports what would change in RV(actions).
  diff_mode:
    support: full
    details: Shows each change before and after, the directory's and the files' modes and the files' content.
"""

EXAMPLES = r"""
- name: Put the .ssh directory, the key modes and the ssh config and known_hosts blocks in place
  reforge.workstation.ssh_dir:
    path: /root/.ssh
    config: |
      Host github.com
          User git
    known_hosts: github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
    keys:
      - {name: id_ed25519, mode: "0600"}
      - {name: id_ed25519.pub, mode: "0644"}
"""

RETURN = r"""
changed:
  description: Whether anything changed (in check mode, would change).
  returned: always
  type: bool
path:
  description: The real directory the modes and files went into (the link's target when O(path) is a link).
  returned: always
  type: str
  sample: /storage/.ssh
actions:
  description: What changed, or would change in check mode, one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["set mode 0700 on /storage/.ssh", "inserted the block in /storage/.ssh/config"]
keys:
  description: Each of O(keys) as found before the run, in order, with C(name), C(exists) and C(mode).
  returned: always
  type: list
  elements: dict
public_key:
  description: The content of O(public_key); null when it is not given or not a regular file.
  returned: always
  type: str
"""

import errno
import os
import stat
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule


ARGUMENT_SPEC: dict[str, Any] = {
    "path": {"type": "path", "required": True},
    "config": {"type": "str", "default": ""},
    "known_hosts": {"type": "str", "default": ""},
    "public_key": {"type": "str"},
    "keys": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "no_log": False,
        "options": {
            "name": {"type": "str", "required": True},
            "mode": {"type": "str", "required": True},
        },
    },
}

CONFIG = "config"
KNOWN_HOSTS = "known_hosts"
CONFIG_MARKER = "# {mark} reforge ssh_keys: hosts"
KNOWN_HOSTS_MARKER = "# {mark} reforge ssh_keys: pinned host keys"
CONFIG_MODE = 0o600
KNOWN_HOSTS_MODES = (0o600, 0o644)
KNOWN_HOSTS_DEFAULT_MODE = 0o644
DIR_MODE = 0o700
LINESEP = b"\n"
NOFOLLOW_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class Refused(Exception):
    """A state the module will not act on; the message says why and what to do."""


def octal(mode: int) -> str:
    return "%04o" % stat.S_IMODE(mode)


def lstat_at(name: str, dir_fd: Optional[int]) -> Optional[os.stat_result]:
    if dir_fd is None:
        return None
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def resolve_dir(path: str) -> tuple[str, Optional[os.stat_result]]:
    """The real directory to manage and its lstat (None when it does not exist yet)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path, None
    if stat.S_ISDIR(info.st_mode):
        return path, info
    if not stat.S_ISLNK(info.st_mode):
        raise Refused("%s exists but is not a directory; move it aside so the .ssh directory can be created." % path)
    link = os.readlink(path)
    # A relative link counts from the folder holding the link.
    target = link if link.startswith("/") else os.path.dirname(path) + "/" + link
    try:
        target_info: Optional[os.stat_result] = os.lstat(target)
    except FileNotFoundError:
        target_info = None
    if target_info is None or not stat.S_ISDIR(target_info.st_mode):
        raise Refused(
            "%s is a link to %s, which is not a real directory (a link, or missing). Keys and modes are never "
            "applied through a second link, because a teammate can plant one on shared storage: make %s a real "
            "directory." % (path, target, target)
        )
    return target, target_info


def open_dir(path: str) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    if not stat.S_ISDIR(os.fstat(fd).st_mode):  # pragma: no cover - O_DIRECTORY guarantees it
        os.close(fd)
        raise Refused("%s is not a directory." % path)
    return fd


def chmod_nofollow(name: str, mode: int, dir_fd: int, full: str) -> None:
    """Set a regular file's mode through a descriptor that did not follow a link."""
    try:
        fd = os.open(name, NOFOLLOW_READ, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise Refused("%s became a link; nothing is changed through it." % full)
        if error.errno != errno.EACCES or not hasattr(os, "O_PATH"):
            raise
        # Unreadable (mode 0000 and not root): an O_PATH descriptor still names the file, not a link.
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=dir_fd)  # pylint: disable=no-member
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise Refused("%s is not a regular file; its mode is left alone." % full)
            os.chmod("/proc/self/fd/%d" % fd, mode)
        finally:
            os.close(fd)
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Refused("%s is not a regular file; its mode is left alone." % full)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def read_at(name: str, dir_fd: int) -> bytes:
    fd = os.open(name, NOFOLLOW_READ, dir_fd=dir_fd)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def with_block(original: Optional[bytes], marker: str, block: str, at_top: bool) -> bytes:
    """The file's content with the block between its markers, computed as blockinfile does."""
    marker0 = marker.replace("{mark}", "BEGIN").encode() + LINESEP
    marker1 = marker.replace("{mark}", "END").encode() + LINESEP
    body = block.encode()
    if body:
        if not body.endswith(LINESEP):
            body += LINESEP
        blocklines = [marker0] + body.splitlines(True) + [marker1]
    else:
        blocklines = []
    lines = (original or b"").splitlines(True)
    n0 = n1 = None
    for index, line in enumerate(lines):
        if line == marker0:
            n0 = index
        if line == marker1:
            n1 = index
    if n0 is None or n1 is None:
        n0 = 0 if at_top else len(lines)
    elif n0 < n1:
        lines[n0:n1 + 1] = []
    else:
        lines[n1:n0 + 1] = []
        n0 = n1
    if n0 > 0 and not lines[n0 - 1].endswith(LINESEP):
        lines[n0 - 1] += LINESEP
    lines[n0:n0] = blocklines
    return b"".join(lines)


def write_atomic(name: str, content: bytes, mode: int, dir_fd: int, owner: Optional[tuple[int, int]]) -> None:
    """Write a temporary file beside `name` and rename it over `name`: readers see the old or the new file."""
    tmp = None
    fd = -1
    for attempt in range(100):
        candidate = ".%s.reforge-%d-%d.tmp" % (name, os.getpid(), attempt)
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                         0o600, dir_fd=dir_fd)
        except FileExistsError:
            continue
        tmp = candidate
        break
    if tmp is None:
        raise Refused("could not create a temporary file beside %s." % name)
    try:
        try:
            view = memoryview(content)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if owner is not None and os.geteuid() == 0:
                os.fchown(fd, owner[0], owner[1])
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        tmp = None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass


def text(data: Optional[bytes]) -> str:
    return (data or b"").decode("utf-8", "replace")


def plan_file(real: str, name: str, dir_fd: Optional[int], marker: str, block: str, at_top: bool,
              keep_modes: tuple[int, ...], new_mode: int) -> dict[str, Any]:
    """What must happen to one block file: its new content and mode, or nothing."""
    full = os.path.join(real, name)
    info = lstat_at(name, dir_fd)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise Refused("%s in %s is not a regular file; nothing is written to it. Replace it with a real file."
                      % (name, real))
    original = read_at(name, dir_fd) if info is not None and dir_fd is not None else None
    result = with_block(original, marker, block, at_top)
    current_mode = stat.S_IMODE(info.st_mode) if info is not None else None
    mode = current_mode if current_mode in keep_modes else new_mode
    return {
        "name": name,
        "full": full,
        "original": original,
        "result": result,
        "write": original != result,
        "mode_before": current_mode,
        "mode": mode,
        "owner": (info.st_uid, info.st_gid) if info is not None else None,
    }


def run(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    path = params["path"].rstrip("/") or "/"
    if not os.path.isabs(path):
        raise Refused("path is %r: expected an absolute path." % path)
    for key in params["keys"] + [{"name": params["public_key"], "mode": "0"}] * bool(params["public_key"]):
        name = key["name"]
        if not name or "/" in name or name in (".", ".."):
            raise Refused("keys holds %r: expected a file name inside %s." % (name, path))
        try:
            int(key["mode"], 8)
        except ValueError:
            raise Refused("keys gives %s the mode %r: expected an octal mode such as 0600." % (name, key["mode"]))

    real, dir_info = resolve_dir(path)
    dir_fd = open_dir(real) if dir_info is not None else None
    try:
        # Every link is refused before the first change.
        names = [CONFIG, KNOWN_HOSTS] + [key["name"] for key in params["keys"]]
        infos = {name: lstat_at(name, dir_fd) for name in names}
        linked = [name for name in names if infos[name] is not None and stat.S_ISLNK(infos[name].st_mode)]
        if linked:
            raise Refused("%s in %s is a link; nothing is written through it. Replace it with a real file."
                          % (", ".join(linked), path))

        keys_found = []
        key_plans = []
        for key in params["keys"]:
            info = infos[key["name"]]
            wanted = int(key["mode"], 8)
            keys_found.append({"name": key["name"], "exists": info is not None,
                               "mode": octal(info.st_mode) if info is not None else None})
            # Only regular files get a mode; anything else is left as it is.
            if info is not None and stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != wanted:
                key_plans.append((key["name"], wanted, stat.S_IMODE(info.st_mode)))

        public_key = None
        if params["public_key"]:
            info = lstat_at(params["public_key"], dir_fd)
            if dir_fd is not None and info is not None and stat.S_ISREG(info.st_mode):
                public_key = text(read_at(params["public_key"], dir_fd))

        files = [
            plan_file(real, CONFIG, dir_fd, CONFIG_MARKER, params["config"], True, (CONFIG_MODE,), CONFIG_MODE),
            plan_file(real, KNOWN_HOSTS, dir_fd, KNOWN_HOSTS_MARKER, params["known_hosts"], False,
                      KNOWN_HOSTS_MODES, KNOWN_HOSTS_DEFAULT_MODE),
        ]

        actions: list[str] = []
        diffs: list[dict[str, Any]] = []
        dir_mode = stat.S_IMODE(dir_info.st_mode) if dir_info is not None else None
        if dir_info is None:
            actions.append("created %s with mode 0700" % real)
            diffs.append({"before_header": real, "after_header": real,
                          "before": {"path": real, "state": "absent"},
                          "after": {"path": real, "state": "directory", "mode": "0700"}})
        elif dir_mode != DIR_MODE:
            actions.append("set mode 0700 on %s" % real)
            diffs.append({"before_header": real, "after_header": real,
                          "before": {"path": real, "mode": "%04o" % dir_mode},
                          "after": {"path": real, "mode": "0700"}})
        for name, wanted, before in key_plans:
            full = os.path.join(real, name)
            actions.append("set mode %04o on %s" % (wanted, full))
            diffs.append({"before_header": full, "after_header": full,
                          "before": {"path": full, "mode": "%04o" % before},
                          "after": {"path": full, "mode": "%04o" % wanted}})
        for plan in files:
            if plan["write"]:
                what = ("created %s" if plan["original"] is None else
                        "removed the block from %s" if not params[plan["name"]] else "wrote the block in %s") % plan["full"]
                actions.append(what)
                diffs.append({"before_header": plan["full"] if plan["original"] is not None else "/dev/null",
                              "after_header": plan["full"],
                              "before": text(plan["original"]), "after": text(plan["result"])})
            if plan["mode_before"] is not None and plan["mode_before"] != plan["mode"]:
                actions.append("set mode %04o on %s" % (plan["mode"], plan["full"]))
                diffs.append({"before_header": plan["full"] + " (file attributes)",
                              "after_header": plan["full"] + " (file attributes)",
                              "before": {"path": plan["full"], "mode": "%04o" % plan["mode_before"]},
                              "after": {"path": plan["full"], "mode": "%04o" % plan["mode"]}})

        if actions and not module.check_mode:
            if dir_fd is None:
                parent = os.path.dirname(real)
                if not os.path.isdir(parent):
                    os.makedirs(parent)
                os.mkdir(real, DIR_MODE)
                dir_fd = open_dir(real)
                os.fchmod(dir_fd, DIR_MODE)
            elif dir_mode != DIR_MODE:
                os.fchmod(dir_fd, DIR_MODE)
            for name, wanted, _before in key_plans:
                chmod_nofollow(name, wanted, dir_fd, os.path.join(real, name))
            for plan in files:
                if plan["write"]:
                    write_atomic(plan["name"], plan["result"], plan["mode"], dir_fd, plan["owner"])
                elif plan["mode_before"] != plan["mode"]:
                    chmod_nofollow(plan["name"], plan["mode"], dir_fd, plan["full"])
    finally:
        if dir_fd is not None:
            os.close(dir_fd)

    result: dict[str, Any] = {"changed": bool(actions), "path": real, "actions": actions, "keys": keys_found,
                              "public_key": public_key}
    if module._diff:
        result["diff"] = diffs
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = run(module)
    except Refused as error:
        module.fail_json(msg=str(error))
    except OSError as error:
        module.fail_json(msg="%s: %s" % (error.filename or module.params["path"], error.strerror or error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
