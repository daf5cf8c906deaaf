# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Shared by the conda_package, conda_environment and conda_snapshot modules of
# the base_env role. Everything here talks to conda (or mamba) through its
# command line and its documented JSON output, so the modules work against any
# conda >= 4.6 and mamba 1.x / 2.x.
"""Helpers to run conda/mamba and read their JSON and error output."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

# conda's own answer when an install/update would change nothing.
NOTHING_TO_DO = "All requested packages already installed"

# conda's solver adds work that mamba 2, which runs the real transactions, never
# does: UPDATE jobs for the aggressive_update_packages (ca-certificates, certifi,
# openssl) and, in the root prefix, for conda itself (auto_update_conda). A dry
# run with them would report changes the real run does not make, for ever, so
# every conda call turns them off (the environment beats .condarc in conda; an
# empty list value means none). mamba ignores both.
CONDA_AS_MAMBA = {"CONDA_AGGRESSIVE_UPDATE_PACKAGES": "", "CONDA_AUTO_UPDATE_CONDA": "false"}

# Text that only a failed solve produces: libmamba's problem report (mamba and
# conda's default libmamba solver), conda's PackagesNotFoundError and the
# classic solver's UnsatisfiableError / ResolvePackageNotFound.
_SOLVER_FAILURE_MARKERS = (
    "could not solve for environment specs",
    "packagesnotfounderror",
    "packages are not available from current channels",
    "unsatisfiableerror",
    "resolvepackagenotfound",
    "nothing provides",
    "does not exist (perhaps a typo or a missing channel)",
    "is not installable because",
)

# A match spec may start with "channel::" or "channel/subdir::"; the package
# name follows and ends where a version, build or bracket part starts.
_SPEC_NAME = re.compile(r"^\s*(?:(?P<channel>[^\s:]+)::)?(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)")
_NAME_ONLY = re.compile(r"^\s*[A-Za-z0-9_][A-Za-z0-9_.\-]*\s*$")

# One line of libmamba's problem tree, e.g.
#   "    └─ nosuchpkg =* * does not exist (perhaps a typo or a missing channel)."
#   "    ├─ python <3.10 * is not installable because it conflicts with ..."
_TREE_PROBLEM = re.compile(
    r"[├└]─\s*(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)\b[^\n]*?"
    r"(?:does not exist|is not installable|is uninstallable|cannot be installed|could not be installed)"
)
_NOTHING_PROVIDES = re.compile(r"nothing provides requested (?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)")
_NOT_FOUND_ITEM = re.compile(r"^\s*-\s+(?P<spec>\S.*?)\s*$")


def spec_name(spec: str) -> str:
    """Return the package name of a conda match spec, lower-cased.

    Works for "fastai", "python<3.10", "python 3.12.*", "numpy=1.26",
    "python[version='<3.10']" (how conda prints history specs),
    'numpy[version=">=1,<2"]' (how mamba 2 prints them), "conda-forge::numpy"
    and a channel URL before "::".
    """
    head = spec.split("[", 1)[0]
    if "::" in head:
        head = head.rpartition("::")[2]
    match = _SPEC_NAME.match(head)
    if match is None:
        return spec.strip().lower()
    return match.group("name").lower()


def is_name_only(spec: str) -> bool:
    """True for a bare package name, the only spec `conda update` accepts."""
    return _NAME_ONLY.match(spec) is not None


def normalize_pip_name(name: str) -> str:
    """PEP 503 normalisation, so "Foo_Bar" from pip matches conda's "foo-bar"."""
    return re.sub(r"[-_.]+", "-", name).lower()


def unique(items: Iterable[str]) -> List[str]:
    """Drop repeats, keep the first occurrence's position."""
    seen: Set[str] = set()
    result = []
    for item in items:
        if item not in seen:
            seen.add(item)
            result.append(item)
    return result


def record_label(record: Dict[str, Any]) -> str:
    """name==version, how packages are reported to the user."""
    return "%s==%s" % (record.get("name", "?"), record.get("version", "?"))


def record_key(record: Dict[str, Any]) -> str:
    """Identity of an installed package build (a rebuild counts as a change)."""
    dist = record.get("dist_name")
    if dist:
        return str(dist)
    return "%s-%s-%s" % (record.get("name"), record.get("version"), record.get("build_string", ""))


def is_pip_record(record: Dict[str, Any]) -> bool:
    """conda list shows packages that pip installed with channel "pypi"."""
    return record.get("channel") == "pypi" or record.get("platform") == "pypi"


def conda_records(records: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Packages conda manages in an environment, by name (pip's are left out)."""
    return {str(rec["name"]).lower(): rec for rec in records if "name" in rec and not is_pip_record(rec)}


def versions(records: Dict[str, Dict[str, Any]]) -> Dict[str, str]:
    """name -> version."""
    return {name: str(rec.get("version", "")) for name, rec in sorted(records.items())}


def listing(records: Dict[str, Dict[str, Any]]) -> str:
    """Text for a diff: one name==version line per package, sorted."""
    return "".join(record_label(rec) + "\n" for _name, rec in sorted(records.items()))


def parse_json_output(text: str) -> Any:
    """Parse the JSON document conda/mamba printed on stdout.

    Some versions print a line of noise (a deprecation warning, a progress
    message) around it, so fall back to the outermost {...} or [...].
    """
    text = text.strip()
    if not text:
        raise ValueError("no output")
    try:
        return json.loads(text)
    except ValueError:
        pass
    for opening, closing in (("{", "}"), ("[", "]")):
        start, end = text.find(opening), text.rfind(closing)
        if start != -1 and end > start:
            try:
                return json.loads(text[start:end + 1])
            except ValueError:
                continue
    raise ValueError("output is not JSON")


class CondaCommandError(Exception):
    """A conda/mamba command that failed (non-zero exit or unreadable output)."""

    def __init__(self, cmd: List[str], rc: int, stdout: str, stderr: str, reason: str = "") -> None:
        super().__init__(reason or "command failed with exit code %d" % rc)
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.reason = reason

    def error_text(self) -> str:
        """stderr plus any message conda put in a JSON error document on stdout."""
        parts = [self.stderr, self.stdout]
        try:
            document = parse_json_output(self.stdout)
        except ValueError:
            document = None
        if isinstance(document, dict):
            for key in ("error", "message", "solver_problems"):
                value = document.get(key)
                if isinstance(value, str):
                    parts.append(value)
                elif isinstance(value, list):
                    parts.extend(str(item) for item in value)
        return "\n".join(part for part in parts if part)

    @property
    def solver_failure(self) -> bool:
        """True when the failure means the specs do not resolve (not a crash, a network error...)."""
        text = self.error_text().lower()
        return any(marker in text for marker in _SOLVER_FAILURE_MARKERS)

    def unresolved(self, requested: Sequence[str]) -> List[str]:
        """The requested specs that the error report names as not installable.

        Empty when the report names none of them (the caller then knows only
        that the set as a whole does not resolve).
        """
        text = self.error_text()
        names: Set[str] = set()
        names.update(m.group("name").lower() for m in _TREE_PROBLEM.finditer(text))
        names.update(m.group("name").lower() for m in _NOTHING_PROVIDES.finditer(text))
        names.update(spec_name(spec) for spec in self._not_found_specs(text))
        try:
            document = parse_json_output(self.stdout)
        except ValueError:
            document = None
        if isinstance(document, dict) and isinstance(document.get("packages"), list):
            names.update(spec_name(str(spec)) for spec in document["packages"])
        return [spec for spec in requested if spec_name(spec) in names]

    @staticmethod
    def _not_found_specs(text: str) -> List[str]:
        """The "  - spec" list that follows PackagesNotFoundError's header."""
        specs: List[str] = []
        in_list = False
        for line in text.splitlines():
            if "not available from current channels" in line:
                in_list = True
                continue
            if not in_list:
                continue
            match = _NOT_FOUND_ITEM.match(line)
            if match:
                specs.append(match.group("spec"))
            elif line.strip() and specs:
                break
        return specs


@dataclass
class Transaction:
    """What one install/update/remove/create did, or would do (dry run)."""

    verb: str
    specs: List[str]
    cmd: List[str]
    linked: List[Dict[str, Any]] = field(default_factory=list)
    unlinked: List[Dict[str, Any]] = field(default_factory=list)
    nothing_to_do: bool = False
    stdout: str = ""
    stderr: str = ""


def parse_transaction(document: Any) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]], bool]:
    """LINK and UNLINK records of conda's --json transaction report, and whether nothing happens."""
    if not isinstance(document, dict):
        return [], [], True
    if NOTHING_TO_DO.lower() in str(document.get("message", "")).lower():
        return [], [], True
    actions = document.get("actions") or {}
    # Old conda versions reported a list of per-prefix action groups.
    groups = actions if isinstance(actions, list) else [actions]
    linked: List[Dict[str, Any]] = []
    unlinked: List[Dict[str, Any]] = []
    for group in groups:
        if isinstance(group, dict):
            linked.extend(rec for rec in group.get("LINK") or [] if isinstance(rec, dict))
            unlinked.extend(rec for rec in group.get("UNLINK") or [] if isinstance(rec, dict))
    return linked, unlinked, not linked and not unlinked


@dataclass
class Target:
    """The environment a module acts on."""

    name: Optional[str]
    prefix: Optional[str]
    exists: bool
    is_root: bool = False

    @property
    def args(self) -> List[str]:
        """How to point conda and mamba at it: always by path (-p).

        -n NAME would leave the choice of directory to each tool, and mamba 2
        takes it from MAMBA_ROOT_PREFIX in the caller's environment.
        """
        if not self.prefix:
            raise ValueError("no path known for %s" % self.describe())
        return ["-p", self.prefix]

    def describe(self) -> str:
        """How messages name it."""
        if self.is_root or not (self.name or self.prefix):
            return ("the root prefix %s" % (self.prefix or "")).strip()
        if self.name:
            return "environment '%s'" % self.name
        return "prefix %s" % self.prefix


def is_environment(path: str) -> bool:
    """A conda environment is a directory holding conda-meta/."""
    return os.path.isdir(os.path.join(path, "conda-meta"))


def is_executable(path: Optional[str]) -> bool:
    """An existing file we may run."""
    return bool(path) and os.path.isfile(str(path)) and os.access(str(path), os.X_OK)


def same_path(first: str, second: str) -> bool:
    """Compare paths after resolving symlinks (a prefix is often reached through one)."""
    return os.path.realpath(first) == os.path.realpath(second)


def installation_root(conda: Optional[str]) -> Optional[str]:
    """The root prefix a conda executable belongs to: ROOT for ROOT/bin/conda or ROOT/condabin/conda."""
    if not conda:
        return None
    parent = os.path.dirname(os.path.normpath(os.path.abspath(conda)))
    if os.path.basename(parent) in ("bin", "condabin"):
        return os.path.dirname(parent)
    return None


def channel_args(channels: Sequence[str]) -> List[str]:
    """-c for each channel, and only those channels when any are given."""
    args: List[str] = []
    for channel in channels:
        args.extend(["-c", channel])
    if args:
        args.append("--override-channels")
    return args


class CondaCli:
    """Runs conda (and mamba for real transactions) through AnsibleModule.run_command."""

    def __init__(self, module: Any, conda: str, mamba: Optional[str] = None,
                 root_prefix: Optional[str] = None) -> None:
        self.module = module
        self.conda = conda
        self.mamba = mamba
        self.root_prefix = root_prefix or installation_root(conda)
        self.commands: List[List[str]] = []

    def environment(self, environ_update: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        """What every command gets on top of the caller's environment.

        mamba 2 resolves -n NAME (and its own configuration) against
        MAMBA_ROOT_PREFIX from the caller's environment, which the mamba shell
        block exports: a terminal set up for another installation would send
        a new environment there. Pinning it to the managed root keeps every
        call on the installation the module was given.
        """
        merged = {"MAMBA_ROOT_PREFIX": self.root_prefix} if self.root_prefix else {}
        merged.update(environ_update or {})
        return merged

    def run(self, cmd: List[str], environ_update: Optional[Dict[str, str]] = None) -> Tuple[int, str, str]:
        """Run an argument list (never a shell string); remember it for the result."""
        self.commands.append(list(cmd))
        # Specs such as "python<3.10" are literal: no ~ or $VAR expansion.
        rc, out, err = self.module.run_command(
            cmd, check_rc=False, expand_user_and_vars=False, environ_update=self.environment(environ_update)
        )
        return rc, out or "", err or ""

    def run_checked(self, cmd: List[str], environ_update: Optional[Dict[str, str]] = None) -> str:
        """Run; raise CondaCommandError unless it exits 0. Returns stdout."""
        rc, out, err = self.run(cmd, environ_update)
        if rc != 0:
            raise CondaCommandError(cmd, rc, out, err)
        return out

    def run_json(self, args: List[str], executable: Optional[str] = None,
                 environ_update: Optional[Dict[str, str]] = None) -> Any:
        """Run a command that prints JSON; raise CondaCommandError on failure."""
        cmd = [executable or self.conda] + list(args)
        rc, out, err = self.run(cmd, environ_update)
        if rc != 0:
            raise CondaCommandError(cmd, rc, out, err)
        try:
            return parse_json_output(out)
        except ValueError as exc:
            raise CondaCommandError(cmd, rc, out, err, "unreadable JSON output: %s" % exc) from exc

    def info(self) -> Dict[str, Any]:
        """`conda info --json`: root_prefix, envs, envs_dirs..."""
        document = self.run_json(["info", "--json"])
        if not isinstance(document, dict) or "root_prefix" not in document:
            raise CondaCommandError([self.conda, "info", "--json"], 0, json.dumps(document), "",
                                    "conda info --json did not report root_prefix")
        return document

    def list_packages(self, target: Target) -> List[Dict[str, Any]]:
        """`conda list --json` of the target: one record per installed package."""
        document = self.run_json(["list", "--json"] + target.args)
        if not isinstance(document, list):
            raise CondaCommandError([self.conda, "list", "--json"] + target.args, 0, json.dumps(document), "",
                                    "conda list --json did not return a list")
        return [rec for rec in document if isinstance(rec, dict)]

    def transaction(self, verb: str, target: Target, specs: Sequence[str], channels: Sequence[str] = (),
                    dry_run: bool = False) -> Transaction:
        """install / update / remove / create.

        Dry runs always use conda, whose --json report is the documented
        format; real runs use mamba when it was given (faster), conda otherwise.
        """
        executable = self.conda if dry_run or not self.mamba else self.mamba
        cmd = [executable, verb, "-y", "--json"]
        if dry_run:
            cmd.append("--dry-run")
        if executable == self.conda and verb == "install":
            # conda turns a requested spec whose package is installed into an
            # update; mamba 2's install keeps what satisfies it. -S makes conda
            # answer "already installed" when every spec is satisfied.
            cmd.append("--satisfied-skip-solve")
        cmd.extend(target.args)
        if verb != "remove":
            cmd.extend(channel_args(channels))
        cmd.extend(specs)
        rc, out, err = self.run(cmd, CONDA_AS_MAMBA)
        if rc != 0:
            raise CondaCommandError(cmd, rc, out, err)
        try:
            document = parse_json_output(out)
        except ValueError as exc:
            if dry_run:
                # A dry run is only worth its report.
                raise CondaCommandError(cmd, rc, out, err, "unreadable JSON output: %s" % exc) from exc
            document = None
        linked, unlinked, nothing = parse_transaction(document)
        if document is None:
            # A successful real run whose output we cannot read: the caller
            # compares `conda list` before and after to learn what changed.
            nothing = False
        return Transaction(verb, list(specs), cmd, linked, unlinked, nothing, out, err)

    def resolve(self, name: Optional[str], prefix: Optional[str], info: Optional[Dict[str, Any]] = None) -> Target:
        """Find the environment given by name, by prefix, or (neither) the root prefix.

        A named environment is looked for the way conda does: NAME under each
        of envs_dirs, then among the registered environments.
        """
        if prefix:
            path = os.path.normpath(os.path.abspath(prefix))
            is_root = False
            if info is not None:
                is_root = same_path(path, str(info["root_prefix"]))
            return Target(None, path, is_environment(path), is_root)
        if info is None:
            info = self.info()
        root = str(info["root_prefix"])
        if not name or name in ("base", "root"):
            return Target(name or None, root, True, True)
        for envs_dir in info.get("envs_dirs") or []:
            candidate = os.path.join(str(envs_dir), name)
            if is_environment(candidate):
                return Target(name, candidate, True, same_path(candidate, root))
        for env in info.get("envs") or []:
            if os.path.basename(str(env).rstrip("/")) == name and is_environment(str(env)):
                return Target(name, str(env), True, same_path(str(env), root))
        # A new environment goes where conda would put it: the first envs_dirs entry.
        envs_dirs = [str(d) for d in info.get("envs_dirs") or []] or [os.path.join(root, "envs")]
        return Target(name, os.path.join(envs_dirs[0], name), False)


def error_summary(err: CondaCommandError) -> str:
    """The first line of stderr, or else of the error object conda printed on stdout.

    With --json, conda prints its errors as a JSON object on stdout and leaves
    stderr empty; mamba prints text on stderr.
    """
    first = next((line.strip() for line in err.stderr.splitlines() if line.strip()), "")
    if first:
        return first
    try:
        document = parse_json_output(err.stdout)
    except ValueError:
        return ""
    if not isinstance(document, dict):
        return ""
    message = str(document.get("message") or document.get("error") or "").strip()
    name = str(document.get("exception_name") or "").strip()
    line = message.splitlines()[0].strip() if message else ""
    return "%s: %s" % (name, line) if name and line else name or line


def command_failure(err: CondaCommandError, target: Target, specs: Sequence[str]) -> Dict[str, Any]:
    """fail_json arguments that explain a failed command in the user's terms."""
    result: Dict[str, Any] = {
        "cmd": err.cmd,
        "rc": err.rc,
        "stdout": err.stdout,
        "stderr": err.stderr,
    }
    if err.solver_failure and specs:
        unresolved = err.unresolved(specs)
        if unresolved:
            result["msg"] = (
                "Could not resolve %s for %s: no installable version matches "
                "(check the name, the version constraint and the channels)."
                % (", ".join(unresolved), target.describe())
            )
        else:
            result["msg"] = (
                "The packages %s cannot be installed together in %s: the solver found no "
                "consistent set (see stderr for its report)." % (", ".join(specs), target.describe())
            )
        result["unavailable"] = unresolved
        return result
    reason = err.reason or "exit code %d" % err.rc
    first_line = error_summary(err)
    result["msg"] = "%s failed for %s (%s)%s" % (
        " ".join(err.cmd[:2]), target.describe(), reason, ": " + first_line if first_line else "."
    )
    return result
