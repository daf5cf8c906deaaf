"""Fixtures for the SSH tests: one real sshd per session, and a fresh temporary home per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sshlab import Sshd, Workspace, make_workspace, running_sshd


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A real sshd on 127.0.0.1, stopped at the end of the session."""
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def workspace(tmp_path: Path, sshd: Sshd) -> Workspace:
    """A temporary home whose key comes from a controller file that the test sshd authorizes."""
    return make_workspace(tmp_path, sshd, "file")
