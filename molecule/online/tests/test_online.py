"""online: the real installer and conda-forge produce a working conda + mamba prefix."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(params=["online-root", "online-user"])
def host(request, get_host):
    return get_host(request.param)


def test_real_miniforge_has_conda_and_mamba_from_conda_forge(host):
    prefix = f"{host.user().home}/miniforge3"
    listed = {p["name"]: p for p in json.loads(host.check_output(f"{prefix}/bin/conda list --json"))}
    assert listed["conda"]["channel"] == "conda-forge"
    assert listed["mamba"]["channel"] == "conda-forge"
    assert listed["fastcore"]["channel"] == "conda-forge"
    assert listed["fastprogress"]["channel"] == "pypi"


def test_new_login_shell_can_activate_base_with_mamba(host):
    result = host.run("bash -lic 'mamba activate base && command -v python' </dev/null")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip().endswith("/miniforge3/bin/python")
