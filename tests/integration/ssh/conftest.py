"""Fixtures for the SSH tests: one real sshd, and one run of the staged scenario, per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scenario import Scenario, play
from sshlab import Sshd, running_sshd


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A real sshd on 127.0.0.1, stopped at the end of the session."""
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory, sshd: Sshd) -> Scenario:
    """The five temporary homes after the scenario's runs, with what was recorded between them."""
    return play(tmp_path_factory.mktemp("lab"), sshd)
