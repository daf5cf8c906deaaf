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


def playbook_stats(playbook: Path, *args: str) -> dict[str, dict[str, int]]:
    """Run a playbook against the scenario's inventory; return its per-host stats."""
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_CALLBACKS_ENABLED="")
    result = subprocess.run(
        ["ansible-playbook", "-i", _inventory(), str(playbook), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return json.loads(result.stdout)["stats"]


@pytest.fixture(scope="session")
def scenario_dir() -> Path:
    """The directory of the scenario under test."""
    return Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
