#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only facts about a would-be conda prefix, and whether to refuse it, for the install and teardown guard."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: conda_prefix_info
short_description: Describe a conda prefix path, and refuse it, before anything touches it
description:
  - Reports whether a path exists, where it really points, who owns it, and whether it
    looks like a conda installation, so that a role can refuse to install over, or
    delete, something that is not a conda prefix under the user's control.
  - Decides by file identity (device and inode), not by path strings, so a bind mount or a
    case variant of the home directory, of one of its ancestors or of a system directory is
    recognised and refused.
  - For removal it also refuses a prefix that is or contains a mount point, and one without a
    regular C(conda-meta/history) file.
  - Never changes anything.
options:
  purpose:
    description: What the caller means to do with the prefix; C(remove) applies the stricter checks.
    type: str
    choices: [install, remove]
    default: install
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - reforge.workstation.common
  - reforge.workstation.common.read_only
  - reforge.workstation.conda_prefix_guard
  - reforge.workstation.conda_prefix_guard.prefix
"""

EXAMPLES = r"""
- name: Describe the prefix before removing it
  reforge.workstation.conda_prefix_info:
    path: /home/me/miniforge3
    system_dirs: [/usr, /etc]
    purpose: remove
  register: __miniforge_prefix
"""

RETURN = r"""
changed:
  description: Always false.
  returned: always
  type: bool
path:
  description: The path as given, normalised.
  returned: always
  type: str
realpath:
  description: The path with every symlink resolved.
  returned: always
  type: str
home_realpath:
  description: The home directory with every symlink resolved.
  returned: always
  type: str
exists:
  description: Whether anything exists at the path (a broken link counts).
  returned: always
  type: bool
is_link:
  description: Whether the path itself is a symlink.
  returned: always
  type: bool
is_dir:
  description: Whether the path is a directory (links not followed).
  returned: always
  type: bool
is_empty:
  description: Whether the path is absent or an empty directory.
  returned: always
  type: bool
escapes:
  description: >-
    Whether the real path differs from the path for any reason other than the home
    directory itself being reached through a symlink.
  returned: always
  type: bool
owned_by_user:
  description: Whether the path exists and belongs to the user the module runs as.
  returned: always
  type: bool
markers:
  description: Which conda markers exist inside (conda-meta, condabin/conda, bin/conda, _conda).
  returned: always
  type: list
  elements: str
is_conda_prefix:
  description: Whether a marker shows a conda installation, finished or interrupted.
  returned: always
  type: bool
has_history:
  description: Whether conda-meta/history is a regular file (a link does not count).
  returned: always
  type: bool
complete:
  description: Whether conda-meta/ and an executable bin/conda both exist.
  returned: always
  type: bool
refusal:
  description: >-
    Empty when the prefix may be used for I(purpose); otherwise one sentence that starts
    with C(Refusing prefix '<path>':) and names the reason.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reforge.workstation.plugins.module_utils.conda_prefix_guard import describe, home_dir, refusal, user_name


ARGUMENT_SPEC = {
    "path": {"type": "path", "required": True},
    "home": {"type": "path"},
    "system_dirs": {"type": "list", "elements": "path", "default": []},
    "purpose": {"type": "str", "choices": ["install", "remove"], "default": "install"},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    path = module.params["path"]
    if not os.path.isabs(path):
        module.fail_json(msg=f"Refusing prefix '{path}': it is not an absolute path.")
    home = module.params["home"] or home_dir()
    facts = describe(path, home)
    facts["refusal"] = refusal(facts, home, module.params["system_dirs"], user_name(), module.params["purpose"])
    module.exit_json(changed=False, **facts)


if __name__ == "__main__":
    main()
