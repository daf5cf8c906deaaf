#!/usr/bin/python
"""Read-only facts about a would-be conda prefix, for install and teardown guard rails."""

from __future__ import annotations

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: conda_prefix_info
short_description: Describe a conda prefix path before anything touches it
description:
  - Reports whether a path exists, where it really points, who owns it, and whether it
    looks like a conda installation, so that a role can refuse to install over, or
    delete, something that is not a conda prefix under the user's control.
  - Never changes anything.
options:
  path:
    description: Absolute path of the prefix.
    type: path
    required: true
  home:
    description: The user's home directory; defaults to the home of the user the module runs as.
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author: reforge
"""

EXAMPLES = r"""
- name: Describe the prefix
  conda_prefix_info:
    path: /home/me/miniforge3
  register: __miniforge_prefix
"""

RETURN = r"""
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
complete:
  description: Whether conda-meta/ and an executable bin/conda both exist.
  returned: always
  type: bool
"""

MARKERS = ("conda-meta", "condabin/conda", "bin/conda", "_conda")


def expected_realpath(path: str, home: str) -> str:
    """Where `path` should really be if nothing but the home directory is a link."""
    if path == home or path.startswith(home + os.sep):
        return os.path.realpath(home) + path[len(home):]
    return path


def describe(path: str, home: str) -> dict[str, Any]:
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
        "complete": os.path.isdir(os.path.join(path, "conda-meta")) and os.access(conda_exe, os.X_OK),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={"path": {"type": "path", "required": True}, "home": {"type": "path"}},
        supports_check_mode=True,
    )
    path = module.params["path"]
    if not os.path.isabs(path):
        module.fail_json(msg=f"The prefix '{path}' is not an absolute path.")
    home = module.params["home"] or os.path.expanduser("~")
    module.exit_json(changed=False, **describe(path, home))


if __name__ == "__main__":
    main()
