"""rebuild: a transaction. A failed or interrupted rebuild leaves the environment exactly
as it was; a successful one restores what the user installed by hand and keeps the old
prefix as a generation that `reforge rollback` brings back.

Tests run in file order on both containers (root, and the non-root user): first the
failure matrix, from a working prefix holding a hand-installed conda and pip package;
then a successful rebuild, rollbacks, converges; last, rebuilds killed with -9.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HOSTS = ["rebuild-root", "rebuild-user"]
PROJECT = Path(__file__).resolve().parents[3]
MIRROR = "http://reforge-rebuild-mirror:8000/0.0.0-standin/Miniforge3-0.0.0-standin-Linux-x86_64.sh"
RC_FILES = (".bashrc", ".zshrc", ".condarc")
STANDIN = "/tmp/reforge-standin.sh"
# Installers that fail half way: after the Python is in place, the stand-in stops (exit 1),
# or the installer is killed with -9.
HALF_WAY = f'#!/bin/bash\nSTANDIN_INTERRUPT_AFTER_PYTHON=1 exec bash {STANDIN} "$@"\n'
KILLED = f'#!/bin/bash\nSTANDIN_INTERRUPT_AFTER_PYTHON=1 bash {STANDIN} "$@"\nkill -9 $$\n'


def home(host) -> str:
    return host.user().home


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def conda_list(host, prefix: str | None = None) -> dict[str, dict]:
    prefix = prefix or f"{home(host)}/miniforge3"
    out = host.check_output(f"{prefix}/bin/conda list --json")
    return {p["name"]: p for p in json.loads(out)}


def state(host) -> dict:
    """What a rollback must give back exactly: the package list and the rc files' bytes."""
    files = {}
    for name in RC_FILES:
        result = host.run(f"base64 -w0 {home(host)}/{name}")
        files[name] = result.stdout if result.rc == 0 else None
    return {"conda list": host.check_output(f"{home(host)}/miniforge3/bin/conda list --json"), "files": files}


def assert_rolled_back(hosts, before: dict, output: str) -> None:
    assert "rolled back" in output, output[-3000:]
    for host in hosts:
        name = host.backend.host
        after = state(host)
        assert after["conda list"] == before[name]["conda list"], f"{name}: conda list changed"
        assert after["files"] == before[name]["files"], f"{name}: an rc file or .condarc changed"
        assert host.file(f"{home(host)}/miniforge3/marker-from-before").exists
        login = host.run("bash -lic 'python -c \"import six, numpy\"' </dev/null")
        assert login.rc == 0, f"{name}: {login.stderr}"
        assert not host.file(f"{home(host)}/.local/state/reforge/transactions").exists or \
            host.check_output(f"ls -A {home(host)}/.local/state/reforge/transactions") == ""


@pytest.fixture(scope="module")
def hosts(get_host):
    return [get_host(name) for name in HOSTS]


@pytest.fixture(scope="module")
def working(hosts):
    """A working prefix with things installed by hand, a marker, and the failing installers."""
    for host in hosts:
        prefix = f"{home(host)}/miniforge3"
        host.run_expect([0], f"{prefix}/bin/conda install -y numpy")
        host.run_expect([0], f"{prefix}/bin/python -m pip install --quiet six")
        # A package the user once installed that no longer resolves anywhere.
        host.run_expect([0], f"printf '%s\\n' \"# update specs: ['vanishedpkg']\" >>{prefix}/conda-meta/history")
        # Still installed, as such a package is (real conda restores only what is installed).
        host.run_expect([0], f"printf '%s' '{{\"name\": \"vanishedpkg\", \"version\": \"1.0\", \"build\": \"0\", "
                             f"\"files\": []}}' >{prefix}/conda-meta/vanishedpkg-1.0-0.json")
        host.run_expect([0], f"echo planted >{prefix}/marker-from-before")
        host.run_expect([0], f"python3 -c 'import urllib.request as u; u.urlretrieve(\"{MIRROR}\", \"{STANDIN}\")'")
        for name, text in (("half-way", HALF_WAY), ("killed", KILLED)):
            host.run_expect([0], f"printf %s {shlex.quote(text)} >/tmp/reforge-{name}.sh")
    return {host.backend.host: state(host) for host in hosts}


FAILURES = {
    "unreachable URL": {"miniforge_base_url": "http://127.0.0.1:9"},
    "checksum mismatch": {"miniforge_installer_sha256": "0" * 64},
    "installer failing half way": {"miniforge_installer_path": "/tmp/reforge-half-way.sh",
                                   "miniforge_installer_sha256": sha256(HALF_WAY)},
    "installer killed -9 half way": {"miniforge_installer_path": "/tmp/reforge-killed.sh",
                                     "miniforge_installer_sha256": sha256(KILLED)},
    "base package that does not resolve": {"base_env_conda_packages": ["fastai", "sentencepiece", "nosuchpkg"]},
    "failing verify import": {"base_env_verify_imports": ["fastai", "no_such_module_anywhere"]},
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_failed_rebuild_leaves_the_environment_exactly_as_it_was(case, working, hosts, playbook):
    run = playbook("playbooks/rebuild_base.yml", extra_vars=FAILURES[case])
    assert run.rc != 0, f"{case}: the rebuild did not fail"
    assert_rolled_back(hosts, working, run.output)


def test_a_local_installer_without_a_known_sha256_is_refused(working, hosts, playbook):
    run = playbook("playbooks/rebuild_base.yml", extra_vars={"miniforge_installer_path": "/tmp/reforge-half-way.sh"})
    assert run.rc != 0
    assert "Refusing the local installer /tmp/reforge-half-way.sh" in run.output
    assert "miniforge_installer_sha256" in run.output
    assert_rolled_back(hosts, working, run.output)


def test_not_enough_disk_for_a_new_prefix_beside_the_old_one_changes_nothing(working, hosts, playbook, as_root):
    """The prefix's parent on a small tmpfs: the container's /dev (64 MiB, and unlike
    /dev/shm not noexec), filled until the prefix would not fit a second time."""
    small = {"miniforge_prefix": "/dev/reforge-disk/miniforge3", "miniforge_shells": [],
             "miniforge_manage_condarc": False, "base_env_conda_packages": [], "base_env_pip_packages": [],
             "base_env_verify_imports": [], "base_env_environments": []}
    for host in hosts:
        user = host.user().name
        as_root(host.backend.host, f"mkdir -p /dev/reforge-disk && chown {user} /dev/reforge-disk")
    try:
        run = playbook("playbooks/base.yml", extra_vars=small)
        assert run.rc == 0, run.output[-3000:]
        before = {}
        for host in hosts:
            host.run_expect([0], "/dev/reforge-disk/miniforge3/bin/python -m pip install --quiet six")
            before[host.backend.host] = conda_list(host, "/dev/reforge-disk/miniforge3")
            used = int(host.check_output("du -sk /dev/reforge-disk/miniforge3").split()[0])
            free = int(host.check_output("df -k --output=avail /dev").split()[-1])
            as_root(host.backend.host, f"dd if=/dev/zero of=/dev/reforge-filler bs=1k count={free - used // 2}")
        run = playbook("playbooks/rebuild_base.yml", extra_vars=small)
        assert run.rc != 0
        assert "Not enough free space" in run.output, run.output[-3000:]
        for host in hosts:
            assert conda_list(host, "/dev/reforge-disk/miniforge3") == before[host.backend.host]
            host.run_expect([0], "/dev/reforge-disk/miniforge3/bin/python -c 'import six'")
            assert host.run("ls -A /dev/reforge-disk/miniforge3.generations 2>/dev/null").stdout == ""
        assert_rolled_back(hosts, working, run.output)
    finally:
        for host in hosts:
            as_root(host.backend.host, "rm -rf /dev/reforge-filler /dev/reforge-disk")


def _reforge(*args: str) -> subprocess.Popen:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return subprocess.Popen(
        [sys.executable, "-m", "reforge", *args, "--project", str(PROJECT), "-i", inventory],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _read_until(process: subprocess.Popen, needle: str, seen: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        seen.append(line)
        if needle in line:
            return
    raise AssertionError(f"never reached {needle!r}:\n{''.join(seen)[-3000:]}")


def test_sigint_to_reforge_rebuild_during_the_package_step_rolls_back(working, hosts):
    process = _reforge("rebuild")
    seen: list[str] = []
    try:
        _read_until(process, "packages | Install the base conda packages", seen)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=600)
    finally:
        process.kill()
    output = "".join(seen) + rest
    assert process.returncode == 130, output[-3000:]
    assert "interrupted; rolling back" in output
    assert "the rollback failed" not in output, output[-3000:]
    assert_rolled_back(hosts, working, output)


@pytest.fixture(scope="module")
def rebuilt(working, playbook):
    # The file at the repository root, the one the README tells users to run.
    return playbook("rebuild-base.yml")


def test_rebuild_succeeds_despite_a_package_that_no_longer_resolves(rebuilt):
    assert rebuilt.rc == 0, rebuilt.output[-4000:]
    assert "vanishedpkg" in rebuilt.output


def test_the_prefix_was_installed_fresh(rebuilt, hosts):
    for host in hosts:
        assert not host.file(f"{home(host)}/miniforge3/marker-from-before").exists


def test_hand_installed_packages_are_back_unpinned(rebuilt, hosts):
    for host in hosts:
        listed = conda_list(host)
        assert listed["numpy"]["channel"] != "pypi"
        assert listed["six"]["channel"] == "pypi"
        assert "vanishedpkg" not in listed
        host.run_expect([0], f"{home(host)}/miniforge3/bin/python -c 'import numpy, six, fastai, fastcore'")


def test_the_old_prefix_is_kept_as_one_generation_beside_the_prefix(rebuilt, hosts):
    for host in hosts:
        kept = host.check_output(f"ls -A {home(host)}/miniforge3.generations").split()
        assert len(kept) == 1, kept
        assert host.file(f"{home(host)}/miniforge3.generations/{kept[0]}/marker-from-before").exists


def test_the_installer_is_cached_outside_the_prefix(rebuilt, hosts):
    for host in hosts:
        cached = host.file(f"{home(host)}/.cache/reforge/installers/Miniforge3-0.0.0-standin-Linux-x86_64.sh")
        assert cached.is_file and cached.mode == 0o600


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


def test_generations_lists_the_current_prefix_and_the_kept_one(rebuilt):
    process = _reforge("generations")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    for name in HOSTS:
        assert f"{name}: current: " in output and "Miniforge 0.0.0-standin" in output
        assert f"{name}: generation 1 (retired " in output


def test_rollback_brings_back_the_previous_generation_and_a_second_one_returns(rebuilt, hosts):
    process = _reforge("rollback")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    assert "swapped by rename in 0." in output
    for host in hosts:
        assert host.file(f"{home(host)}/miniforge3/marker-from-before").exists
        assert host.run("bash -lic 'python -c \"import six, numpy\"' </dev/null").rc == 0
    process = _reforge("rollback", "1")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    for host in hosts:
        assert not host.file(f"{home(host)}/miniforge3/marker-from-before").exists
        host.run_expect([0], f"{home(host)}/miniforge3/bin/python -c 'import fastai, numpy, six'")


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
    run = playbook("playbooks/rebuild_base.yml", extra_vars={"base_env_snapshot_keep": 1})
    assert run.rc == 0, run.output[-3000:]
    for host in hosts:
        assert len(host.check_output(f"ls {home(host)}/.local/state/reforge/snapshots").split()) == 1
        host.run_expect([0], f"{home(host)}/miniforge3/bin/python -c 'import numpy, six'")


@pytest.mark.parametrize("task", ["packages | Install the base conda packages", "restore | Reinstall the conda packages"])
def test_a_rebuild_killed_with_9_loses_nothing_on_the_next_run(task, rebuilt, hosts, playbook):
    before = {host.backend.host: set(conda_list(host)) for host in hosts}
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    command = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
               str(PROJECT / "playbooks/rebuild_base.yml")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    seen: list[str] = []
    try:
        _read_until(process, f"base_env : {task}]", seen)
        time.sleep(1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    run = playbook("playbooks/rebuild_base.yml")
    assert run.rc == 0, run.output[-3000:]
    assert "rolled back the interrupted rebuild" in run.output
    for host in hosts:
        assert before[host.backend.host] <= set(conda_list(host)), f"{host.backend.host} lost packages"
        host.run_expect([0], "bash -lic 'python -c \"import six, numpy, fastai\"' </dev/null")
