"""The modules' documentation fragments, and the reading of them that the module tests rely on."""

from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from ansible.utils.plugin_docs import add_fragments

COLLECTION = Path(__file__).resolve().parents[4]
MODULES = sorted(path.stem for path in (COLLECTION / "plugins" / "modules").glob("*.py"))
FRAGMENTS = sorted(path.stem for path in (COLLECTION / "plugins" / "doc_fragments").glob("*.py"))


def module(name: str) -> Any:
    return importlib.import_module("ansible_collections.reforge.workstation.plugins.modules." + name)


def extended(name: str) -> list[str]:
    return yaml.safe_load(module(name).DOCUMENTATION).get("extends_documentation_fragment") or []


class NamedLoader:
    """The module tests' loader, with the ansible_name that ansible's add_fragments reads from what the loader finds."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def get(self, name: str) -> Optional[type]:
        found = self.loader.get(name)
        return None if found is None else type("ModuleDocFragment", (found,), {"ansible_name": name})


@pytest.mark.parametrize("name", MODULES)
def test_the_module_tests_merge_the_fragments_as_ansible_does(cj: Any, name: str) -> None:
    doc = yaml.safe_load(module(name).DOCUMENTATION)
    ours, ansibles = copy.deepcopy(doc), copy.deepcopy(doc)
    cj.add_fragments(ours, cj.fragment_loader())
    add_fragments(ansibles, module(name).__file__, NamedLoader(cj.fragment_loader()), is_module=True)
    assert ours == ansibles


@pytest.mark.parametrize("name", MODULES)
def test_every_module_takes_the_attributes_and_the_author_from_the_fragments(name: str) -> None:
    doc = yaml.safe_load(module(name).DOCUMENTATION)
    assert extended(name)[:2] == ["ansible.builtin.action_common_attributes", "reforge.workstation.common"]
    assert "author" not in doc
    assert all("description" not in attribute for attribute in (doc.get("attributes") or {}).values())


@pytest.mark.parametrize("fragment", FRAGMENTS)
def test_every_part_of_a_fragment_is_used_by_a_module(fragment: str) -> None:
    fragment_class = importlib.import_module(
        "ansible_collections.reforge.workstation.plugins.doc_fragments." + fragment).ModuleDocFragment
    parts = [part for part in vars(fragment_class) if part.isupper()]
    used = {slug for name in MODULES for slug in extended(name)}
    for part in parts:
        slug = "reforge.workstation." + fragment + ("" if part == "DOCUMENTATION" else "." + part.lower())
        assert slug in used, slug
