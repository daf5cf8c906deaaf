#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: make sure a conda environment exists, or that it is gone."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: conda_environment
short_description: Create or remove a conda environment
description:
  - Makes sure a conda environment, given by name or by path, exists or does
    not exist.
  - Creates a missing environment with C(conda create) (C(mamba create) when
    I(mamba) is given) and the packages of I(packages). An environment that
    already exists is left as it is; manage its packages with
    M(reforge.workstation.conda_package).
  - Removes an environment with C(conda env remove), and refuses to remove
    the root prefix.
  - Every command names its environment by path and runs with
    C(MAMBA_ROOT_PREFIX) set to the root of I(conda)'s installation, because
    mamba 2 resolves names against that variable from the caller's
    environment.
options:
  name:
    description:
      - Name of the environment, looked for in C(envs_dirs) as conda does and
        created in the first C(envs_dirs) entry. Commands always address it by
        its path (C(-p)), never C(-n).
      - Mutually exclusive with I(prefix); one of them is required.
    type: str
  prefix:
    description:
      - Path of the environment (C(conda -p)).
      - Mutually exclusive with I(name); one of them is required.
    type: path
  state:
    description:
      - C(present) creates the environment if it does not exist.
      - C(absent) removes it if it exists.
    type: str
    choices: [present, absent]
    default: present
  packages:
    description:
      - Match specs installed when the environment is created, for example
        C(python<3.10) and C(fastcore). Ignored when it exists already.
    type: list
    elements: str
    default: []
  mamba:
    description:
      - Path of the mamba executable. When given, it creates the
        environment. Removal needs no solver and always uses conda.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - reforge.workstation.common
  - reforge.workstation.conda_cli
attributes:
  check_mode:
    support: full
    details: Changes nothing; a creation with packages is checked with C(conda create --dry-run).
  diff_mode:
    support: full
    details: Shows the environment's state and path before and after.
seealso:
  - module: reforge.workstation.conda_package
"""

EXAMPLES = r"""
- name: Create a side environment for an older Python
  reforge.workstation.conda_environment:
    name: tmp
    packages:
      - python<3.10
      - fastcore
    conda: "{{ ansible_facts['env']['HOME'] }}/miniforge3/bin/conda"
    mamba: "{{ ansible_facts['env']['HOME'] }}/miniforge3/bin/mamba"

- name: Create the conda-only tools environment on the persistent volume
  reforge.workstation.conda_environment:
    prefix: /storage/tools
    packages:
      - git-lfs
    conda: /opt/conda/bin/conda

- name: Remove the side environment
  reforge.workstation.conda_environment:
    name: tmp
    state: absent
    conda: "{{ ansible_facts['env']['HOME'] }}/miniforge3/bin/conda"
"""

RETURN = r"""
changed:
  description: Whether the environment was (or, in check mode, would be) created or removed.
  returned: always
  type: bool
  sample: true
name:
  description: The I(name) option as given.
  returned: always
  type: str
  sample: tmp
prefix:
  description: Path of the environment; null for a named environment that does not exist (yet, in check mode).
  returned: always
  type: str
  sample: /home/user/miniforge3/envs/tmp
exists:
  description: Whether the environment exists afterwards (as predicted in check mode).
  returned: always
  type: bool
  sample: true
cmds:
  description: Every command run, as argument lists.
  returned: always
  type: list
  elements: list
  sample: [["/home/user/miniforge3/bin/conda", "info", "--json"]]
cmd:
  description: The command that failed.
  returned: failure
  type: list
  elements: str
rc:
  description: Exit code of the command that failed.
  returned: failure
  type: int
stdout:
  description: Standard output of the command that failed.
  returned: failure
  type: str
stderr:
  description: Standard error of the command that failed (for a solver failure, the solver's report).
  returned: failure
  type: str
unavailable:
  description: On a solver failure, the specs of I(packages) that the solver named as not installable.
  returned: failure
  type: list
  elements: str
"""

from typing import Any, Dict, List

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reforge.workstation.plugins.module_utils.conda_cli import (
    CondaCli,
    CondaCommandError,
    Target,
    command_failure,
    is_environment,
    is_executable,
    unique,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "name": {"type": "str"},
    "prefix": {"type": "path"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "packages": {"type": "list", "elements": "str", "default": []},
    "conda": {"type": "path", "required": True},
    "mamba": {"type": "path"},
    "channels": {"type": "list", "elements": "str", "default": []},
}
MUTUALLY_EXCLUSIVE = [["name", "prefix"]]
REQUIRED_ONE_OF = [["name", "prefix"]]


def describe_state(target: Target, exists: bool) -> str:
    """Diff text for one side."""
    if not exists:
        return "state: absent\n"
    return "state: present\nprefix: %s\n" % target.prefix


def ensure(module: AnsibleModule, cli: CondaCli, packages: List[str]) -> Dict[str, Any]:
    """Compare the environment with the wanted state; act unless in check mode."""
    params = module.params
    info = cli.info()
    target = cli.resolve(params["name"], params["prefix"], info)
    wanted = params["state"] == "present"
    changed = target.exists != wanted
    after_target = target

    if params["state"] == "absent" and target.is_root:
        module.fail_json(
            msg="Refusing to remove %s: it holds conda itself. Tear the whole "
                "installation down instead." % target.describe(),
            prefix=target.prefix, cmds=cli.commands,
        )

    if changed and wanted:
        if module.check_mode:
            if packages:
                cli.transaction("create", target, packages, params["channels"], dry_run=True)
        else:
            cli.transaction("create", target, packages, params["channels"])
            after_target = cli.resolve(params["name"], params["prefix"])
            if not after_target.exists:
                module.fail_json(msg="conda create reported success but %s does not exist."
                                 % target.describe(), cmds=cli.commands)
    elif changed and not module.check_mode:
        cli.run_checked([cli.conda, "env", "remove", "-y"] + target.args)
        if target.prefix and is_environment(target.prefix):
            module.fail_json(msg="conda env remove left %s in place." % target.describe(),
                             prefix=target.prefix, cmds=cli.commands)

    result: Dict[str, Any] = {
        "changed": changed,
        "name": params["name"],
        "prefix": after_target.prefix,
        "exists": wanted,
        "cmds": cli.commands,
    }
    if module._diff:
        result["diff"] = {
            "before": describe_state(target, target.exists),
            "after": describe_state(after_target, wanted),
            "before_header": target.describe(),
            "after_header": target.describe(),
        }
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        required_one_of=REQUIRED_ONE_OF,
        supports_check_mode=True,
    )
    if not is_executable(module.params["conda"]):
        module.fail_json(msg="conda executable not found or not executable: %s" % module.params["conda"])
    if module.params["mamba"] and not is_executable(module.params["mamba"]):
        module.fail_json(msg="mamba executable not found or not executable: %s" % module.params["mamba"])
    packages = unique(spec.strip() for spec in module.params["packages"] if spec.strip())
    cli = CondaCli(module, module.params["conda"], module.params["mamba"])
    try:
        result = ensure(module, cli, packages)
    except CondaCommandError as err:
        target = Target(module.params["name"], module.params["prefix"], False)
        module.fail_json(cmds=cli.commands, **command_failure(err, target, packages))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
