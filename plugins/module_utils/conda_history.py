# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Used by the conda_snapshot module of the base_env role. Reads a prefix's
# conda-meta/history and conda-meta/*.json directly, without running conda, so
# that a history conda itself cannot parse (mamba 2 writes its own form) still
# yields what the user asked for.
"""A tolerant reader of conda-meta/history (conda's and mamba 2's line forms)."""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Set, Tuple

# "==> 2024-05-01 12:00:00 <==" opens one request (conda and mamba alike).
_HEADER = re.compile(r"^==>\s*(.+?)\s*<==")
# "# update specs: [...]", "# remove specs: ...", "# neutered specs: ...".
_SPEC_LINE = re.compile(r"^#\s*(\w+)\s*specs:\s*(.*)$")
# conda < 4.5 wrote "python>=3.5,jupyter >=1.0.0,<2.0": a part that starts
# with a relation belongs to the spec before it.
_VERSION_RELATION = re.compile(r"^\s*(=|==|!=|<=|>=|<|>|~=)(?![=<>!~])\S+$")
_NAME = re.compile(r"^\s*([A-Za-z0-9_][A-Za-z0-9_.\-]*)")

UPDATE_ACTIONS = ("update", "install", "create")
REMOVE_ACTIONS = ("remove", "uninstall")
NEUTERED_ACTIONS = ("neutered",)


def history_spec_name(spec: str) -> str:
    """The package name of a recorded spec, lower-cased; "" when there is none.

    Handles "numpy", "numpy>=1,<2", "numpy 1.26.*", "conda-forge::numpy",
    "conda-forge/linux-64::numpy", a channel URL before "::", and the bracket
    forms of conda (numpy[version='<2']) and mamba 2 (numpy[version="<2"]).
    """
    head = spec.split("[", 1)[0]
    if "::" in head:
        head = head.rpartition("::")[2]
    match = _NAME.match(head)
    return match.group(1).lower() if match else ""


def _split_top_level(text: str) -> List[str]:
    """Split on commas that are outside brackets and quotes."""
    parts: List[str] = []
    depth, quote, current = 0, "", []
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _old_format(text: str) -> List[str]:
    """conda < 4.5's bare comma-separated form."""
    specs: List[str] = []
    for part in _split_top_level(text):
        if _VERSION_RELATION.match(part) and specs:
            specs[-1] = specs[-1] + "," + part.strip()
        else:
            specs.append(part.strip())
    return specs


def _quoted_strings(text: str) -> Optional[List[str]]:
    """The quoted items of a list, either quote, backslash escapes honoured.

    This reads mamba 2's std::quoted lists ["numpy[version=\\">=1,<2\\"]"]
    even where Python's literal_eval would not. None when a quote is left open.
    """
    items: List[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char not in "'\"":
            index += 1
            continue
        closing, value, index = char, [], index + 1
        while index < len(text) and text[index] != closing:
            if text[index] == "\\" and index + 1 < len(text):
                index += 1
            value.append(text[index])
            index += 1
        if index >= len(text):
            return None
        items.append("".join(value))
        index += 1
    return items


def parse_spec_list(payload: str) -> Optional[List[str]]:
    """The specs of one "# ACTION specs: PAYLOAD" line; None when unreadable."""
    payload = payload.strip()
    if not payload:
        return []
    if not payload.startswith("["):
        return _old_format(payload)
    try:
        value = ast.literal_eval(payload)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = None
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    if not payload.endswith("]"):
        return None
    inner = payload[1:-1].strip()
    quoted = _quoted_strings(inner)
    if quoted is None or quoted:
        return quoted
    # No quotes at all: "[numpy, scipy]".
    return _old_format(inner) if inner else []


@dataclass
class Request:
    """The spec lines of one ==> ... <== entry."""

    update: List[str] = field(default_factory=list)
    remove: List[str] = field(default_factory=list)
    neutered: List[str] = field(default_factory=list)


@dataclass
class HistoryReading:
    """What the history says the user asked for."""

    specs: Dict[str, str] = field(default_factory=dict)
    unparsed: List[str] = field(default_factory=list)
    requests: int = 0


def _entries(lines: Iterable[str]) -> List[List[str]]:
    """The comment lines of each entry (a comment before any header opens one)."""
    entries: List[List[str]] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if _HEADER.match(line):
            entries.append([])
        elif line.startswith("#"):
            if not entries:
                entries.append([])
            entries[-1].append(line)
    return entries


def _request(comments: List[str], unparsed: List[str]) -> Request:
    """One entry's update, remove and neutered specs.

    conda keeps only the last line of a kind in an entry; the real tools
    never write two, so a second one was added by hand and both count here.
    """
    request = Request()
    for line in comments:
        match = _SPEC_LINE.match(line)
        if match is None:
            continue
        action = match.group(1).lower()
        specs = parse_spec_list(match.group(2))
        if specs is None:
            unparsed.append(line)
            continue
        kept = []
        for spec in specs:
            spec = spec.strip()
            if not spec or spec.endswith("@"):
                continue
            if not history_spec_name(spec):
                unparsed.append(line)
                continue
            kept.append(spec)
        if not kept:
            continue
        if action in UPDATE_ACTIONS:
            request.update.extend(kept)
        elif action in REMOVE_ACTIONS:
            request.remove.extend(kept)
        elif action in NEUTERED_ACTIONS:
            request.neutered.extend(kept)
    return request


def read_history(text: str) -> HistoryReading:
    """Replay the requests like conda's History.get_requested_specs_map.

    Per entry, remove specs drop a name, then update specs set it, then
    neutered specs override it. So mamba 2's update (the same spec on its
    update and remove lines) keeps the package, and a later removal cancels
    an earlier request. Lines that cannot be read are collected, not fatal.
    """
    reading = HistoryReading()
    for comments in _entries(text.splitlines()):
        request = _request(comments, reading.unparsed)
        if request.update or request.remove or request.neutered:
            reading.requests += 1
        for spec in request.remove:
            reading.specs.pop(history_spec_name(spec), None)
        for spec in request.update + request.neutered:
            reading.specs[history_spec_name(spec)] = spec
    return reading


def installed_records(prefix: str) -> Tuple[Dict[str, dict], List[str]]:
    """conda-meta/*.json of PREFIX by package name, and the files that could not be read.

    A record whose JSON is broken still names its package through its file
    name (NAME-VERSION-BUILD.json).
    """
    meta = os.path.join(prefix, "conda-meta")
    records: Dict[str, dict] = {}
    broken: List[str] = []
    try:
        names = sorted(os.listdir(meta))
    except OSError:
        return records, broken
    for file_name in names:
        if not file_name.endswith(".json"):
            continue
        path = os.path.join(meta, file_name)
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            record = None
            broken.append(path)
        if isinstance(record, dict) and record.get("name"):
            records[str(record["name"]).lower()] = record
        else:
            parts = file_name[: -len(".json")].rsplit("-", 2)
            if len(parts) == 3 and parts[0]:
                records[parts[0].lower()] = {"name": parts[0]}
    return records, broken


def conda_owned_dists(records: Iterable[dict]) -> Set[str]:
    """Lower-cased *.dist-info / *.egg-info directory names that a conda record lists among its files."""
    owned: Set[str] = set()
    for record in records:
        for path in record.get("files") or []:
            for part in str(path).split("/"):
                if part.endswith((".dist-info", ".egg-info")):
                    owned.add(part.lower())
    return owned


def normalize_dist_name(name: str) -> str:
    """PEP 503 normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_installed(prefix: str, records: Iterable[dict]) -> Set[str]:
    """Normalised names of the distributions in PREFIX's site-packages that no conda record owns.

    That is how conda list tells a pip-installed package ("channel": "pypi").
    """
    owned = conda_owned_dists(records)
    found: Set[str] = set()
    lib = os.path.join(prefix, "lib")
    try:
        pythons = [entry for entry in os.listdir(lib) if entry.startswith("python")]
    except OSError:
        return found
    for python in pythons:
        site = os.path.join(lib, python, "site-packages")
        try:
            entries = os.listdir(site)
        except OSError:
            continue
        for entry in entries:
            if not entry.endswith((".dist-info", ".egg-info")) or entry.lower() in owned:
                continue
            found.add(normalize_dist_name(entry.rsplit(".", 1)[0].split("-", 1)[0]))
    return found


def mamba_prunes(prefix: str, removed: Iterable[str]) -> Set[str]:
    """The packages mamba 2's remove also takes out of PREFIX with REMOVED.

    mamba removes with --prune-deps on by default (libsolv's CLEANDEPS): the
    dependencies of the removed packages, and theirs, that the user never
    asked for (the history's requests) and that no remaining package needs.
    conda's dry run of the same removal does not report them.
    """
    records, _broken = installed_records(prefix)
    try:
        with open(os.path.join(prefix, "conda-meta", "history"), encoding="utf-8", errors="replace") as handle:
            requested = set(read_history(handle.read()).specs)
    except OSError:
        requested = set()
    doomed = {name.lower() for name in removed}

    def deps(name: str) -> Set[str]:
        depends = records.get(name, {}).get("depends") or []
        return {history_spec_name(str(dep)) for dep in depends} & set(records)

    candidates: Set[str] = set()
    stack = [dep for name in doomed for dep in deps(name)]
    while stack:
        name = stack.pop()
        if name in candidates or name in doomed or name in requested:
            continue
        candidates.add(name)
        stack.extend(deps(name))
    grew = True
    while grew:
        grew = False
        remaining = set(records) - doomed - candidates
        for name in sorted(candidates):
            if any(name in deps(other) for other in remaining):
                candidates.discard(name)
                grew = True
                break
    return candidates
