# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Combine the layers of link entries into the one list the roles read.

The storage_links, prerun and doctor roles all read storage_links_combined_entries,
which this filter builds from the layers in the order given (the role's defaults,
then all hosts, a group, one host): an entry is known by its name, a later layer
updates the keys it sets, and state=absent drops it. Every entry is checked here,
so a bad one is refused with the variable and the index that hold it.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from ansible.errors import AnsibleFilterError

KINDS = ("dir", "file")
STATES = ("present", "absent")
KEYS = ("name", "kind", "mode", "secret", "state")
_MODE = re.compile(r"^[0-7]{3,4}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def name_problem(name: Any) -> str:
    """Why name is not a path relative to home that stays inside it ('' when it is)."""
    if not isinstance(name, str):
        return f"name is {name!r}: expected a string"
    if not name or name in (".", ".."):
        return f"name is {name!r}: expected a path inside the home, not the home itself"
    if name.startswith("/"):
        return f"name is {name!r}: expected a path relative to the home, not an absolute one"
    if _CONTROL.search(name):
        return f"name is {name!r}: it holds a control character"
    if name.startswith("../") or posixpath.normpath(name) != name:
        return f"name is {name!r}: expected a plain relative path such as .config or .local/share/x, without '..', '.' or doubled or trailing slashes"
    return ""


def entry_problem(entry: Any) -> str:
    """Why one entry of a layer is malformed ('' when it is not)."""
    if not isinstance(entry, dict):
        return f"expected a dict with a name, got {entry!r}"
    unknown = sorted(str(key) for key in entry if key not in KEYS)
    if unknown:
        return f"unknown key(s) {', '.join(unknown)}: an entry takes {', '.join(KEYS)}"
    problem = name_problem(entry.get("name"))
    if problem:
        return problem
    if "kind" in entry and entry["kind"] not in KINDS:
        return f"kind is {entry['kind']!r}: expected dir or file"
    mode = entry.get("mode")
    if mode not in (None, "") and not (isinstance(mode, str) and _MODE.match(mode)):
        return f"mode is {mode!r}: expected an octal mode written as a quoted string, such as \"0700\""
    if "secret" in entry and not isinstance(entry["secret"], bool):
        return f"secret is {entry['secret']!r}: expected true or false"
    if entry.get("state", "present") not in STATES:
        return f"state is {entry['state']!r}: expected present or absent"
    return ""


def link_entries(layers: Any) -> list[dict[str, Any]]:
    """The entries of every layer, combined by name.

    layers maps each variable name to its list, in the order they apply (a plain
    list is one layer). Returns dicts with name, kind (dir or file), mode ('' for
    none) and secret, in the order the names were first declared.
    """
    if isinstance(layers, list):
        layers = {"entries": layers}
    if not isinstance(layers, dict):
        raise AnsibleFilterError(f"link_entries expects a dict of layers (variable name: list), got {type(layers).__name__}")
    combined: dict[str, dict[str, Any]] = {}
    for variable, entries in layers.items():
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise AnsibleFilterError(f"{variable} is {entries!r}: expected a list of entries such as {{name: .vim, kind: dir}}")
        for index, entry in enumerate(entries):
            problem = entry_problem(entry)
            if problem:
                raise AnsibleFilterError(f"{variable}[{index}]: {problem}")
            name = entry["name"]
            if entry.get("state", "present") == "absent":
                combined.pop(name, None)
                continue
            # A name declared again keeps its place; one dropped and declared again goes last.
            combined.setdefault(name, {}).update((key, value) for key, value in entry.items() if key != "state")
    return [
        {
            "name": name,
            "kind": entry.get("kind", "dir"),
            "mode": entry.get("mode") or "",
            "secret": bool(entry.get("secret", False)),
        }
        for name, entry in combined.items()
    ]


class FilterModule:
    """The link_entries filter."""

    def filters(self) -> dict[str, Any]:
        return {"link_entries": link_entries}
