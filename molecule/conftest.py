"""Fixtures every Molecule scenario's testinfra tests share.

pytest loads this file for any test below molecule/, so scenarios reach their
hosts by name through Molecule's own inventory, re-create a container the way
Paperspace does at each start, and re-run a playbook in check mode.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import testinfra
from testinfra.host import Host


def _inventory() -> str:
    return os.environ["MOLECULE_INVENTORY_FILE"]


@pytest.fixture(scope="session")
def get_host() -> Callable[[str], Host]:
    """Return a factory: a platform's name -> its testinfra host."""

    def factory(name: str) -> Host:
        return testinfra.get_host(f"ansible://{name}", ansible_inventory=_inventory())

    return factory


def run_as_root(name: str, command: str) -> str:
    """Run a shell command as root in a container, whoever Ansible connects as."""
    exit_code, output = docker.from_env().containers.get(name).exec_run(["sh", "-c", command], user="root")
    assert exit_code == 0, f"{command!r} failed in {name}: {output.decode()}"
    return output.decode()


@pytest.fixture(scope="session")
def as_root() -> Callable[[str, str], str]:
    """Return the function that runs a command as root in a container."""
    return run_as_root


def recreate_container(name: str) -> None:
    """Destroy a container and start a fresh one from the same image.

    Only what the container was created with survives: the image, command,
    environment, named volumes and bind mounts, network. Everything written to
    the container's own file system is gone, as on Paperspace.
    """
    client = docker.from_env()
    old = client.containers.get(name)
    config, host_config = old.attrs["Config"], old.attrs["HostConfig"]
    networks = list(old.attrs["NetworkSettings"]["Networks"])
    old.remove(force=True)
    client.containers.run(
        config["Image"],
        config["Cmd"],
        name=name,
        hostname=config["Hostname"],
        environment=config["Env"],
        labels=config["Labels"],
        volumes=host_config.get("Binds") or [],
        init=bool(host_config.get("Init")),
        network=networks[0] if networks else None,
        detach=True,
    )


@pytest.fixture(scope="session")
def recreate() -> Callable[[str], None]:
    """Return the function that re-creates a container, keeping its volumes."""
    return recreate_container


PROJECT = Path(__file__).resolve().parent.parent


@dataclass
class PlaybookRun:
    """What one ansible-playbook run printed, parsed from the json callback."""

    rc: int
    output: str
    stats: dict[str, dict[str, int]]

    def changed(self, host: str) -> int:
        return self.stats.get(host, {}).get("changed", 0)

    def failed(self, host: str) -> int:
        return self.stats.get(host, {}).get("failures", 0)


def run_playbook(playbook: str, *args: str, extra_vars: dict | None = None) -> PlaybookRun:
    """Run a project playbook (path relative to the project) against the scenario's inventory."""
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    command = ["ansible-playbook", "-i", _inventory(), str(PROJECT / playbook), *args]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    try:
        stats = json.loads(result.stdout[result.stdout.index("{"):])["stats"]
    except ValueError:
        stats = {}
    return PlaybookRun(result.returncode, result.stdout + result.stderr, stats)


@pytest.fixture(scope="session")
def playbook() -> Callable[..., PlaybookRun]:
    """Return the function that runs a project playbook against the scenario's hosts."""
    return run_playbook


@pytest.fixture(scope="session")
def scenario_dir() -> Path:
    """The directory of the scenario under test."""
    return Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
