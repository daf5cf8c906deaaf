#!/usr/bin/python
# -*- coding: utf-8 -*-
# Part of reforge; role base_env.
"""Ansible module: report what the user explicitly installed in a conda prefix."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: conda_snapshot
short_description: Report what the user explicitly installed in a conda prefix
description:
  - Reads, and never changes, a conda prefix and reports what a rebuild needs
    to reinstall it.
  - C(conda) lists the specs the user asked for, from
    C(conda env export --from-history --json) (the request history, not the
    full dependency list), without the entries in I(exclude).
  - C(pip) lists the packages pip installed (channel C(pypi) in
    C(conda list --json)) that no other package requires
    (C(PREFIX/bin/python -m pip list --not-required)).
  - C(environments) lists the named environments under C(PREFIX/envs).
  - A prefix that does not exist, or has no working conda, gives empty lists
    and C(exists=false), so that a rebuild from nothing does not fail.
author:
  - reforge contributors
options:
  prefix:
    description:
      - Path of the conda prefix (root prefix or any environment).
    type: path
    required: true
  conda:
    description:
      - Path of the conda executable. Defaults to C(PREFIX/bin/conda).
    type: path
  include_environments:
    description:
      - Whether to list the named environments under C(PREFIX/envs).
    type: bool
    default: true
  exclude:
    description:
      - Package names left out of C(conda) and C(pip) (compared by name,
        whatever version the spec pins). The default drops what the installer
        itself requested, which a reinstall brings back anyway.
    type: list
    elements: str
    default: [python, pip, conda, mamba]
attributes:
  check_mode:
    description: Read-only, runs the same in check mode.
    support: full
  diff_mode:
    description: Never changes anything, so there is nothing to show.
    support: none
notes:
  - A Python version the user requested in the root prefix (for example
    C(python<3.10)) is dropped with the default I(exclude); name C(python) out
    of the list to keep it.
"""

EXAMPLES = r"""
- name: Record what the base environment holds before it is wiped
  conda_snapshot:
    prefix: "{{ ansible_facts['env']['HOME'] }}/miniforge3"
  register: __base_env_snapshot

- name: Reinstall the same packages, unpinned
  conda_package:
    name: "{{ __base_env_snapshot.unpinned_conda }}"
    conda: "{{ ansible_facts['env']['HOME'] }}/miniforge3/bin/conda"
    state: latest
  when: __base_env_snapshot.unpinned_conda | length > 0
"""

RETURN = r"""
changed:
  description: Always false; the module only reads.
  returned: always
  type: bool
  sample: false
exists:
  description: Whether the prefix exists and its conda answered.
  returned: always
  type: bool
  sample: true
reason:
  description: Why C(exists) is false; empty when it is true.
  returned: always
  type: str
  sample: "/home/user/miniforge3 does not exist"
prefix:
  description: The prefix read.
  returned: always
  type: str
  sample: /home/user/miniforge3
conda:
  description: Specs the user requested from conda, as the history records them, I(exclude) left out.
  returned: always
  type: list
  elements: str
  sample: ["fastai", "sentencepiece", "numpy[version='<2']"]
unpinned_conda:
  description: The names of C(conda), version constraints and channels stripped.
  returned: always
  type: list
  elements: str
  sample: ["fastai", "sentencepiece", "numpy"]
pip:
  description: Packages installed by pip that nothing else requires, as name==version, sorted.
  returned: always
  type: list
  elements: str
  sample: ["fastbook==0.0.29"]
unpinned_pip:
  description: The names of C(pip).
  returned: always
  type: list
  elements: str
  sample: ["fastbook"]
channels:
  description: Channels of the environment as C(conda env export) reports them.
  returned: always
  type: list
  elements: str
  sample: ["conda-forge"]
environments:
  description: Names of the environments under C(PREFIX/envs), sorted; empty unless I(include_environments).
  returned: always
  type: list
  elements: str
  sample: ["tmp"]
cmds:
  description: Every command run, as argument lists.
  returned: always
  type: list
  elements: list
warnings:
  description: Parts that could not be read (for example pip missing from the prefix).
  returned: when any
  type: list
  elements: str
"""

import os
from typing import Any, Dict, List, Set

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.conda_cli import (
    CondaCli,
    CondaCommandError,
    Target,
    is_environment,
    is_executable,
    is_pip_record,
    normalize_pip_name,
    parse_json_output,
    spec_name,
    unique,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "prefix": {"type": "path", "required": True},
    "conda": {"type": "path"},
    "include_environments": {"type": "bool", "default": True},
    "exclude": {"type": "list", "elements": "str", "default": ["python", "pip", "conda", "mamba"]},
}


def empty_result(prefix: str, reason: str, cli: CondaCli) -> Dict[str, Any]:
    """The answer for a prefix there is nothing to read from."""
    return {
        "changed": False,
        "exists": False,
        "reason": reason,
        "prefix": prefix,
        "conda": [],
        "unpinned_conda": [],
        "pip": [],
        "unpinned_pip": [],
        "channels": [],
        "environments": [],
        "cmds": cli.commands,
    }


def requested_specs(document: Any, excluded: Set[str]) -> List[str]:
    """The --from-history dependencies, minus the excluded names."""
    dependencies = document.get("dependencies") if isinstance(document, dict) else None
    specs = [dep for dep in dependencies or [] if isinstance(dep, str)]
    return unique(spec for spec in specs if spec_name(spec) not in excluded)


def pip_leaves(module: AnsibleModule, cli: CondaCli, prefix: str, pypi_names: Set[str],
               excluded: Set[str]) -> List[str]:
    """pip packages that nothing requires and that pip (not conda) installed."""
    python = os.path.join(prefix, "bin", "python")
    if not pypi_names:
        return []
    if not is_executable(python):
        module.warn("%s not found: pip packages of %s not recorded." % (python, prefix))
        return []
    cmd = [python, "-m", "pip", "list", "--not-required", "--format=json", "--disable-pip-version-check"]
    # The user site (~/.local) is not part of the prefix.
    rc, out, err = cli.run(cmd, environ_update={"PYTHONNOUSERSITE": "1"})
    try:
        if rc != 0:
            raise ValueError(err.strip() or "exit code %d" % rc)
        listed = parse_json_output(out)
    except ValueError as exc:
        module.warn("pip list failed in %s, pip packages not recorded: %s" % (prefix, exc))
        return []
    skipped = {normalize_pip_name(name) for name in excluded}
    leaves = []
    for entry in listed if isinstance(listed, list) else []:
        name = str(entry.get("name", "")) if isinstance(entry, dict) else ""
        normalized = normalize_pip_name(name)
        if normalized in pypi_names and normalized not in skipped:
            leaves.append("%s==%s" % (name, entry.get("version", "")))
    return sorted(leaves, key=str.lower)


def environments_under(cli: CondaCli, prefix: str) -> List[str]:
    """Names of the environments conda knows that live in PREFIX/envs."""
    document = cli.run_json(["env", "list", "--json"])
    envs_dir = os.path.realpath(os.path.join(prefix, "envs"))
    names = []
    for env in document.get("envs", []) if isinstance(document, dict) else []:
        path = os.path.realpath(str(env))
        if os.path.dirname(path) == envs_dir:
            names.append(os.path.basename(path))
    return sorted(set(names))


def snapshot(module: AnsibleModule, cli: CondaCli, prefix: str) -> Dict[str, Any]:
    params = module.params
    excluded = {name.strip().lower() for name in params["exclude"]}
    if not os.path.isdir(prefix):
        return empty_result(prefix, "%s does not exist" % prefix, cli)
    if not is_environment(prefix):
        return empty_result(prefix, "%s is not a conda environment (no conda-meta)" % prefix, cli)
    if not is_executable(cli.conda):
        return empty_result(prefix, "no conda executable at %s" % cli.conda, cli)
    target = Target(None, prefix, True)
    try:
        exported = cli.run_json(["env", "export", "--from-history", "--json"] + target.args)
    except CondaCommandError as err:
        first = next((line for line in err.stderr.splitlines() if line.strip()), "exit code %d" % err.rc)
        return empty_result(prefix, "conda does not work: %s" % first.strip(), cli)

    specs = requested_specs(exported, excluded)
    records = cli.list_packages(target)
    pypi_names = {normalize_pip_name(str(rec.get("name", ""))) for rec in records if is_pip_record(rec)}
    pip = pip_leaves(module, cli, prefix, pypi_names, excluded)
    channels = exported.get("channels") if isinstance(exported, dict) else None
    result = {
        "changed": False,
        "exists": True,
        "reason": "",
        "prefix": prefix,
        "conda": specs,
        "unpinned_conda": unique(spec_name(spec) for spec in specs),
        "pip": pip,
        "unpinned_pip": [entry.split("==", 1)[0] for entry in pip],
        "channels": [str(c) for c in channels or []],
        "environments": environments_under(cli, prefix) if params["include_environments"] else [],
        "cmds": cli.commands,
    }
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    prefix = os.path.normpath(os.path.abspath(module.params["prefix"]))
    conda = module.params["conda"] or os.path.join(prefix, "bin", "conda")
    cli = CondaCli(module, conda)
    try:
        result = snapshot(module, cli, prefix)
    except CondaCommandError as err:
        module.fail_json(
            msg="Reading %s failed: %s exited with %d." % (prefix, " ".join(err.cmd[:3]), err.rc),
            cmd=err.cmd, rc=err.rc, stdout=err.stdout, stderr=err.stderr, cmds=cli.commands,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
