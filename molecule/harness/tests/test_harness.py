"""The harness: /storage outlives the container, /run.sh sources pre-run.sh, a non-root user."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_storage_survives_recreating_the_container(get_host, recreate):
    host = get_host("harness-paperspace")
    host.run_expect([0], "echo scratch >/root/not-persisted.txt")
    recreate("harness-paperspace")
    host = get_host("harness-paperspace")
    assert host.file("/storage/harness-keep.txt").content_string == "kept across container re-creation\n"
    assert not host.file("/root/not-persisted.txt").exists


def test_run_sh_sources_pre_run_then_starts_jupyter(get_host, recreate):
    recreate("harness-paperspace")
    host = get_host("harness-paperspace")
    started = host.file("/run/jupyter-standin/started")
    assert wait_for(lambda: started.exists), "the Jupyter stand-in never started"
    pid = host.file("/run/jupyter-standin/started").content_string.split("pid=")[1].split()[0]
    # pre-run.sh ran in /run.sh's own shell (same PID as the exec'd Jupyter), before it.
    log = host.file("/storage/harness-prerun.log").content_string
    assert f"sourced pid={pid} " in log
    assert "cwd=/notebooks" in started.content_string
    assert host.process.filter(comm="jupyter-standin")


def test_datasets_is_read_only(get_host):
    host = get_host("harness-paperspace")
    assert host.run("touch /datasets/x").rc != 0
    assert host.mount_point("/datasets").exists
    assert "ro" in host.mount_point("/datasets").options


def test_laptop_user_is_not_root_and_owns_its_home(get_host):
    host = get_host("harness-laptop")
    assert host.user().name == "dev"
    assert host.user().uid != 0
    assert host.file("/home/dev").user == "dev"
    assert host.file("/home/dev").mode == 0o755
    probe = host.file("/home/dev/harness-probe.txt")
    assert probe.user == "dev"
    assert probe.mode == 0o600
