#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: manage conda packages in one environment, in one transaction."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: conda_package
short_description: Install, update or remove conda packages in one environment
description:
  - Manages a list of conda packages (match specs) in one conda environment,
    all in a single solver transaction.
  - Reads the environment with C(conda list --json), asks conda what the
    transaction would do with C(--dry-run --json), and runs the real
    transaction only when that report links or unlinks something. A converged
    environment therefore reports no change.
  - Creates the environment when it does not exist and I(state) is C(present)
    or C(latest), unless every spec turned out unavailable
    (I(skip_unavailable=true)).
  - Dry runs always use conda; the real transaction uses mamba when I(mamba)
    is given. Every command names its environment by path and runs with
    C(MAMBA_ROOT_PREFIX) set to the root of I(conda)'s installation, because
    mamba 2 resolves names against that variable from the caller's
    environment.
  - conda's solver does work that mamba 2 never does. It updates the
    C(aggressive_update_packages) (C(ca-certificates), C(certifi),
    C(openssl)) and, in the root prefix, conda itself, and it turns a
    requested spec whose package is installed into an update. Every conda
    transaction therefore runs with C(CONDA_AGGRESSIVE_UPDATE_PACKAGES) empty
    and C(CONDA_AUTO_UPDATE_CONDA=false), and installs pass
    C(--satisfied-skip-solve). When a request also has work to do, a spec
    that an installed package already satisfies (asked alone) is dropped from
    it, as an installed bare name is. So a dry run predicts what mamba will do
    and a converged environment reports no change.
  - mamba's remove also removes the dependencies that nothing needs any more
    and that the history does not list as requested (C(--prune-deps) is its
    default); conda's dry run does not report them, so check mode adds them
    from C(conda-meta). After a real run, the changes reported are those
    between C(conda list) before and after.
options:
  name:
    description:
      - Match specs of the packages, for example C(fastai), C(python<3.10),
        C(numpy>=1.26,<2) or C(conda-forge::numpy).
      - With I(state=absent) only the package names count; versions are ignored.
      - An empty list manages no package, but still creates a missing
        environment when I(state) is C(present) or C(latest).
    type: list
    elements: str
    required: true
  environment:
    description:
      - Name of the target environment, looked for in C(envs_dirs) as conda
        does (a new one goes to the first entry). C(base) is the root prefix.
        Commands address it by path (C(-p)), never C(-n).
      - Mutually exclusive with I(prefix). Without both, the root prefix is the target.
    type: str
  prefix:
    description:
      - Path of the target environment (C(conda -p)).
      - Mutually exclusive with I(environment).
    type: path
  state:
    description:
      - C(present) installs what is missing or does not satisfy its spec and
        leaves installed packages alone.
      - C(latest) also updates installed packages given by name alone to the
        newest version the channels offer. A spec with a version constraint
        is installed with C(conda install), so the constraint wins.
      - C(absent) removes the named packages that are installed (conda may
        also remove packages that depend on them).
    type: str
    choices: [present, latest, absent]
    default: present
  mamba:
    description:
      - Path of the mamba executable. When given, it runs the real
        transactions; conda still does the reads and dry runs.
    type: path
  skip_unavailable:
    description:
      - When the transaction does not resolve, try each package on its own,
        install those that resolve in one transaction and report the others in
        C(unavailable) instead of failing.
      - Other failures (network, permissions, a conflict between packages that
        each resolve alone) still fail.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - reforge.workstation.common
  - reforge.workstation.conda_cli
attributes:
  check_mode:
    support: full
    details: Runs only reads and dry runs, and reports what would change.
  diff_mode:
    support: full
    details: Shows the package list (name==version) before and after.
notes:
  - Packages that pip installed into the environment (channel C(pypi) in
    C(conda list)) are neither counted as installed nor removed.
  - Solver failures (mamba's and conda's plain-text or JSON reports) fail with
    a message naming the specs that do not resolve and the environment; the
    solver's report is returned in C(stderr).
seealso:
  - name: conda install
    description: The conda command this module drives.
    link: https://docs.conda.io/projects/conda/en/stable/commands/install.html
"""

EXAMPLES = r"""
- name: Install the base packages into the root prefix
  reforge.workstation.conda_package:
    name:
      - fastai
      - sentencepiece
    conda: "{{ ansible_facts['env']['HOME'] }}/miniforge3/bin/conda"
    mamba: "{{ ansible_facts['env']['HOME'] }}/miniforge3/bin/mamba"
    state: latest

- name: Create a side environment with an older Python
  reforge.workstation.conda_package:
    name:
      - python<3.10
      - fastcore
    environment: tmp
    conda: "{{ ansible_facts['env']['HOME'] }}/miniforge3/bin/conda"
    channels:
      - conda-forge

- name: Install what resolves, report the rest
  reforge.workstation.conda_package:
    name: "{{ base_env_conda_packages }}"
    prefix: /storage/tools
    conda: /opt/conda/bin/conda
    skip_unavailable: true
  register: __base_env_tools

- name: Remove a package from the root prefix
  reforge.workstation.conda_package:
    name:
      - numpy
    state: absent
    conda: "{{ ansible_facts['env']['HOME'] }}/miniforge3/bin/conda"
"""

RETURN = r"""
changed:
  description: Whether packages were (or, in check mode, would be) linked or unlinked.
  returned: always
  type: bool
  sample: true
prefix:
  description: Path of the target environment; null for a named environment that does not exist yet in check mode.
  returned: always
  type: str
  sample: /home/user/miniforge3/envs/tmp
environment:
  description: The I(environment) option as given.
  returned: always
  type: str
  sample: tmp
created:
  description: Whether the environment was (or would be) created.
  returned: always
  type: bool
  sample: false
actions:
  description:
    - Packages linked and unlinked, as name==version.
    - An update shows the old version unlinked and the new one linked.
  returned: always
  type: dict
  contains:
    linked:
      description: Packages installed.
      type: list
      elements: str
      sample: ["fastcore==1.7.1"]
    unlinked:
      description: Packages removed.
      type: list
      elements: str
      sample: ["fastcore==1.5.29"]
installed:
  description:
    - Conda packages in the environment afterwards, name to version (predicted in check mode).
    - Packages that pip installed are left out.
  returned: always
  type: dict
  sample: {"fastcore": "1.7.1", "python": "3.12.7"}
unavailable:
  description:
    - Specs that did not resolve and were skipped (I(skip_unavailable=true)).
    - On a solver failure, the specs the solver named as not installable.
  returned: always
  type: list
  elements: str
  sample: ["nosuchpkg"]
cmds:
  description: Every command run, reads and dry runs included, as argument lists.
  returned: always
  type: list
  elements: list
  sample: [["/home/user/miniforge3/bin/conda", "list", "--json", "-p", "/home/user/miniforge3"]]
cmd:
  description: The command that failed.
  returned: failure
  type: list
  elements: str
rc:
  description: Exit code of the command that failed.
  returned: failure
  type: int
  sample: 1
stdout:
  description: Standard output of the command that failed.
  returned: failure
  type: str
stderr:
  description: Standard error of the command that failed, for a solver failure the solver's raw report.
  returned: failure
  type: str
  sample: "error    libmamba Could not solve for environment specs\n..."
"""

from typing import Any, Dict, List, Optional, Tuple

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reforge.workstation.plugins.module_utils.conda_cli import (
    CondaCli,
    CondaCommandError,
    Target,
    Transaction,
    command_failure,
    conda_records,
    is_executable,
    is_name_only,
    listing,
    record_key,
    record_label,
    spec_name,
    unique,
    versions,
)
from ansible_collections.reforge.workstation.plugins.module_utils.conda_history import mamba_prunes

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "name": {"type": "list", "elements": "str", "required": True},
    "environment": {"type": "str"},
    "prefix": {"type": "path"},
    "state": {"type": "str", "choices": ["present", "latest", "absent"], "default": "present"},
    "conda": {"type": "path", "required": True},
    "mamba": {"type": "path"},
    "channels": {"type": "list", "elements": "str", "default": []},
    "skip_unavailable": {"type": "bool", "default": False},
}
MUTUALLY_EXCLUSIVE = [["environment", "prefix"]]

Records = Dict[str, Dict[str, Any]]
Step = Tuple[str, List[str]]


class PackageManager:
    """read -> compare -> act for one environment."""

    def __init__(self, module: AnsibleModule) -> None:
        params = module.params
        self.module = module
        self.cli = CondaCli(module, params["conda"], params["mamba"])
        self.specs: List[str] = unique(spec.strip() for spec in params["name"] if spec.strip())
        self.state: str = params["state"]
        self.channels: List[str] = params["channels"] or []
        self.skip_unavailable: bool = params["skip_unavailable"]
        self.unavailable: List[str] = []
        self.target: Optional[Target] = None

    # read -------------------------------------------------------------
    def read(self, target: Target) -> Records:
        if not target.exists:
            return {}
        return conda_records(self.cli.list_packages(target))

    # compare ----------------------------------------------------------
    def plan(self, target: Target, before: Records) -> List[Step]:
        """The transactions the state asks for, before asking conda about them."""
        if self.state == "absent":
            if not target.exists:
                return []
            names = unique(spec_name(spec) for spec in self.specs if spec_name(spec) in before)
            return [("remove", names)] if names else []
        if not target.exists:
            return [("create", list(self.specs))]
        if self.state == "present":
            # A bare name that is installed is satisfied whatever its version;
            # only the rest needs the solver's opinion.
            pending = [s for s in self.specs if not (is_name_only(s) and spec_name(s) in before)]
            return [("install", pending)] if pending else []
        # latest: conda update takes bare names of installed packages only.
        updates = [s for s in self.specs if is_name_only(s) and spec_name(s) in before]
        installs = [s for s in self.specs if s not in updates]
        steps: List[Step] = []
        if updates:
            steps.append(("update", updates))
        if installs:
            steps.append(("install", installs))
        return steps

    def dry_run(self, target: Target, verb: str, specs: List[str]) -> Optional[Transaction]:
        """conda's --dry-run report; with skip_unavailable, retry spec by spec."""
        if not specs:
            # Only an empty environment to create: there is nothing to solve.
            return Transaction(verb, [], [])
        try:
            return self.cli.transaction(verb, target, specs, self.channels, dry_run=True)
        except CondaCommandError as err:
            if not (self.skip_unavailable and err.solver_failure and verb != "remove"):
                raise
        usable: List[str] = []
        if len(specs) == 1:
            self.unavailable.extend(specs)
            return None
        for spec in specs:
            try:
                self.cli.transaction(verb, target, [spec], self.channels, dry_run=True)
            except CondaCommandError as err:
                if not err.solver_failure:
                    raise
                self.unavailable.append(spec)
                continue
            usable.append(spec)
        if not usable:
            return None
        return self.cli.transaction(verb, target, usable, self.channels, dry_run=True)

    def without_satisfied(self, target: Target, transaction: Transaction, before: Records) -> Optional[Transaction]:
        """The install without the specs that installed packages already satisfy.

        conda turns such a spec into an update as soon as anything else in the
        request needs solving (--satisfied-skip-solve only helps when all are
        satisfied); mamba's install keeps the installed package. Each spec of an
        installed package is asked alone, and the satisfied ones are dropped,
        as installed bare names are.
        """
        installed = [spec for spec in transaction.specs if spec_name(spec) in before]
        if not installed or len(transaction.specs) < 2:
            return transaction
        satisfied = [spec for spec in installed
                     if self.cli.transaction("install", target, [spec], self.channels, dry_run=True).nothing_to_do]
        if not satisfied:
            return transaction
        rest = [spec for spec in transaction.specs if spec not in satisfied]
        return self.cli.transaction("install", target, rest, self.channels, dry_run=True)

    # act --------------------------------------------------------------
    def run(self) -> Dict[str, Any]:
        params = self.module.params
        target = self.cli.resolve(params["environment"], params["prefix"])
        self.target = target
        before = self.read(target)

        planned: List[Transaction] = []
        for verb, specs in self.plan(target, before):
            transaction = self.dry_run(target, verb, specs)
            if transaction is not None and verb == "install" and not transaction.nothing_to_do:
                transaction = self.without_satisfied(target, transaction, before)
            if transaction is not None and verb == "remove" and self.cli.mamba and target.prefix:
                # mamba's remove also prunes orphaned dependencies; conda's dry run does not say so.
                removed = [str(rec.get("name", "")) for rec in transaction.unlinked]
                transaction.unlinked.extend(before[name] for name in sorted(mamba_prunes(target.prefix, removed))
                                            if name in before)
            if transaction is not None and (verb == "create" or not transaction.nothing_to_do):
                planned.append(transaction)

        created = any(t.verb == "create" for t in planned)
        if not planned:
            return self.result(target, before, before, [], [], created=False)

        if self.module.check_mode:
            after = predict(before, planned)
            linked, unlinked = changes(before, after)
            return self.result(target, before, after, linked, unlinked, created)

        for transaction in planned:
            self.cli.transaction(transaction.verb, target, transaction.specs, self.channels)
        if created:
            target = self.cli.resolve(params["environment"], params["prefix"])
            self.target = target
        after = self.read(target)
        linked, unlinked = changes(before, after)
        return self.result(target, before, after, linked, unlinked, created)

    def result(self, target: Target, before: Records, after: Records, linked: List[str],
               unlinked: List[str], created: bool) -> Dict[str, Any]:
        result: Dict[str, Any] = {
            "changed": bool(linked or unlinked or created),
            "prefix": target.prefix,
            "environment": self.module.params["environment"],
            "created": created,
            "actions": {"linked": linked, "unlinked": unlinked},
            "installed": versions(after),
            "unavailable": self.unavailable,
            "cmds": self.cli.commands,
        }
        if self.module._diff:
            label = target.describe()
            result["diff"] = {
                "before": listing(before),
                "after": listing(after),
                "before_header": "%s (before)" % label,
                "after_header": "%s (after)" % label,
            }
        return result


def predict(before: Records, planned: List[Transaction]) -> Records:
    """The environment after the dry-run transactions, as far as their reports say."""
    after = dict(before)
    for transaction in planned:
        for record in transaction.unlinked:
            after.pop(str(record.get("name", "")).lower(), None)
        for record in transaction.linked:
            after[str(record.get("name", "")).lower()] = record
    return after


def changes(before: Records, after: Records) -> Tuple[List[str], List[str]]:
    """Linked and unlinked packages between two readings, as name==version."""
    before_keys = {record_key(rec) for rec in before.values()}
    after_keys = {record_key(rec) for rec in after.values()}
    linked = [record_label(rec) for _n, rec in sorted(after.items()) if record_key(rec) not in before_keys]
    unlinked = [record_label(rec) for _n, rec in sorted(before.items()) if record_key(rec) not in after_keys]
    return linked, unlinked


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    if not module.params["conda"] or not is_executable(module.params["conda"]):
        module.fail_json(msg="conda executable not found or not executable: %s" % module.params["conda"])
    if module.params["mamba"] and not is_executable(module.params["mamba"]):
        module.fail_json(msg="mamba executable not found or not executable: %s" % module.params["mamba"])
    manager = PackageManager(module)
    try:
        result = manager.run()
    except CondaCommandError as err:
        target = manager.target or Target(module.params["environment"], module.params["prefix"], False)
        failure = command_failure(err, target, manager.specs)
        failure.setdefault("unavailable", manager.unavailable)
        module.fail_json(cmds=manager.cli.commands, **failure)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
