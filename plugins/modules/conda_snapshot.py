#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: report what the user explicitly installed in a conda prefix."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: conda_snapshot
short_description: Report what the user explicitly installed in a conda prefix
description:
  - Reads, and never changes, a conda prefix and reports what a rebuild needs
    to reinstall it.
  - C(conda) lists the specs the user asked for. They are read directly from
    C(PREFIX/conda-meta/history), in conda's and in mamba 2's line forms,
    replayed as conda replays them (per request, remove specs, then update
    specs, then neutered specs), and kept only for packages that
    C(PREFIX/conda-meta/*.json) says are installed. I(exclude) is left out.
  - C(conda env export --from-history --json) is asked too, as a second
    opinion. A spec it reports for an installed package that the history
    reading missed is added. Its failure (conda cannot parse a spec that
    mamba wrote, conda/conda#15123) is only a warning. Both of its spec
    forms are read, C(str(MatchSpec)) and conda 25.7's C(conda_env_form())
    (C(numpy=1.26.4), no channel); its fallback to every installed package
    (C(name=version=build)) when no request is left is reduced to the
    packages no other installed package needs.
  - C(pip) lists the packages pip installed (distributions in the prefix's
    site-packages that no conda record owns, which is how C(conda list) tells
    them) that no installed distribution requires. Requirements are read from
    each distribution's metadata (C(Requires-Dist), or an egg's
    C(requires.txt)), extras included. A requirement such as
    C(uvicorn[standard]) puts uvicorn's extra C(standard) in use, so what that
    extra requires is not recorded either; C(pip list --not-required) would
    count it as a user install. Environment markers are evaluated for the
    prefix's Python on this machine; a requirement whose marker cannot be
    read does not count (with a warning), so its package stays recorded.
    Packages that only require each other in a circle, reached from nothing
    else installed, are recorded too.
  - C(environments) lists the environments under C(PREFIX/envs).
  - A prefix that does not exist, or has no C(conda-meta), gives empty lists
    and C(exists=false), so that a rebuild from nothing does not fail.
  - A prefix that holds installed packages but from which no request could
    be read gives C(unreadable=true), and C(reason) says why. A rebuild
    must not tear such a prefix down on the strength of this snapshot.
options:
  prefix:
    description:
      - Path of the conda prefix (root prefix or any environment).
    type: path
    required: true
  conda:
    description:
      - Path of the conda executable asked for the second opinion. Defaults
        to C(PREFIX/bin/conda). The snapshot works without it.
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
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - reforge.workstation.common
  - reforge.workstation.common.read_only
notes:
  - A Python version the user requested in the root prefix (for example
    C(python<3.10)) is dropped with the default I(exclude); name C(python) out
    of the list to keep it.
  - Unlike conda, a history entry without a C(# cmd:) line still counts, and
    a spec line that cannot be read is reported in C(unparsed) instead of
    failing the whole reading.
"""

EXAMPLES = r"""
- name: Record what the base environment holds before it is wiped
  reforge.workstation.conda_snapshot:
    prefix: "{{ ansible_facts['env']['HOME'] }}/miniforge3"
  register: __base_env_snapshot

- name: Refuse to go on when the prefix holds packages but nothing could be read
  ansible.builtin.assert:
    that:
      - not __base_env_snapshot.unreadable
    fail_msg: "{{ __base_env_snapshot.reason }}"

- name: Reinstall the same packages, unpinned
  reforge.workstation.conda_package:
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
  description: Whether the prefix exists and is a conda environment (has C(conda-meta)).
  returned: always
  type: bool
  sample: true
unreadable:
  description:
    - True when C(conda-meta) holds installed packages but no request could
      be read for any of them (history missing, unreadable or yielding
      nothing, and conda's export no help either).
    - The lists are then empty although the prefix is not; C(reason) says why.
      A rebuild must stop rather than wipe such a prefix.
  returned: always
  type: bool
  sample: false
reason:
  description: Why C(exists) is false or C(unreadable) is true; empty otherwise.
  returned: always
  type: str
  sample: "/home/user/miniforge3 does not exist"
prefix:
  description: The prefix read.
  returned: always
  type: str
  sample: /home/user/miniforge3
conda:
  description:
    - Specs the user requested from conda, as the history records them
      (conda's or mamba 2's spelling), for installed packages only, I(exclude) left out.
  returned: always
  type: list
  elements: str
  sample: ["fastai", "sentencepiece", "numpy[version='<2']", "scipy[version=\">=1.11\"]"]
unpinned_conda:
  description: The names of C(conda), version constraints and channels stripped.
  returned: always
  type: list
  elements: str
  sample: ["fastai", "sentencepiece", "numpy", "scipy"]
pip:
  description: Packages installed by pip that no installed distribution requires (extras included), as name==version, sorted.
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
  description: Channels of the environment as C(conda env export) reports them; empty when it failed.
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
unparsed:
  description: History lines with specs that could not be read (skipped, each also a warning).
  returned: always
  type: list
  elements: str
  sample: ["# update specs: [\"numpy"]
sources:
  description:
    - Where the specs in C(conda) came from (C(history), C(conda env export)).
    - "C(conda env export (explicit list: packages nothing else needs)) when conda (25.7 and later)
      found no request in the history and exported every installed package with its build; then
      only the packages no other installed package depends on are kept."
  returned: always
  type: list
  elements: str
  sample: ["history", "conda env export"]
cmds:
  description: Every command run, as argument lists.
  returned: always
  type: list
  elements: list
warnings:
  description: Parts that could not be read (for example an environment marker, or conda's export failing).
  returned: when any
  type: list
  elements: str
"""

import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Set, Tuple

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reforge.workstation.plugins.module_utils.conda_cli import (
    CondaCli,
    CondaCommandError,
    Target,
    is_environment,
    is_executable,
    parse_json_output,
    spec_name,
    unique,
)
from ansible_collections.reforge.workstation.plugins.module_utils.conda_history import (
    conda_owned_dists,
    history_spec_name,
    installed_records,
    read_history,
)
from ansible_collections.reforge.workstation.plugins.module_utils.pip_dists import installed_dists, normalize_name, requested_dists

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "prefix": {"type": "path", "required": True},
    "conda": {"type": "path"},
    "include_environments": {"type": "bool", "default": True},
    "exclude": {"type": "list", "elements": "str", "default": ["python", "pip", "conda", "mamba"]},
}
EXPORT = "conda env export"
EXPLICIT = "conda env export (explicit list: packages nothing else needs)"
# name=version=build: how conda >= 25.7 exports an installed package (conda_env_form()).
_EXPLICIT_SPEC = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*=[^=\s\[]+=[^=\s\[]+$")


def empty_result(prefix: str, reason: str, cli: CondaCli, exists: bool = False) -> Dict[str, Any]:
    """The answer for a prefix there is nothing to read from."""
    return {
        "changed": False,
        "exists": exists,
        "unreadable": False,
        "reason": reason,
        "prefix": prefix,
        "conda": [],
        "unpinned_conda": [],
        "pip": [],
        "unpinned_pip": [],
        "channels": [],
        "environments": [],
        "unparsed": [],
        "sources": [],
        "cmds": cli.commands,
    }


def read_text(path: str) -> Tuple[str, str]:
    """A file's text (undecodable bytes replaced) and, if it could not be read, why."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(), ""
    except FileNotFoundError:
        return "", "%s does not exist" % path
    except OSError as err:
        return "", "%s cannot be read: %s" % (path, err.strerror or err)


def failure_summary(err: CondaCommandError) -> str:
    """One line saying why conda failed: its JSON error (--json puts it on stdout) or stderr's first line."""
    try:
        document = parse_json_output(err.stdout)
    except ValueError:
        document = None
    if isinstance(document, dict) and document.get("message"):
        message = str(document["message"]).strip().splitlines()[0]
        return "%s: %s" % (document.get("exception_name", "error"), message)
    first = next((line.strip() for line in err.stderr.splitlines() if line.strip()), "")
    return first or err.reason or "exit code %d" % err.rc


def export_opinion(module: AnsibleModule, cli: CondaCli, prefix: str) -> Tuple[List[str], List[str]]:
    """conda's own --from-history reading (specs, channels); empty, with a warning, when conda fails."""
    if not is_executable(cli.conda):
        return [], []
    target = Target(None, prefix, True)
    try:
        document = cli.run_json(["env", "export", "--from-history", "--json"] + target.args)
    except CondaCommandError as err:
        module.warn("%s failed for %s (%s); the history was read directly instead."
                    % (EXPORT, prefix, failure_summary(err)))
        return [], []
    if not isinstance(document, dict):
        return [], []
    specs = [dep for dep in document.get("dependencies") or [] if isinstance(dep, str)]
    return specs, [str(channel) for channel in document.get("channels") or []]


def pip_requests(module: AnsibleModule, prefix: str, records: Dict[str, dict], excluded: Set[str]) -> List[str]:
    """name==version of the pip-installed distributions that no installed distribution requires.

    Read from site-packages, not from pip: pip list --not-required ignores
    requirements behind an extra, so what python-fasthtml's uvicorn[standard]
    brought in (httptools, uvloop, ...) would look like the user's own installs.
    """
    dists = installed_dists(prefix, str(records.get("python", {}).get("version") or ""))
    owned = conda_owned_dists(records.values())
    pip_folders = {dist.folder for dist, _python in dists if dist.folder.lower() not in owned}
    skipped = {normalize_name(name) for name in excluded}
    requested, unreadable = requested_dists(dists, pip_folders, skipped)
    for marker in unreadable:
        module.warn("Could not read the environment marker %r in %s; what it guards is kept in the snapshot."
                    % (marker, prefix))
    return ["%s==%s" % (dist.name, dist.version) if dist.version else dist.name for dist in requested]


def environments_under(prefix: str) -> List[str]:
    """Names of the conda environments in PREFIX/envs."""
    envs_dir = os.path.join(prefix, "envs")
    try:
        entries = os.listdir(envs_dir)
    except OSError:
        return []
    return sorted(name for name in entries if is_environment(os.path.join(envs_dir, name)))


@dataclass
class Requests:
    """What the user asked for, and how it was read."""

    specs: Dict[str, str] = field(default_factory=dict)
    unparsed: List[str] = field(default_factory=list)
    sources: List[str] = field(default_factory=list)
    channels: List[str] = field(default_factory=list)
    history_problem: str = ""


def leaves(records: Dict[str, dict]) -> Set[str]:
    """Installed packages that no other installed package depends on."""
    needed = {history_spec_name(str(dep)) for rec in records.values() for dep in rec.get("depends") or []}
    return {name for name in records if name not in needed}


def requested(module: AnsibleModule, cli: CondaCli, prefix: str, installed: Dict[str, dict]) -> Requests:
    """Specs of installed packages by name: the history first, conda's export second."""
    text, problem = read_text(os.path.join(prefix, "conda-meta", "history"))
    reading = read_history(text)
    for line in reading.unparsed:
        module.warn("Skipped an unreadable line of %s/conda-meta/history: %s" % (prefix, line))
    found = Requests(unparsed=reading.unparsed, history_problem=problem)
    found.specs = {name: spec for name, spec in reading.specs.items() if name in installed}
    if found.specs:
        found.sources.append("history")
    exported, found.channels = export_opinion(module, cli, prefix)
    if exported and all(_EXPLICIT_SPEC.match(spec) for spec in exported):
        # conda >= 25.7 exports every installed package, with its build, when the
        # history holds no request: those are not the user's requests. What no
        # other package needs is the closest reading of what the user asked for.
        tops = leaves(installed)
        exported = [spec for spec in exported if history_spec_name(spec) in tops]
        if exported and not found.specs:
            module.warn("conda env export found no request in %s/conda-meta/history and listed every installed "
                        "package; the snapshot keeps those that no other package needs." % prefix)
        label = EXPLICIT
    else:
        label = EXPORT
    for spec in exported:
        name = history_spec_name(spec)
        if name in installed and name not in found.specs:
            found.specs[name] = spec
            if label not in found.sources:
                found.sources.append(label)
    return found


def snapshot(module: AnsibleModule, cli: CondaCli, prefix: str) -> Dict[str, Any]:
    params = module.params
    excluded = {name.strip().lower() for name in params["exclude"]}
    if not os.path.isdir(prefix):
        return empty_result(prefix, "%s does not exist" % prefix, cli)
    if not is_environment(prefix):
        return empty_result(prefix, "%s is not a conda environment (no conda-meta)" % prefix, cli)
    records, broken = installed_records(prefix)
    for path in broken:
        module.warn("%s is not valid JSON; its package is named after the file." % path)
    found = requested(module, cli, prefix, records)
    kept = [spec for name, spec in found.specs.items() if name not in excluded]
    pip = pip_requests(module, prefix, records, excluded)
    unreadable = bool(records) and not found.specs
    reason = ""
    if unreadable:
        reason = (
            "%s holds %d installed packages, but no request could be read for any of them (%s; "
            "%d unreadable spec lines); a rebuild would lose what the user installed."
            % (prefix, len(records), found.history_problem or "the history names no installed package",
               len(found.unparsed))
        )
    return {
        "changed": False,
        "exists": True,
        "unreadable": unreadable,
        "reason": reason,
        "prefix": prefix,
        "conda": kept,
        "unpinned_conda": unique(spec_name(spec) for spec in kept),
        "pip": pip,
        "unpinned_pip": [entry.split("==", 1)[0] for entry in pip],
        "channels": found.channels,
        "environments": environments_under(prefix) if params["include_environments"] else [],
        "unparsed": found.unparsed,
        "sources": found.sources,
        "cmds": cli.commands,
    }


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    prefix = os.path.normpath(os.path.abspath(module.params["prefix"]))
    conda = module.params["conda"] or os.path.join(prefix, "bin", "conda")
    cli = CondaCli(module, conda)
    module.exit_json(**snapshot(module, cli, prefix))


if __name__ == "__main__":
    main()
