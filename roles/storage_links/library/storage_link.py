#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module storage_link: link one home entry to persistent storage, losslessly."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: storage_link
short_description: Link a home entry to its copy on persistent storage without losing data
description:
  - Makes O(path) (an entry in the home directory) a symbolic link to O(storage)
    (its copy on a persistent volume such as C(/storage)).
  - Whatever the home side holds is kept. When the storage side is absent or empty,
    the home content is moved into it. When both sides hold content, the storage
    side wins and the home copy is moved to a timestamped folder under O(backup_dir).
  - A home entry of the wrong kind (a file where a directory is declared, or the
    reverse) is moved to the backup folder, never deleted.
  - A wrong or broken link holds no data; it is replaced and its old target is reported.
  - Nothing is ever deleted except empty directories, zero-byte files and symbolic links.
  - Moves work across file systems (a copy followed by the removal of the source). A move lands
    on C(<storage>.reforge-partial) first and is renamed once complete, so an interrupted copy
    never passes for the real entry; a staging copy left by an interrupted run is moved to the backup.
version_added: "1.0.0"
options:
  path:
    description:
      - The entry in the home directory that must end as a link, for example C(~/.ssh).
      - Missing parent directories are created.
    type: path
    required: true
  storage:
    description:
      - The entry on the persistent volume the link points to, for example C(/storage/.ssh).
      - Its parent directory must exist; the module never creates the volume itself.
    type: path
    required: true
  kind:
    description:
      - Whether the entry is a directory or a regular file.
      - Decides what is created when both sides are absent, and what counts as a kind mismatch.
    type: str
    choices: [dir, file]
    default: dir
  backup_dir:
    description:
      - Folder that receives home copies that could not be merged, each under
        C(<backup_dir>/<UTC timestamp>/<absolute home path>).
      - Created with mode C(0700) when first needed, because it may receive private keys.
    type: path
    required: true
  mode:
    description:
      - Octal mode enforced on the storage side (the link target), for example C(0700) for C(.ssh).
      - Left alone when omitted.
    type: str
author:
  - reforge contributors
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
notes:
  - Every combination of the home side (absent, directory, file, correct link, wrong link,
    broken link) and the storage side (absent, empty, holding content) converges to the link.
  - The module refuses (and changes nothing) when the storage side is a broken link, is of the
    wrong kind, or when O(path) and O(storage) overlap.
"""

EXAMPLES = r"""
- name: Keep ~/.ssh on the persistent volume
  storage_link:
    path: "{{ ansible_facts['user_dir'] }}/.ssh"
    storage: /storage/.ssh
    kind: dir
    backup_dir: /storage/.reforge/backup
    mode: "0700"

- name: Keep the git credentials file on the persistent volume
  storage_link:
    path: /root/.git-credentials
    storage: /storage/.git-credentials
    kind: file
    backup_dir: /storage/.reforge/backup
    mode: "0600"
"""

RETURN = r"""
path:
  description: The home entry, now a link.
  returned: always
  type: str
  sample: /root/.ssh
storage:
  description: The storage entry the link points to.
  returned: always
  type: str
  sample: /storage/.ssh
kind:
  description: The declared kind of the entry.
  returned: always
  type: str
  sample: dir
home_state:
  description: What the home side was before the module ran.
  returned: always
  type: str
  sample: real_dir
  choices: [absent, real_dir, real_file, correct_link, wrong_link, broken_link]
storage_state:
  description: What the storage side was before the module ran.
  returned: always
  type: str
  sample: absent
  choices: [absent, empty, content]
moved:
  description: The home content moved into storage, or null when nothing was moved.
  returned: always
  type: dict
  sample: {"src": "/root/.ssh", "dest": "/storage/.ssh"}
  contains:
    src:
      description: Where the content was.
      type: str
    dest:
      description: Where the content is now.
      type: str
backup:
  description: Where the home copy was moved because storage already held content
    (or because it was of the wrong kind), or null.
  returned: always
  type: str
  sample: /storage/.reforge/backup/20250101T120000Z/root/.ssh
replaced_link:
  description: The old target of a wrong or broken link that was replaced, or null.
  returned: always
  type: str
  sample: /old/storage/.ssh
removed_empty:
  description: Empty directories or zero-byte files removed to make room (they held no data).
  returned: always
  type: list
  elements: str
  sample: ["/storage/.ssh"]
created:
  description: Whether an empty storage entry was created because neither side held one.
  returned: always
  type: bool
  sample: false
mode_changed:
  description: Whether the mode of the storage side was changed to O(mode).
  returned: always
  type: bool
  sample: true
actions:
  description: The steps taken (or, in check mode, planned), in order, in plain words.
  returned: always
  type: list
  elements: str
  sample: ["move /root/.ssh to /storage/.ssh", "link /root/.ssh -> /storage/.ssh"]
diff:
  description: The home and storage sides before and after, when diff mode is on.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: Both sides before.
      type: str
    after:
      description: Both sides after.
      type: str
"""

import dataclasses
import os
import shutil
import stat
import time
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule

HOME_STATES = ("absent", "real_dir", "real_file", "correct_link", "wrong_link", "broken_link")
STORAGE_STATES = ("absent", "empty", "content")


class StorageLinkError(Exception):
    """A precondition that makes converging unsafe; nothing has been changed."""


@dataclasses.dataclass
class Step:
    """One planned change."""

    action: str  # backup | move | remove_empty | unlink | create | link | chmod
    path: str
    dest: str = ""
    mode: Optional[int] = None
    backup_root: str = ""

    def describe(self) -> str:
        if self.action == "backup":
            return f"back up {self.path} to {self.dest}"
        if self.action == "move":
            return f"move {self.path} to {self.dest}"
        if self.action == "remove_empty":
            return f"remove empty {self.path}"
        if self.action == "unlink":
            return f"remove link {self.path} (it pointed to {self.dest})"
        if self.action == "create":
            return f"create empty {self.dest} {self.path}"
        if self.action == "link":
            return f"link {self.path} -> {self.dest}"
        return f"set mode {self.mode:04o} on {self.path}"


@dataclasses.dataclass
class Plan:
    """What the module found and what it will do."""

    home_state: str
    storage_state: str
    steps: list[Step]


def _is_empty(path: str, kind: str) -> bool:
    if kind == "dir":
        with os.scandir(path) as entries:
            return next(entries, None) is None
    return os.path.getsize(path) == 0


def classify_home(path: str, storage: str, kind: str) -> str:
    """Return the home side's state: one of HOME_STATES (kind mismatch shows as real_dir/real_file)."""
    if os.path.islink(path):
        if os.readlink(path) == storage:
            return "correct_link"
        if not os.path.exists(path):
            return "broken_link"
        if os.path.exists(storage) and os.path.samefile(path, storage):
            return "correct_link"
        return "wrong_link"
    if not os.path.lexists(path):
        return "absent"
    if os.path.isdir(path):
        return "real_dir"
    if os.path.isfile(path):
        return "real_file"
    raise StorageLinkError(
        f"{path} is neither a file, a directory nor a link (a socket or device?); move it away by hand."
    )


def classify_storage(storage: str, kind: str) -> str:
    """Return the storage side's state: one of STORAGE_STATES."""
    if os.path.islink(storage) and not os.path.exists(storage):
        raise StorageLinkError(
            f"{storage} is a broken link on the storage side; fix or remove it so the data has a home."
        )
    if not os.path.exists(storage):
        return "absent"
    if kind == "dir" and not os.path.isdir(storage):
        raise StorageLinkError(
            f"{storage} is not a directory but the entry is declared as kind=dir; "
            "move it aside or declare kind=file."
        )
    if kind == "file" and not os.path.isfile(storage):
        raise StorageLinkError(
            f"{storage} is not a regular file but the entry is declared as kind=file; "
            "move it aside or declare kind=dir."
        )
    return "empty" if _is_empty(storage, kind) else "content"


def _inside(child: str, parent: str) -> bool:
    child_real = os.path.realpath(child)
    parent_real = os.path.realpath(parent)
    return child_real == parent_real or child_real.startswith(parent_real.rstrip(os.sep) + os.sep)


def check_preconditions(path: str, storage: str, backup_dir: str) -> None:
    """Refuse layouts where moving one side would move it into itself."""
    if not os.path.isabs(path) or not os.path.isabs(storage) or not os.path.isabs(backup_dir):
        raise StorageLinkError("path, storage and backup_dir must be absolute paths.")
    storage_parent = os.path.dirname(storage.rstrip(os.sep))
    if not os.path.isdir(storage_parent):
        raise StorageLinkError(
            f"{storage_parent} (the parent of storage) is not a directory; is the persistent volume mounted?"
        )
    if not os.path.islink(path) and os.path.lexists(path):
        if _inside(storage, path) or _inside(path, storage):
            raise StorageLinkError(f"{path} and {storage} overlap; moving one into the other would lose data.")
        if _inside(backup_dir, path):
            raise StorageLinkError(f"backup_dir {backup_dir} lies inside {path}; choose a folder outside it.")


def backup_destination(path: str, backup_dir: str, now: Optional[float] = None) -> str:
    """Return a free backup location for path: <backup_dir>/<UTC stamp>/<absolute path>."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    base = os.path.join(backup_dir, stamp, path.lstrip(os.sep))
    candidate = base
    counter = 1
    while os.path.lexists(candidate):
        candidate = f"{base}.{counter}"
        counter += 1
    return candidate


def staging_path(storage: str) -> str:
    """Where a move into storage lands first, so an interrupted copy never looks complete."""
    return storage.rstrip(os.sep) + ".reforge-partial"


def _current_mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def make_plan(path: str, storage: str, kind: str, backup_dir: str, mode: Optional[int]) -> Plan:
    """Read both sides and list the steps that converge to the link; changes nothing."""
    check_preconditions(path, storage, backup_dir)
    home_state = classify_home(path, storage, kind)
    storage_state = classify_storage(storage, kind)
    steps: list[Step] = []
    # Mode the storage side will have before any chmod; None when it gets created fresh.
    final_mode: Optional[int] = _current_mode(storage) if storage_state != "absent" else None

    if home_state in ("wrong_link", "broken_link"):
        steps.append(Step("unlink", path, dest=os.readlink(path)))
        home_state_effective = "absent"
    else:
        home_state_effective = home_state

    home_kind_matches = (home_state_effective == "real_dir" and kind == "dir") or (
        home_state_effective == "real_file" and kind == "file"
    )
    if home_state_effective in ("real_dir", "real_file"):
        if not home_kind_matches:
            steps.append(Step("backup", path, dest=backup_destination(path, backup_dir), backup_root=backup_dir))
        elif storage_state == "content":
            if _is_empty(path, kind):
                steps.append(Step("remove_empty", path))
            else:
                steps.append(Step("backup", path, dest=backup_destination(path, backup_dir), backup_root=backup_dir))
        else:
            if storage_state == "empty":
                steps.append(Step("remove_empty", storage))
            staging = staging_path(storage)
            if os.path.lexists(staging):
                # Left by an interrupted move: it may be the only complete copy, so keep it.
                steps.append(
                    Step("backup", staging, dest=backup_destination(staging, backup_dir), backup_root=backup_dir)
                )
            steps.append(Step("move", path, dest=storage))
            final_mode = _current_mode(path)

    storage_filled = any(step.action == "move" for step in steps)
    if storage_state == "absent" and not storage_filled:
        steps.append(Step("create", storage, dest="directory" if kind == "dir" else "file"))
    if home_state != "correct_link":
        steps.append(Step("link", path, dest=storage))
    if mode is not None and final_mode != mode:
        steps.append(Step("chmod", storage, mode=mode))
    return Plan(home_state=home_state, storage_state=storage_state, steps=steps)


def _ensure_backup_root(backup_dir: str) -> None:
    if not os.path.isdir(backup_dir):
        os.makedirs(backup_dir)
        os.chmod(backup_dir, 0o700)


def apply_step(step: Step) -> None:
    """Carry out one step; raises OSError when the file system refuses."""
    if step.action == "backup":
        _ensure_backup_root(step.backup_root)
        os.makedirs(os.path.dirname(step.dest), exist_ok=True)
        shutil.move(step.path, step.dest)
    elif step.action == "move":
        staging = staging_path(step.dest)
        if os.path.lexists(step.dest) or os.path.lexists(staging):
            raise OSError(f"{step.dest} appeared while moving {step.path}; nothing was moved")
        # Across file systems this copies then removes the source; the rename makes the
        # result appear at its name only once the copy is complete.
        shutil.move(step.path, staging)
        os.rename(staging, step.dest)
    elif step.action == "remove_empty":
        if os.path.isdir(step.path) and not os.path.islink(step.path):
            os.rmdir(step.path)  # fails on a non-empty directory, so no data can go
        elif os.path.getsize(step.path) == 0:
            os.unlink(step.path)
        else:
            raise OSError(f"{step.path} is no longer empty; it was left in place")
    elif step.action == "unlink":
        if not os.path.islink(step.path):
            raise OSError(f"{step.path} is no longer a link; it was left in place")
        os.unlink(step.path)
    elif step.action == "create":
        if step.dest == "directory":
            os.mkdir(step.path)
        else:
            os.close(os.open(step.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    elif step.action == "link":
        parent = os.path.dirname(step.path.rstrip(os.sep))
        os.makedirs(parent, exist_ok=True)
        os.symlink(step.dest, step.path)
    elif step.action == "chmod" and step.mode is not None:
        os.chmod(step.path, step.mode)


def describe_side(path: str) -> str:
    """One line describing a path's current state, for the diff."""
    if os.path.islink(path):
        target = os.readlink(path)
        return f"{path} -> {target}" + ("" if os.path.exists(path) else " (broken)")
    if not os.path.lexists(path):
        return f"{path} absent"
    mode = f"{_current_mode(path):04o}"
    if os.path.isdir(path):
        return f"{path} directory, mode {mode}, " + ("empty" if _is_empty(path, "dir") else "holding content")
    return f"{path} file, mode {mode}, {os.path.getsize(path)} bytes"


def predict_after(plan: Plan, path: str, storage: str, mode: Optional[int]) -> str:
    """The diff's 'after' text, computed from the plan so check mode shows it too."""
    lines = [f"{path} -> {storage}"]
    moved_in = next((s for s in plan.steps if s.action == "move"), None)
    created = next((s for s in plan.steps if s.action == "create"), None)
    if moved_in is not None:
        lines.append(f"{storage} receives the content of {path}")
    elif created is not None:
        lines.append(f"{storage} empty {created.dest}")
    else:
        lines.append(describe_side(storage))
    if mode is not None:
        lines.append(f"{storage} mode {mode:04o}")
    lines.extend(f"{s.path} backed up to {s.dest}" for s in plan.steps if s.action == "backup")
    return "\n".join(lines) + "\n"


def converge(
    path: str,
    storage: str,
    kind: str,
    backup_dir: str,
    mode: Optional[int],
    check_mode: bool,
    want_diff: bool = True,
) -> dict[str, Any]:
    """Plan, then apply unless in check mode; return the module result, its diff under '_diff'."""
    plan = make_plan(path, storage, kind, backup_dir, mode)
    before = after = ""
    if want_diff:
        before = describe_side(path) + "\n" + describe_side(storage) + "\n"
        after = predict_after(plan, path, storage, mode) if plan.steps else before
    done: list[str] = []
    if not check_mode:
        for step in plan.steps:
            try:
                apply_step(step)
            except OSError as exc:
                raise StorageLinkError(
                    f"could not {step.describe()}: {exc}. Steps already done: {done or 'none'}. "
                    "No data was deleted; rerun after fixing the cause."
                ) from exc
            done.append(step.describe())
    moved = next(({"src": s.path, "dest": s.dest} for s in plan.steps if s.action == "move"), None)
    backup = next((s.dest for s in plan.steps if s.action == "backup" and s.path == path), None)
    replaced = next((s.dest for s in plan.steps if s.action == "unlink"), None)
    return {
        "changed": bool(plan.steps),
        "path": path,
        "storage": storage,
        "kind": kind,
        "home_state": plan.home_state,
        "storage_state": plan.storage_state,
        "moved": moved,
        "backup": backup,
        "replaced_link": replaced,
        "removed_empty": [s.path for s in plan.steps if s.action == "remove_empty"],
        "created": any(s.action == "create" for s in plan.steps),
        "mode_changed": any(s.action == "chmod" for s in plan.steps),
        "actions": [s.describe() for s in plan.steps],
        "_diff": {"before": before, "after": after},
    }


def parse_mode(value: Optional[str]) -> Optional[int]:
    """Turn '0700' into 0o700; raise ValueError on anything that is not an octal mode."""
    if value is None or value == "":
        return None
    mode = int(str(value), 8)
    if mode < 0 or mode > 0o7777:
        raise ValueError(value)
    return mode


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "storage": {"type": "path", "required": True},
            "kind": {"type": "str", "choices": ["dir", "file"], "default": "dir"},
            "backup_dir": {"type": "path", "required": True},
            "mode": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        mode = parse_mode(params["mode"])
    except ValueError:
        module.fail_json(msg=f"mode={params['mode']!r} is not an octal mode such as '0700'.")
    path = os.path.normpath(params["path"])
    storage = os.path.normpath(params["storage"])
    try:
        result = converge(
            path, storage, params["kind"], params["backup_dir"], mode, module.check_mode, module._diff
        )
    except StorageLinkError as exc:
        module.fail_json(msg=str(exc), path=path, storage=storage)
    diff = result.pop("_diff")
    if module._diff:
        result["diff"] = {
            "before_header": f"{path} (home) and {storage} (storage)",
            "after_header": f"{path} (home) and {storage} (storage)",
            **diff,
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
