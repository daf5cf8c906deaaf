#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remove a conda prefix after checking it again by identity, without crossing into another mount."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: conda_prefix_remove
short_description: Remove a conda prefix, refusing anything that is not one the user owns
description:
  - Repeats every check of M(reforge.workstation.conda_prefix_info) with I(purpose=remove) immediately before
    deleting, so what was checked is what gets removed.
  - Deletes through directory descriptors opened without following links, and stops at any
    directory on another device or listed as a mount point, so it never empties a mount.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - reforge.workstation.common
  - reforge.workstation.conda_prefix_guard
  - reforge.workstation.conda_prefix_guard.prefix
attributes:
  check_mode:
    support: full
    details: Runs every check and reports what it would remove, removing nothing.
  diff_mode:
    support: none
    details: The result names what was removed.
"""

EXAMPLES = r"""
- name: Remove the prefix
  reforge.workstation.conda_prefix_remove:
    path: /home/me/miniforge3
    system_dirs: [/usr, /etc]
"""

RETURN = r"""
changed:
  description: Whether the prefix existed (and, outside check mode, was removed).
  returned: always
  type: bool
path:
  description: The prefix, normalised.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reforge.workstation.plugins.module_utils.conda_prefix_guard import (
    PrefixRemovalError,
    describe,
    home_dir,
    identity,
    mount_points,
    refusal,
    remove_prefix,
    user_name,
)


ARGUMENT_SPEC = {
    "path": {"type": "path", "required": True},
    "home": {"type": "path"},
    "system_dirs": {"type": "list", "elements": "path", "default": []},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    path = os.path.normpath(module.params["path"])
    if not os.path.isabs(path):
        module.fail_json(msg=f"Refusing prefix '{path}': it is not an absolute path.")
    home = module.params["home"] or home_dir()
    facts = describe(path, home)
    mounts = mount_points()
    reason = refusal(facts, home, module.params["system_dirs"], user_name(), "remove", mounts)
    if reason:
        module.fail_json(msg=reason, path=path)
    if not facts["exists"]:
        module.exit_json(changed=False, path=path)
    if module.check_mode:
        module.exit_json(changed=True, path=path)
    expected = identity(path, follow=False)
    try:
        if expected is None:
            raise PrefixRemovalError(f"'{path}' disappeared while it was being checked")
        remove_prefix(path, expected, mounts)
    except (PrefixRemovalError, OSError) as err:
        module.fail_json(msg=f"Could not remove prefix '{path}': {err}", path=path)
    module.exit_json(changed=True, path=path)


if __name__ == "__main__":
    main()
