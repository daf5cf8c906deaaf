"""rebuild: wipe and rebuild the prefix; what the user installed by hand comes back.

Tests run in file order on both containers (root, and the non-root user).
"""

from __future__ import annotations

import json

import pytest

HOSTS = ["rebuild-root", "rebuild-user"]


def home(host) -> str:
    return host.user().home


def conda_list(host, *args: str) -> dict[str, dict]:
    out = host.check_output(f"{home(host)}/miniforge3/bin/conda list --json " + " ".join(args))
    return {p["name"]: p for p in json.loads(out)}


@pytest.fixture(scope="module")
def hosts(get_host):
    return [get_host(name) for name in HOSTS]


@pytest.fixture(scope="module")
def rebuilt(hosts, playbook):
    """Install things by hand, plant a marker in the prefix, then rebuild."""
    for host in hosts:
        prefix = f"{home(host)}/miniforge3"
        host.run_expect([0], f"{prefix}/bin/conda install -y numpy")
        host.run_expect([0], f"{prefix}/bin/python -m pip install --quiet six")
        # A package the user once installed that no longer resolves anywhere.
        host.run_expect([0], f"printf '%s\\n' \"# update specs: ['vanishedpkg']\" >>{prefix}/conda-meta/history")
        host.run_expect([0], f"echo planted >{prefix}/marker-from-before")
    run = playbook("playbooks/rebuild-base.yml")
    return run


def test_rebuild_succeeds_despite_a_package_that_no_longer_resolves(rebuilt):
    assert rebuilt.rc == 0, rebuilt.output[-4000:]
    assert "vanishedpkg" in rebuilt.output


def test_the_prefix_was_wiped(rebuilt, hosts):
    for host in hosts:
        assert not host.file(f"{home(host)}/miniforge3/marker-from-before").exists


def test_hand_installed_packages_are_back_unpinned(rebuilt, hosts):
    for host in hosts:
        listed = conda_list(host)
        assert listed["numpy"]["channel"] != "pypi"
        assert listed["six"]["channel"] == "pypi"
        assert "vanishedpkg" not in listed
        host.run_expect([0], f"{home(host)}/miniforge3/bin/python -c 'import numpy, six, fastai, fastcore'")


def test_the_snapshot_is_kept_outside_the_prefix(rebuilt, hosts):
    for host in hosts:
        snapshots = host.check_output(f"ls {home(host)}/.local/state/reforge/snapshots").split()
        assert snapshots, "no snapshot written"
        record = json.loads(host.file(f"{home(host)}/.local/state/reforge/snapshots/{snapshots[-1]}").content_string)
        assert "numpy" in record["unpinned_conda"]
        assert "vanishedpkg" in record["unpinned_conda"]
        assert "six" in record["unpinned_pip"]
        assert "fastprogress" in record["unpinned_pip"]
        assert host.file(f"{home(host)}/.local/state/reforge/snapshots").mode == 0o700


def test_side_environments_are_rebuilt(rebuilt, hosts):
    for host in hosts:
        envs = json.loads(host.check_output(f"{home(host)}/miniforge3/bin/conda env list --json"))["envs"]
        assert f"{home(host)}/miniforge3/envs/py39" in envs
        assert f"{home(host)}/miniforge3/envs/scratch" in envs


def test_converging_after_a_rebuild_changes_nothing(rebuilt, playbook):
    run = playbook("playbooks/base.yml")
    assert run.rc == 0, run.output[-3000:]
    for name in HOSTS:
        assert run.changed(name) == 0


def test_a_side_environment_marked_absent_is_removed(rebuilt, playbook, hosts):
    environments = [
        {"name": "py39", "packages": ["python<3.10", "fastcore"]},
        {"name": "scratch", "state": "absent"},
    ]
    run = playbook("playbooks/base.yml", extra_vars={"base_env_environments": environments})
    assert run.rc == 0, run.output[-3000:]
    for host in hosts:
        assert not host.file(f"{home(host)}/miniforge3/envs/scratch").exists
        assert host.file(f"{home(host)}/miniforge3/envs/py39/conda-meta").is_directory


def test_snapshots_beyond_the_kept_number_are_pruned(rebuilt, playbook, hosts):
    run = playbook("playbooks/rebuild-base.yml", extra_vars={"base_env_snapshot_keep": 1})
    assert run.rc == 0, run.output[-3000:]
    for host in hosts:
        assert len(host.check_output(f"ls {home(host)}/.local/state/reforge/snapshots").split()) == 1
        host.run_expect([0], f"{home(host)}/miniforge3/bin/python -c 'import numpy, six'")
