"""The link_entries filter: the layers of link entries combined by name, every entry checked."""

from __future__ import annotations

from typing import Any

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.reforge.workstation.plugins.filter.link_entries import FilterModule, link_entries

DEFAULTS = [
    {"name": ".local", "kind": "dir"},
    {"name": ".ssh", "kind": "dir", "mode": "0700", "secret": True},
    {"name": ".gitconfig", "kind": "file"},
]


def combined(**layers: Any) -> list[dict[str, Any]]:
    return link_entries({"defaults": DEFAULTS, **layers})


def test_the_filter_is_registered_under_its_name() -> None:
    assert FilterModule().filters()["link_entries"] is link_entries


def test_defaults_alone_come_out_whole_and_in_order() -> None:
    assert combined() == [
        {"name": ".local", "kind": "dir", "mode": "", "secret": False},
        {"name": ".ssh", "kind": "dir", "mode": "0700", "secret": True},
        {"name": ".gitconfig", "kind": "file", "mode": "", "secret": False},
    ]


def test_a_later_layer_updates_only_the_keys_it_sets_and_keeps_the_place() -> None:
    result = combined(host=[{"name": ".ssh", "mode": "0750"}])
    assert [entry["name"] for entry in result] == [".local", ".ssh", ".gitconfig"]
    assert result[1] == {"name": ".ssh", "kind": "dir", "mode": "0750", "secret": True}


def test_absent_drops_an_entry_and_a_later_declaration_brings_it_back_last() -> None:
    assert [e["name"] for e in combined(group=[{"name": ".local", "state": "absent"}])] == [".ssh", ".gitconfig"]
    result = combined(group=[{"name": ".local", "state": "absent"}], host=[{"name": ".local", "kind": "file"}])
    assert [e["name"] for e in result] == [".ssh", ".gitconfig", ".local"]
    # Dropped and declared again: nothing of the earlier declaration survives.
    assert result[-1] == {"name": ".local", "kind": "file", "mode": "", "secret": False}


def test_dropping_a_name_no_layer_declared_is_harmless() -> None:
    assert len(combined(host=[{"name": ".nothing", "state": "absent"}])) == 3


def test_new_entries_default_to_a_directory_without_mode() -> None:
    assert combined(all=[{"name": ".vim"}])[-1] == {"name": ".vim", "kind": "dir", "mode": "", "secret": False}


def test_an_empty_mode_clears_a_mode_an_earlier_layer_set() -> None:
    assert combined(host=[{"name": ".ssh", "mode": ""}])[1]["mode"] == ""


def test_a_plain_list_is_one_layer_and_none_layers_are_skipped() -> None:
    assert link_entries([{"name": ".a"}]) == [{"name": ".a", "kind": "dir", "mode": "", "secret": False}]
    assert combined(host=None) == combined()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "../outside"}, "without '..'"),
        ({"name": "a/../../b"}, "without '..'"),
        ({"name": "/etc"}, "not an absolute one"),
        ({"name": ""}, "not the home itself"),
        ({"name": "."}, "not the home itself"),
        ({"name": ".config/"}, "trailing slashes"),
        ({"name": "./x"}, "without '..', '.'"),
        ({"name": "a\nb"}, "control character"),
        ({"name": 3}, "expected a string"),
        ({"kind": "dir"}, "name is None"),
        ({"name": ".vim", "kind": "link"}, "kind is 'link': expected dir or file"),
        ({"name": ".ssh", "mode": 448}, "mode is 448: expected an octal mode written as a quoted string"),
        ({"name": ".ssh", "mode": "0800"}, "mode is '0800'"),
        ({"name": ".ssh", "mode": "rwx"}, "mode is 'rwx'"),
        ({"name": ".ssh", "secret": "yes"}, "secret is 'yes': expected true or false"),
        ({"name": ".ssh", "state": "gone"}, "state is 'gone': expected present or absent"),
        ({"name": ".ssh", "modes": "0700"}, "unknown key(s) modes"),
        (".vim", "expected a dict with a name"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_variable_and_index(entry: Any, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        link_entries({"storage_links_entries": [], "storage_links_host_entries": [{"name": ".ok"}, entry]})
    assert str(error.value).startswith("storage_links_host_entries[1]: ")
    assert message in str(error.value)


def test_a_layer_that_is_not_a_list_is_refused_by_name() -> None:
    with pytest.raises(AnsibleFilterError, match=r"^storage_links_entries is '\.vim': expected a list"):
        link_entries({"storage_links_entries": ".vim"})


def test_input_that_is_not_layers_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="expects a dict of layers"):
        link_entries(".vim")
