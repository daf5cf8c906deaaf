#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check, before anything changes, a path a role will install into or delete."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: path_guard
short_description: Refuse a prefix or a user configuration path before anything touches it
description:
  - The prefix rules, in one place. C(rule=prefix) expands a leading C(~) or C($HOME) to the
    user's home and refuses a path that is empty, relative or not normalised, or that holds
    whitespace, a quote, a backslash, a backtick, C($) or a control character (the installer
    refuses spaces, and the shell init blocks cannot carry the others); the message names the
    variable, the path and the character.
  - C(rule=config_file) accepts a path to delete only when it is absent, or a regular file
    (not a link) that the user owns, inside the user's home.
  - C(rule=conda_dir) accepts a directory to delete only when it is absent, or a real directory
    (not a link) that the user owns, inside the home, holding nothing but what conda writes there.
  - Never changes anything.
options:
  path:
    description: The path as the user gave it (not expanded).
    type: str
    required: true
  variable:
    description: The variable that holds the path, named in every refusal.
    type: str
    required: true
  rule:
    description: Which rule applies.
    type: str
    choices: [prefix, config_file, conda_dir]
    default: prefix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - reforge.workstation.common
  - reforge.workstation.common.read_only
  - reforge.workstation.conda_prefix_guard
"""

EXAMPLES = r"""
- name: Check the prefix
  reforge.workstation.path_guard:
    path: "{{ miniforge_prefix }}"
    variable: miniforge_prefix
  register: __miniforge_prefix_checked

- name: Check ~/.condarc may be deleted
  reforge.workstation.path_guard:
    path: "{{ miniforge_condarc_path }}"
    variable: miniforge_condarc_path
    rule: config_file
"""

RETURN = r"""
changed:
  description: Always false, since the module only checks the path.
  returned: always
  type: bool
path:
  description: The path with a leading C(~) or C($HOME) expanded.
  returned: always
  type: str
exists:
  description:
    - Whether anything exists at the path (a broken link counts).
    - Not returned by the playbooks' controller-side prefix check (rule C(prefix) with O(home) given, see
      C(plugins/action/path_guard.py)), which never reaches the host.
  returned: when the module runs on the host
  type: bool
"""

import os
import re
import stat
import unicodedata
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reforge.workstation.plugins.module_utils.conda_prefix_guard import home_dir


# Characters a prefix may not hold, by what they break.
_NAMED = {
    "'": "a single quote",
    '"': "a double quote",
    "\\": "a backslash",
    "`": "a backtick",
    "$": "a dollar sign",
}
# What conda itself writes into ~/.conda (environments.txt, its caches and envs, the
# anonymous-usage tokens, a user-level .condarc).
CONDA_DIR_ENTRIES = frozenset({
    "environments.txt", "pkgs", "envs", "aau_token", "aau_token_host", ".condarc", "condarc", "conda-meta",
})
_HOME_PREFIX = re.compile(r"^(~|\$HOME|\$\{HOME\})(?=/|$)")


def expand_home(path: str, home: str) -> str:
    """Expand a leading ~, $HOME or ${HOME} to home; anything else is left as given."""
    return _HOME_PREFIX.sub(lambda _match: home.rstrip("/") or "/", path, count=1)


def describe_character(char: str) -> str:
    if char in _NAMED:
        return f"{_NAMED[char]} ({char})"
    if char == "\n":
        return "a newline"
    if char == "\t":
        return "a tab"
    if char == " ":
        return "a space"
    if char.isspace():
        return f"whitespace (U+{ord(char):04X})"
    return f"a control character (U+{ord(char):04X})"


def bad_character(path: str) -> Optional[str]:
    """The first character a prefix may not hold, or None."""
    for char in path:
        if char in _NAMED or char.isspace() or unicodedata.category(char) in ("Cc", "Cf"):
            return char
    return None


def prefix_problem(path: str) -> Optional[str]:
    """Why a prefix (already expanded) cannot be used, or None."""
    if not path:
        return "it is empty"
    char = bad_character(path)
    if char is not None:
        return f"it holds {describe_character(char)}, which the installer or the shell init blocks cannot carry"
    if not path.startswith("/"):
        return "it is not an absolute path (write it as /..., ~/... or $HOME/...)"
    if path != os.path.normpath(path) or path.startswith("//"):
        return "it is not normalised (no '..', '.', '//' or trailing '/')"
    return None


def inside(path: str, directory: str) -> bool:
    return path.startswith(directory.rstrip("/") + "/")


def config_file_problem(path: str, home: str, uid: int) -> Optional[str]:
    """Why a user configuration file may not be deleted, or None (absent is fine)."""
    if not os.path.isabs(path) or path != os.path.normpath(path):
        return "it is not an absolute, normalised path"
    real_home = os.path.realpath(home)
    # The file itself is judged by lstat: a link is refused whatever it points at.
    real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    if not inside(real, real_home):
        return f"it is not inside the home directory {home}"
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link, so deleting it would not delete the configuration"
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file" + (" (it is a directory)" if stat.S_ISDIR(info.st_mode) else "")
    if info.st_uid != uid:
        return f"it is owned by uid {info.st_uid}, not by the user (uid {uid})"
    return None


def conda_dir_problem(path: str, home: str, uid: int) -> Optional[str]:
    """Why ~/.conda may not be deleted, or None (absent is fine)."""
    real_home = os.path.realpath(home)
    real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    if not inside(real, real_home):
        return f"it is not inside the home directory {home}"
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link (its target is not conda's to delete)"
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a directory"
    if info.st_uid != uid:
        return f"it is owned by uid {info.st_uid}, not by the user (uid {uid})"
    foreign = sorted(set(os.listdir(path)) - CONDA_DIR_ENTRIES)
    if foreign:
        return "it holds entries conda does not write: " + ", ".join(foreign[:5])
    return None


def check(path: str, variable: str, rule: str, home: str, uid: int) -> dict[str, Any]:
    """Raise ValueError with the refusal, or return the result."""
    expanded = checked_path(path, variable, rule, home, uid)
    return {"path": expanded, "exists": os.path.lexists(expanded)}


def checked_path(path: str, variable: str, rule: str, home: str, uid: int) -> str:
    """The path with a leading ~ or $HOME expanded; ValueError with the refusal when the rule refuses it.

    The prefix rule reads only the two strings, so the collection's action plugin (plugins/action/path_guard.py) applies it on the
    controller with this very function."""
    expanded = expand_home(path, home)
    if rule == "prefix":
        problem = prefix_problem(expanded)
    elif rule == "config_file":
        problem = config_file_problem(expanded, home, uid)
    else:
        problem = conda_dir_problem(expanded, home, uid)
    if problem and rule == "prefix":
        # The same opening as the install and teardown guard's refusals.
        raise ValueError(f"Refusing prefix {path!r} ({variable}): {problem}.")
    if problem:
        raise ValueError(f"Refusing {variable} {path!r}: {problem}.")
    return expanded


ARGUMENT_SPEC: dict[str, Any] = {
    "path": {"type": "str", "required": True},
    "variable": {"type": "str", "required": True},
    "rule": {"type": "str", "default": "prefix", "choices": ["prefix", "config_file", "conda_dir"]},
    "home": {"type": "path"},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    home = params["home"] or home_dir()
    try:
        result = check(params["path"], params["variable"], params["rule"], home, os.getuid())
    except ValueError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
