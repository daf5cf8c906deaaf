#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor's read-only checks in one module run: the login shell's PATH, which Python each command runs,
the links into the persistent volume, key modes, free space and the link engine's backups."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: doctor_probe
short_description: Read the PATH, the Python interpreters, links, key modes, free space and backups in one pass
description:
  - Everything the doctor reads from the host, in one module run, because each module run costs a
    round trip to the host.
  - Starts O(login_shell) as a new terminal would and reads the PATH it prints after a marker, so that
    whatever the profile files print is ignored.
  - Resolves each command (C(python), C(python3), C(ipython), C(jupyter), C(pip), C(pip3) by default)
    on that PATH, the way a shell would, and finds the interpreter behind it. A script's interpreter
    comes from its shebang line, following C(#!/usr/bin/env python3) through the same PATH and
    the C(exec) trick pip writes for long paths.
  - Runs each interpreter once to read its version, C(sys.prefix), whether the user site
    directory is enabled and on C(sys.path), and where C(pip install --user) would install.
  - Compares every command with the reference interpreter (C(python), else C(python3)) and
    returns findings that name both interpreters, the consequence for C(pip install --user),
    and a fix.
  - Reports, for each link to check, whether the path is a link to the expected target, and if not
    what is there instead; the modes of the files in directories (for SSH keys); the free space
    of the file systems holding some paths; and what the link engine backed up.
  - Never changes anything, and never reads a file's content.
options:
  commands:
    description: Command names to resolve on O(path), in report order.
    type: list
    elements: str
    default: [python, python3, ipython, jupyter, pip, pip3]
  path:
    description:
      - The PATH to resolve the commands on, as a colon-separated string.
      - Empty or not given, the PATH O(login_shell) prints is used, else the PATH of the module's
        environment, which is usually not the one a terminal gets.
    type: str
  reference:
    description:
      - Commands that may serve as the reference interpreter; the first one found on O(path) that
        runs is the one every other command is compared with.
    type: list
    elements: str
    default: [python, python3]
  login_shell:
    description:
      - The shell and its flags, started as a new terminal does (for example C([bash, -l, -i])), whose
        PATH is used when O(path) is empty. Empty means the module's own PATH.
    type: list
    elements: str
    default: []
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
  backups:
    description:
      - The folder the link engine moves colliding home copies into; every entry under it that is not a
        directory is listed. A folder that is a link is not read.
    type: str
  gpu:
    description:
      - Also run C(nvidia-smi), found on the diagnosed PATH, to list the GPUs; RV(gpu) holds its answer.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - reforge.workstation.common
  - reforge.workstation.common.read_only
"""

EXAMPLES = r"""
- name: Read the login PATH, the interpreters and the links into /storage
  reforge.workstation.doctor_probe:
    login_shell: [bash, -l, -i]
    links: [.local, .ssh, .gitconfig]
    links_from: /root
    links_to: /storage
    backups: /storage/.reforge/backup
  register: __doctor_probe

- name: Only compare ipython and pip with python3 on a given PATH, and read the key modes and free space
  reforge.workstation.doctor_probe:
    path: /usr/local/bin:/usr/bin:/bin
    commands: [python3, ipython, pip3]
    reference: [python3]
    directories: [/root/.ssh]
    free_space: [/storage, /root/miniforge3]
"""

RETURN = r"""
path:
  description: The PATH the commands were resolved on.
  returned: always
  type: str
  sample: /usr/local/bin:/usr/bin:/bin
path_source:
  description: >-
    Where RV(path) came from; C(given) (O(path)), C(login_shell) (what O(login_shell) printed) or
    C(remote) (the module's environment).
  returned: always
  type: str
  sample: login_shell
login_shell_error:
  description: Why O(login_shell) printed no PATH; empty when it did or was not asked.
  returned: always
  type: str
reference:
  description: The command every other one is compared with; null when no reference command runs.
  returned: always
  type: str
  sample: python3
reference_interpreter:
  description: The interpreter the reference command runs (its C(sys.executable)); null without a reference.
  returned: always
  type: str
  sample: /usr/bin/python3
commands:
  description: What each command resolves to, by command name.
  returned: always
  type: dict
  contains:
    name:
      description: The command name.
      type: str
    found:
      description: Whether the command is on the PATH.
      type: bool
    path:
      description: The first executable of that name on the PATH (what the shell runs); null when not found.
      type: str
    realpath:
      description: O(path) with every symlink resolved.
      type: str
    all_paths:
      description: Every executable of that name on the PATH, in PATH order; the later ones are shadowed.
      type: list
      elements: str
    kind:
      description: >-
        C(binary) (run directly, as an interpreter), C(script) (a shebang naming an interpreter),
        C(wrapper) (a script whose shebang is not Python, for example a shell shim), or C(missing).
      type: str
    shebang:
      description: The script's first line without C(#!); null for a binary.
      type: str
    shim_target:
      description: For a pyenv shim, the executable C(pyenv which) names; null otherwise.
      type: str
    interpreter:
      description: The interpreter the command runs, as resolved from the shebang or the command itself.
      type: str
    python:
      description: What the interpreter reported about itself; null when it could not be run.
      type: dict
      contains:
        executable:
          description: C(sys.executable).
          type: str
        realpath:
          description: C(sys.executable) with every symlink resolved.
          type: str
        version:
          description: The full Python version, for example C(3.11.2).
          type: str
        prefix:
          description: C(sys.prefix).
          type: str
        base_prefix:
          description: C(sys.base_prefix) (differs from the prefix in a virtual environment).
          type: str
        in_virtualenv:
          description: Whether the interpreter runs in a virtual environment.
          type: bool
        user_site_enabled:
          description: C(site.ENABLE_USER_SITE); null when Python disabled it for a setuid process.
          type: bool
        user_site:
          description: The user site directory, where C(pip install --user) installs for this interpreter.
          type: str
        user_site_exists:
          description: Whether the user site directory exists.
          type: bool
        user_site_on_path:
          description: Whether the user site directory is on C(sys.path).
          type: bool
        purelib:
          description: Where C(pip install) without C(--user) installs for this interpreter.
          type: str
        externally_managed:
          description: Whether the interpreter is marked EXTERNALLY-MANAGED (PEP 668), so pip refuses to install.
          type: bool
    error:
      description: Why the interpreter could not be identified; null when it could.
      type: str
    same_interpreter_as_reference:
      description: Whether the command runs the reference interpreter (same executable and prefix).
      type: bool
    pip_user_site:
      description: For pip commands, where C(pip install --user) installs (the user site of pip's interpreter).
      type: str
findings:
  description: >-
    One finding per command, in the order of O(commands): C(OK), C(WARN) or C(FAIL), or C(SKIP)
    for a command that is not on the PATH. A problem carries a cause and a fix sentence.
  returned: always
  type: list
  elements: dict
  contains:
    check:
      description: The command name.
      type: str
    status:
      description: OK, WARN, FAIL or SKIP.
      type: str
    detail:
      description: What was found, naming the interpreters.
      type: str
    cause:
      description: Why it is a problem; empty when it is not.
      type: str
    fix:
      description: What to do about it; empty when nothing needs doing.
      type: str
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
backups:
  description: What the link engine backed up, from O(backups).
  returned: always
  type: dict
  contains:
    path:
      description: The backup folder.
      type: str
    isdir:
      description: Whether it is a real directory (not a link), so that it was read.
      type: bool
    files:
      description: Every entry under it that is not a directory, sorted, as full paths.
      type: list
      elements: str
gpu:
  description: >-
    What C(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader) said, with
    C(rc), C(stdout), C(stdout_lines) and C(stderr); C(rc) is 127 when it is not on the PATH. Null
    without O(gpu).
  returned: always
  type: dict
changed:
  description: Always false; the module only reads.
  returned: always
  type: bool
"""

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reforge.workstation.plugins.module_utils.doctor_files import backup_facts
from ansible_collections.reforge.workstation.plugins.module_utils.doctor_files import gather as gather_files
from ansible_collections.reforge.workstation.plugins.module_utils.doctor_interpreters import Prober, gather, login_path, nvidia_smi, split_path


ARGUMENT_SPEC: dict[str, Any] = {
    "commands": {
        "type": "list",
        "elements": "str",
        "default": ["python", "python3", "ipython", "jupyter", "pip", "pip3"],
    },
    "path": {"type": "str"},
    "reference": {"type": "list", "elements": "str", "default": ["python", "python3"]},
    "login_shell": {"type": "list", "elements": "str", "default": []},
    "links": {"type": "list", "elements": "str", "default": []},
    "links_from": {"type": "str"},
    "links_to": {"type": "str"},
    "directories": {"type": "list", "elements": "str", "default": []},
    "free_space": {"type": "list", "elements": "str", "default": []},
    "backups": {"type": "str"},
    "gpu": {"type": "bool", "default": False},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if params["links"] and not params["links_to"]:
        module.fail_json(msg="links needs links_to, the directory the links must lead into.")
    path, source, error = params["path"] or "", "given", ""
    if not path and params["login_shell"]:
        path, error = login_path(params["login_shell"])
        source = "login_shell"
    if not path:
        path, source = os.environ.get("PATH", os.defpath), "remote"
    if not split_path(path):
        module.fail_json(msg="The PATH to search is empty, so no command can be resolved.")
    result = gather(params["commands"], path, params["reference"], Prober(module, path))
    result.update(gather_files(params))
    module.exit_json(changed=False, path_source=source, login_shell_error=error,
                     backups=backup_facts(params["backups"]),
                     gpu=nvidia_smi(path) if params["gpu"] else None, **result)


if __name__ == "__main__":
    main()
