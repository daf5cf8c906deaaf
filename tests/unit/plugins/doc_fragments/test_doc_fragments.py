"""The modules' documentation, read as ansible-doc reads it: fragments merged in by Ansible itself.

This is a controller test (it imports ansible.utils), so under ``ansible-test units``
and plain pytest alike the fragments are merged by Ansible's own add_fragments, with
a loader that finds the two kinds of fragments the modules use by their Python name.
"""

from __future__ import annotations

import importlib
import types
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from ansible.utils.plugin_docs import add_fragments

COLLECTION = Path(__file__).resolve().parents[4]
MODULES = sorted(path.stem for path in (COLLECTION / "plugins" / "modules").glob("*.py"))
FRAGMENTS = sorted(path.stem for path in (COLLECTION / "plugins" / "doc_fragments").glob("*.py"))
PACKAGES = {
    "ansible.builtin": "ansible.plugins.doc_fragments.",
    "reforge.workstation": "ansible_collections.reforge.workstation.plugins.doc_fragments.",
}


def module(name: str) -> Any:
    return importlib.import_module("ansible_collections.reforge.workstation.plugins.modules." + name)


def extended(name: str) -> list[str]:
    return yaml.safe_load(module(name).DOCUMENTATION).get("extends_documentation_fragment") or []


class FragmentLoader:
    """Finds ansible.builtin.<x> and reforge.workstation.<x> as fragment_loader does; nothing for <x>.<part>."""

    def get(self, name: str) -> Optional[type]:
        collection, short = name.rpartition(".")[::2]
        if collection not in PACKAGES:
            return None
        try:
            found = importlib.import_module(PACKAGES[collection] + short).ModuleDocFragment
        except ImportError:
            return None
        return type("ModuleDocFragment", (found,), {"ansible_name": name})


def documentation(code: Any) -> dict[str, Any]:
    """A module's DOCUMENTATION with its fragments merged in, as ansible-doc shows it."""
    doc = yaml.safe_load(code.DOCUMENTATION)
    add_fragments(doc, code.__file__, FragmentLoader(), is_module=True)
    return doc


def option_problems(options: dict[str, Any], spec: dict[str, Any], within: str) -> list[str]:
    """Where documented options and the argument spec disagree, sub-options included."""
    problems: list[str] = []
    for option in sorted(set(options) ^ set(spec)):
        state = "undocumented" if option in spec else "documented but not accepted"
        problems.append("option %s%s is %s" % (within, option, state))
    for option in sorted(set(options) & set(spec)):
        documented, accepted = options[option], spec[option]
        if not documented.get("description"):
            problems.append("option %s%s has no description" % (within, option))
        for key, fallback in (("type", "str"), ("required", False), ("default", None), ("choices", None),
                              ("elements", None), ("no_log", False)):
            if documented.get(key, fallback) != accepted.get(key, fallback):
                problems.append("option %s%s: %s documented as %r, argument_spec says %r"
                                % (within, option, key, documented.get(key, fallback), accepted.get(key, fallback)))
        if documented.get("suboptions") or accepted.get("options"):
            problems += option_problems(documented.get("suboptions") or {}, accepted.get("options") or {},
                                        "%s%s." % (within, option))
    return problems


def documentation_problems(code: Any) -> list[str]:
    """Where a module's documentation and what it does disagree: options, attributes, EXAMPLES and RETURN."""
    problems: list[str] = []
    name = code.__name__.rpartition(".")[2]
    doc = documentation(code)
    examples, returns = yaml.safe_load(code.EXAMPLES), yaml.safe_load(code.RETURN)
    if doc.get("module") != name:
        problems.append("DOCUMENTATION names module %r" % doc.get("module"))
    for key in ("short_description", "description", "author", "options", "attributes"):
        if not doc.get(key):
            problems.append("DOCUMENTATION lacks %s" % key)
    problems += option_problems(doc.get("options") or {}, code.ARGUMENT_SPEC, "")
    for attribute_name, attribute in sorted((doc.get("attributes") or {}).items()):
        for key in ("description", "support"):
            if not attribute.get(key):
                problems.append("attribute %s has no %s" % (attribute_name, key))
        if attribute.get("support", "full") not in ("full", "partial", "none", "N/A"):
            problems.append("attribute %s: support %r" % (attribute_name, attribute["support"]))
    if not isinstance(examples, list) or not examples or not all(task.get("name") for task in examples):
        problems.append("EXAMPLES is not a list of named tasks")
    if not isinstance(returns, dict) or "changed" not in returns:
        problems.append("RETURN does not document changed")
    else:
        for key, value in returns.items():
            problems += ["RETURN %s lacks %s" % (key, field) for field in ("description", "returned", "type")
                         if field not in value]
    return problems


@pytest.mark.parametrize("name", MODULES)
def test_the_documentation_matches_what_the_module_does(name: str) -> None:
    assert documentation_problems(module(name)) == []


def test_a_wrong_documentation_is_caught() -> None:
    wrong = types.SimpleNamespace(
        __name__="ansible_collections.reforge.workstation.plugins.modules.wrong", __file__=__file__,
        DOCUMENTATION="module: other\nshort_description: x\ndescription: [x]\n"
                      "extends_documentation_fragment: [reforge.workstation.common]\n"
                      "options:\n  path: {description: x, type: str}\n"
                      "  keys: {description: x, type: list, elements: dict, suboptions: {other: {description: y}}}\n",
        EXAMPLES="- path: /x\n", RETURN="{}\n",
        ARGUMENT_SPEC={"path": {"type": "path"}, "mode": {}, "keys": {"type": "list", "elements": "dict", "options": {"name": {}}}},
    )
    problems = documentation_problems(wrong)
    assert "DOCUMENTATION names module 'other'" in problems
    assert "DOCUMENTATION lacks attributes" not in problems, "the fragment's attributes were not merged"
    assert "option mode is undocumented" in problems
    assert "option keys.name is undocumented" in problems
    assert "option keys.other is documented but not accepted" in problems
    assert "option path: type documented as 'str', argument_spec says 'path'" in problems
    assert "EXAMPLES is not a list of named tasks" in problems
    assert "RETURN does not document changed" in problems


@pytest.mark.parametrize("name", MODULES)
def test_every_module_takes_the_attributes_and_the_author_from_the_fragments(name: str) -> None:
    doc = yaml.safe_load(module(name).DOCUMENTATION)
    assert extended(name)[:2] == ["ansible.builtin.action_common_attributes", "reforge.workstation.common"]
    assert "author" not in doc
    assert all("description" not in attribute for attribute in (doc.get("attributes") or {}).values())


@pytest.mark.parametrize("fragment", FRAGMENTS)
def test_every_part_of_a_fragment_is_used_by_a_module(fragment: str) -> None:
    fragment_class = importlib.import_module(PACKAGES["reforge.workstation"] + fragment).ModuleDocFragment
    parts = [part for part in vars(fragment_class) if part.isupper()]
    used = {slug for name in MODULES for slug in extended(name)}
    for part in parts:
        slug = "reforge.workstation." + fragment + ("" if part == "DOCUMENTATION" else "." + part.lower())
        assert slug in used, slug
