#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module storage_link: link home entries to persistent storage, losslessly, through the one link engine."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: storage_link
short_description: Link home entries to their copies on persistent storage without losing data
description:
  - Makes each O(entries[].path) (an entry in the home directory) a symbolic link to its
    O(entries[].storage) (its copy on a persistent volume such as C(/storage)), all entries in one call.
  - The work is done by reforge's one link engine (C(plugins/module_utils/storage_engine.py)), the same code
    C(pre-run.sh) runs at every start, under the same lock.
  - Whatever the home side holds is kept. When the storage side is absent or empty, the home content
    is moved into it. When both hold content, every home item storage lacks is moved into storage and
    only the colliding items go to C(<backup_dir>/<UTC stamp>/<absolute home path>), one stamp per run.
  - Nothing is done through a link on the storage side; the storage entries, the state folder, the lock
    and the backup folder must be real files or folders owned by the user.
  - The last step of every move never replaces something that appeared meanwhile (C(link) then
    C(unlink) for files, C(renameat2(RENAME_NOREPLACE)) for folders); if something appeared, both are kept.
  - A copy across file systems checks the free space first; on a full disk the partial copy is removed.
  - When any entry is refused, the module fails before it changes anything.
version_added: "1.0.0"
options:
  entries:
    description: The entries to link.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: The entry in the home directory that must end as a link, for example C(~/.ssh).
        type: path
        required: true
      storage:
        description: The entry on the persistent volume the link points to; it must lie inside O(storage_dir).
        type: path
        required: true
      kind:
        description: Whether the entry is a directory or a regular file.
        type: str
        choices: [dir, file]
        default: dir
      mode:
        description: Octal mode enforced on the storage side, for example C(0700); left alone when omitted.
        type: str
  storage_dir:
    description: The storage folder every O(entries[].storage) lies in; it must exist.
    type: path
    required: true
  backup_dir:
    description: Folder that receives home items that could not be merged; created C(0700).
    type: path
    required: true
  state_dir:
    description: Folder holding the lock shared with C(pre-run.sh); the parent of O(backup_dir) by default.
    type: path
  lock_timeout:
    description: Seconds to wait for the lock held by another run.
    type: int
    default: 30
  backup_keep:
    description: Newest backup stamps always kept.
    type: int
    default: 10
  backup_max_age_days:
    description: Older stamps beyond O(backup_keep) are pruned after this many days.
    type: int
    default: 30
  backup_max_bytes:
    description: Size cap of the backup folder; the oldest stamps go first, never the newest.
    type: int
    default: 5368709120
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - reforge.workstation.common
attributes:
  check_mode:
    support: full
    details: Plans every entry and changes nothing; RV(entries[].actions) says what would be done.
  diff_mode:
    support: full
    details: Shows the home and storage sides of each changed entry before and after.
"""

EXAMPLES = r"""
- name: Keep ~/.ssh and the git credentials on the persistent volume
  reforge.workstation.storage_link:
    storage_dir: /storage
    backup_dir: /storage/.reforge/backup
    entries:
      - {path: /root/.ssh, storage: /storage/.ssh, kind: dir, mode: "0700"}
      - {path: /root/.git-credentials, storage: /storage/.git-credentials, kind: file, mode: "0600"}
"""

RETURN = r"""
changed:
  description: Whether an entry was moved, linked or had its mode fixed, or a backup was pruned (or would be, in check mode).
  returned: always
  type: bool
entries:
  description: One result per entry, in order.
  returned: always
  type: list
  elements: dict
  contains:
    path: {description: The home entry., type: str}
    storage: {description: The storage entry., type: str}
    kind: {description: The declared kind., type: str}
    changed: {description: Whether this entry needed work., type: bool}
    home_state:
      description: What the home side was.
      type: str
      choices: [absent, real_dir, real_file, correct_link, wrong_link, broken_link]
    storage_state:
      description: What the storage side was.
      type: str
      choices: [absent, empty, content]
    moved: {description: Storage paths that received home content., type: list, elements: str}
    backups: {description: Where home items went because storage already held them., type: list, elements: str}
    replaced_link: {description: "The old target of a replaced wrong or broken link, or null.", type: str}
    created: {description: Whether an empty storage entry was created., type: bool}
    mode_changed: {description: Whether the storage side's mode was set., type: bool}
    actions: {description: The steps taken (or planned in check mode)., type: list, elements: str}
  sample: []
backups:
  description: Every backup made by this run, by name.
  returned: always
  type: list
  elements: str
  sample: ["/storage/.reforge/backup/20250101T120000Z/root/.local/bin/tool"]
pruned:
  description: Backup stamps removed by the retention rules.
  returned: always
  type: list
  elements: str
  sample: []
actions:
  description: Every step of every entry, in order, in plain words.
  returned: always
  type: list
  elements: str
  sample: ["move /root/.ssh to /storage/.ssh", "link /root/.ssh -> /storage/.ssh"]
"""

import os
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reforge.workstation.plugins.module_utils.storage_engine import Engine, Entry, Outcome, Settings

ENTRY_SPEC = {
    "path": {"type": "path", "required": True},
    "storage": {"type": "path", "required": True},
    "kind": {"type": "str", "choices": ["dir", "file"], "default": "dir"},
    "mode": {"type": "str"},
}


def parse_mode(value: Optional[str]) -> Optional[int]:
    """Turn '0700' into 0o700; raise ValueError on anything that is not an octal mode."""
    if value is None or value == "":
        return None
    mode = int(str(value), 8)
    if mode < 0 or mode > 0o7777:
        raise ValueError(value)
    return mode


def settings_from(params: dict[str, Any]) -> Settings:
    backup_dir = os.path.normpath(params["backup_dir"])
    return Settings(
        storage_dir=os.path.normpath(params["storage_dir"]),
        backup_dir=backup_dir,
        state_dir=os.path.normpath(params["state_dir"] or os.path.dirname(backup_dir)),
        lock_timeout=float(params["lock_timeout"]),
        backup_keep=params["backup_keep"],
        backup_max_age_days=params["backup_max_age_days"],
        backup_max_bytes=params["backup_max_bytes"],
    )


def outcome_dict(out: Outcome) -> dict[str, Any]:
    return {
        "path": out.path, "storage": out.storage, "kind": out.kind, "changed": out.changed,
        "home_state": out.home_state, "storage_state": out.storage_state, "moved": out.moved,
        "backups": out.backups, "replaced_link": out.replaced_link, "created": out.created,
        "mode_changed": out.mode_changed, "actions": out.actions, "error": out.error,
    }


def converge(entries: list[Entry], settings: Settings, check_mode: bool) -> dict[str, Any]:
    """Plan every entry; refuse before any change when one is refused; then apply unless in check mode."""
    planned = Engine(settings, check_mode=True).run(entries)
    if planned["errors"] or check_mode:
        return {**planned, "applied": False}
    return {**Engine(settings, check_mode=False).run(entries), "applied": True}


ARGUMENT_SPEC: dict[str, Any] = {
    "entries": {"type": "list", "elements": "dict", "required": True, "options": ENTRY_SPEC},
    "storage_dir": {"type": "path", "required": True},
    "backup_dir": {"type": "path", "required": True},
    "state_dir": {"type": "path"},
    "lock_timeout": {"type": "int", "default": 30},
    "backup_keep": {"type": "int", "default": 10},
    "backup_max_age_days": {"type": "int", "default": 30},
    "backup_max_bytes": {"type": "int", "default": 5 * 1024**3},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    entries = []
    for item in module.params["entries"]:
        try:
            mode = parse_mode(item["mode"])
        except ValueError:
            module.fail_json(msg=f"mode={item['mode']!r} of {item['path']} is not an octal mode such as '0700'.")
        entries.append(Entry(os.path.normpath(item["path"]), os.path.normpath(item["storage"]), item["kind"], mode))
    report = converge(entries, settings_from(module.params), module.check_mode)
    outcomes = report["outcomes"]
    result: dict[str, Any] = {
        "changed": any(o.changed for o in outcomes) or bool(report["pruned"]),
        "entries": [outcome_dict(o) for o in outcomes],
        "backups": report["backups"],
        "pruned": report["pruned"],
        "actions": [a for o in outcomes for a in o.actions] + [f"prune the backup {p}" for p in report["pruned"]],
    }
    if module._diff:
        result["diff"] = [
            {"before_header": f"{o.path} (home) and {o.storage} (storage)",
             "after_header": f"{o.path} (home) and {o.storage} (storage)",
             "before": o.before, "after": o.after}
            for o in outcomes if o.changed
        ]
    if report["errors"]:
        done = "the other entries were converged" if report["applied"] else "nothing was changed"
        module.fail_json(msg="; ".join(report["errors"]) + f" ({done}; no data was deleted)", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
