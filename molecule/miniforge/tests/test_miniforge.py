"""miniforge: the prefix, shell init, .condarc, guard rails, repair, checksum, teardown.

Every test runs on both containers: root (Paperspace-like) and the non-root user.
Tests run in file order; the last ones tear the prefix down.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import pytest

HOSTS = ["miniforge-root", "miniforge-user"]
STANDIN = Path(__file__).resolve().parents[2] / "shared/standin/Miniforge3-standin.sh"
MIRROR = "http://reforge-miniforge-mirror:8000/0.0.0-standin/Miniforge3-0.0.0-standin-Linux-x86_64.sh"


def home(host) -> str:
    return host.user().home


def login(host, shell: str, script: str):
    """Run `script` in a new interactive login shell, as a terminal would."""
    return host.run(f"{shell} -lic {shlex.quote(script)} </dev/null")


@pytest.fixture(params=HOSTS)
def host(request, get_host):
    return get_host(request.param)


def test_prefix_is_a_complete_conda_install(host):
    prefix = f"{home(host)}/miniforge3"
    assert host.file(f"{prefix}/conda-meta").is_directory
    assert host.file(f"{prefix}/conda-meta/history").is_file
    assert host.file(prefix).user == host.user().name
    version = host.run_expect([0], f"{prefix}/bin/conda --version")
    assert version.stdout.startswith("conda ")
    host.run_expect([0], f"{prefix}/bin/mamba --version")


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_new_login_shell_has_conda_and_mamba(host, shell):
    result = login(host, shell, "type conda && type mamba && command -v python")
    assert result.rc == 0, result.stderr
    assert "conda is a shell function" in result.stdout or "conda is a function" in result.stdout
    assert "mamba is a shell function" in result.stdout or "mamba is a function" in result.stdout


def test_mamba_activate_switches_to_the_side_environment(host):
    prefix = f"{home(host)}/miniforge3"
    result = login(
        host,
        "bash",
        "mamba activate py39 && command -v python && echo \"$CONDA_DEFAULT_ENV\" "
        "&& python -c 'import sys; print(sys.prefix)'",
    )
    assert result.rc == 0, result.stderr
    lines = result.stdout.split()
    assert lines[-3] == f"{prefix}/envs/py39/bin/python"
    assert lines[-2] == "py39"
    assert lines[-1] == f"{prefix}/envs/py39"


def test_condarc_has_conda_forge_only_strict_and_a_cache_outside_the_prefix(host):
    condarc = host.file(f"{home(host)}/.condarc")
    assert condarc.user == host.user().name
    shown = json.loads(host.check_output(f"{home(host)}/miniforge3/bin/conda config --show --json"))
    assert shown["channels"] == ["conda-forge"]
    assert shown["channel_priority"] == "strict"
    assert shown["pkgs_dirs"] == [f"{home(host)}/.cache/conda/pkgs"]
    assert host.file(f"{home(host)}/.cache/conda/pkgs").is_directory


def test_base_packages_are_installed_and_import(host):
    prefix = f"{home(host)}/miniforge3"
    listed = {p["name"]: p for p in json.loads(host.check_output(f"{prefix}/bin/conda list --json"))}
    assert listed["fastai"]["channel"] != "pypi"
    assert listed["sentencepiece"]["channel"] != "pypi"
    assert listed["fastprogress"]["channel"] == "pypi"  # from PyPI, for real
    host.run_expect([0], f"{prefix}/bin/python -c 'import fastai, sentencepiece, fastprogress'")


def test_side_environment_exists_with_its_packages(host):
    prefix = f"{home(host)}/miniforge3"
    envs = json.loads(host.check_output(f"{prefix}/bin/conda env list --json"))["envs"]
    assert f"{prefix}/envs/py39" in envs
    listed = {p["name"]: p["version"] for p in json.loads(host.check_output(f"{prefix}/bin/conda list --json -n py39"))}
    assert listed["python"].startswith("3.9")
    assert "fastcore" in listed


def test_check_mode_on_a_converged_host_changes_nothing(playbook):
    run = playbook("playbooks/base.yml", "--check", "--diff")
    assert run.rc == 0, run.output[-3000:]
    for name in HOSTS:
        assert run.changed(name) == 0, f"{name} would change in check mode"


def _refusal_cases(host) -> dict[str, str]:
    h = home(host)
    return {
        "root": "/",
        "home": h,
        "home-ancestor": h.rsplit("/", 1)[0] or "/",
        "system-dir": "/usr",
        "empty": "",
        "relative": "relative/miniforge3",
        "symlink": f"{h}/mf-link",
        "not-conda": f"{h}/notconda",
        "not-owned": "/tmp/other-owner-prefix",
    }


@pytest.fixture(scope="module")
def sentinels(get_host):
    """Plant what the refused teardowns must leave alone."""
    root, user = get_host("miniforge-root"), get_host("miniforge-user")
    for host in (root, user):
        h = home(host)
        host.run_expect([0], f"mkdir -p {h}/notconda && echo keep >{h}/notconda/sentinel")
        host.run_expect([0], f"ln -sfn {h}/miniforge3 {h}/mf-link")
        host.run_expect([0], f"echo keep >{h}/home-sentinel")
    # A conda-looking prefix owned by somebody else: dev's for root, root's for dev.
    root.run_expect([0], "mkdir -p /tmp/other-owner-prefix/conda-meta && echo keep >/tmp/other-owner-prefix/sentinel")
    root.run_expect([0], "chown -R dev:dev /tmp/other-owner-prefix")
    user.run_expect([0], "true")
    yield
    for host in (root, user):
        host.run(f"rm -f {home(host)}/mf-link")


CASES = ["root", "home", "home-ancestor", "system-dir", "empty", "relative", "symlink", "not-conda", "not-owned"]


@pytest.mark.parametrize("case", CASES)
def test_teardown_refuses_a_prefix_it_must_not_delete(case, playbook, get_host, as_root, sentinels):
    root, user = get_host("miniforge-root"), get_host("miniforge-user")
    prefixes = {"miniforge-root": _refusal_cases(root)[case], "miniforge-user": _refusal_cases(user)[case]}
    if case == "not-owned":
        # Seen from dev, a conda-looking prefix that root owns.
        as_root("miniforge-user", "mkdir -p /tmp/root-prefix/conda-meta && echo keep >/tmp/root-prefix/sentinel")
        prefixes["miniforge-user"] = "/tmp/root-prefix"
    run = playbook(
        "playbooks/teardown.yml",
        extra_vars={"miniforge_prefix": "{{ refusal_case[inventory_hostname] }}", "refusal_case": prefixes},
    )
    assert run.rc != 0
    for name, prefix in prefixes.items():
        assert run.failed(name) == 1, f"{name}: teardown of {prefix!r} was not refused"
        assert f"Refusing prefix '{prefix}'" in run.output
    for host in (root, user):
        h = home(host)
        assert host.file(f"{h}/notconda/sentinel").content_string == "keep\n"
        assert host.file(f"{h}/home-sentinel").content_string == "keep\n"
        assert host.file(f"{h}/miniforge3/conda-meta").is_directory
        assert host.file("/usr/bin/env").exists
    assert root.file("/tmp/other-owner-prefix/sentinel").exists
    if case == "not-owned":
        assert user.file("/tmp/root-prefix/sentinel").exists


def test_a_wrong_checksum_fails_before_anything_is_installed(host, playbook):
    wrong = "0" * 64
    real = hashlib.sha256(STANDIN.read_bytes()).hexdigest()
    prefix = f"{home(host)}/mf-badsum"
    run = playbook(
        "playbooks/base.yml", "--tags", "miniforge", "--limit", host.backend.host,
        extra_vars={"miniforge_prefix": prefix, "miniforge_installer_sha256": wrong, "miniforge_shells": []},
    )
    assert run.rc != 0
    assert wrong in run.output and real in run.output, "the error must name both sums"
    assert not host.file(prefix).exists
    assert host.run("ls /tmp/reforge-miniforge.* 2>/dev/null").stdout == ""


def test_an_interrupted_install_is_rebuilt_aside_never_repaired_in_place(host, playbook):
    prefix = f"{home(host)}/mf-interrupted"
    host.run_expect([0], f"python3 -c 'import urllib.request as u; u.urlretrieve(\"{MIRROR}\", \"/tmp/standin.sh\")'")
    interrupted = host.run(f"STANDIN_INTERRUPT_AFTER_PYTHON=1 bash /tmp/standin.sh -b -p {prefix}")
    assert interrupted.rc != 0
    assert host.file(prefix).exists and not host.file(f"{prefix}/conda-meta").exists
    host.run_expect([0], f"echo mine >{prefix}/left-by-the-user")
    run = playbook(
        "playbooks/base.yml", "--tags", "miniforge", "--limit", host.backend.host,
        extra_vars={"miniforge_prefix": prefix, "miniforge_shells": [], "miniforge_manage_condarc": False},
    )
    assert run.rc == 0, run.output[-3000:]
    assert host.file(f"{prefix}/conda-meta").is_directory
    host.run_expect([0], f"{prefix}/bin/conda --version")
    # Installed fresh (the installer's -u would have kept the file, and truncated the history);
    # the interrupted prefix waits beside it as a generation.
    assert not host.file(f"{prefix}/left-by-the-user").exists
    kept = host.check_output(f"ls -A {prefix}.generations").split()
    assert len(kept) == 1
    assert host.file(f"{prefix}.generations/{kept[0]}/left-by-the-user").content_string == "mine\n"
    # A legacy Mambaforge install for the teardown test below.
    host.run_expect([0], f"bash /tmp/standin.sh -b -p {home(host)}/mambaforge")
    host.run_expect([0], f"rm -rf {prefix} {prefix}.generations /tmp/standin.sh")


def test_teardown_refuses_a_generation_that_is_not_a_conda_prefix(playbook, get_host):
    for name in HOSTS:
        h = home(get_host(name))
        get_host(name).run_expect([0], f"mkdir -p {h}/miniforge3.generations/20260101T000000.000000Z "
                                       f"&& echo keep >{h}/miniforge3.generations/20260101T000000.000000Z/sentinel")
    run = playbook("playbooks/teardown.yml")
    assert run.rc != 0
    for name in HOSTS:
        host = get_host(name)
        h = home(host)
        assert "Refusing prefix" in run.output and "20260101T000000.000000Z" in run.output
        assert host.file(f"{h}/miniforge3.generations/20260101T000000.000000Z/sentinel").exists
        assert host.file(f"{h}/miniforge3/conda-meta").is_directory
        # Now a real generation: a conda prefix the user owns.
        host.run_expect([0], f"mkdir {h}/miniforge3.generations/20260101T000000.000000Z/conda-meta "
                             f"&& touch {h}/miniforge3.generations/20260101T000000.000000Z/conda-meta/history")


def test_teardown_removes_the_prefixes_and_the_init_blocks_only(playbook, get_host):
    run = playbook("playbooks/teardown.yml", extra_vars={"miniforge_remove_legacy": True})
    assert run.rc == 0, run.output[-3000:]
    for name in HOSTS:
        host = get_host(name)
        h = home(host)
        assert not host.file(f"{h}/miniforge3").exists
        assert not host.file(f"{h}/miniforge3.generations").exists
        assert not host.file(f"{h}/mambaforge").exists
        for rc in (".bashrc", ".zshrc"):
            content = host.file(f"{h}/{rc}").content_string
            assert "conda initialize" not in content
            assert "mamba initialize" not in content
            assert "# the user's own line, which teardown must keep" in content
        assert host.run("bash -lic 'type conda' </dev/null").rc != 0
        assert host.file(f"{h}/home-sentinel").exists


def test_teardown_again_changes_nothing(playbook):
    run = playbook("playbooks/teardown.yml")
    assert run.rc == 0, run.output[-3000:]
    for name in HOSTS:
        assert run.changed(name) == 0


def test_check_mode_on_a_fresh_host_shows_what_would_change(playbook, get_host):
    run = playbook("playbooks/base.yml", "--check", "--diff")
    assert run.rc == 0, run.output[-3000:]
    for name in HOSTS:
        assert run.changed(name) > 0
        assert not get_host(name).file(f"{home(get_host(name))}/miniforge3").exists
    assert "Would install Miniforge3 0.0.0-standin" in run.output
