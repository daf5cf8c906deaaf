"""doctor: the planted interpreter mismatch is named with both interpreters; a healthy host is all OK.

doctor-broken (root): ipython runs /opt/py-other/bin/python3, first on the login PATH through
/etc/profile.d, while python3 is /usr/bin/python3; ~/.local is a real directory instead of a
link into /storage; the private key has mode 0644.
doctor-healthy (the user dev): python, python3, ipython and pip all run /usr/bin/python3, every
home entry links into /storage, and the keys have the right modes.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import Any

import pytest

BROKEN, HEALTHY = "doctor-broken", "doctor-healthy"
NOT_SET_UP = {"jupyter", "gpu", "disk prefix"}  # no jupyter, no GPU, no conda prefix in the containers
LINKS = [".local", ".ssh", ".config", ".ipython", ".jupyter", ".fastai", ".kaggle", ".conda",
         ".gitconfig", ".git-credentials", ".bash_history"]


def login(host, command: str):
    """Run a command in a login shell, as a new terminal would."""
    return host.run(f"bash -lc {shlex.quote(command)}")


class DoctorRun:
    """One run of playbooks/doctor.yml, with each host's report parsed from the json callback."""

    def __init__(self, run) -> None:
        self.rc, self.output = run.rc, run.output
        self.run = run
        data = json.JSONDecoder().raw_decode(run.output[run.output.index("{"):])[0]
        # set_stats publishes {check: {host: value}} for the whole run (not per host), which
        # ansible-runner passes on too; regroup it by host.
        self.stats: dict[str, dict[str, Any]] = {}
        for key, by_host in data.get("global_custom_stats", {}).items():
            for host, value in by_host.items():
                self.stats.setdefault(host, {})[key] = value
        self.lines: dict[str, list[str]] = {}
        for play in data["plays"]:
            for task in play["tasks"]:
                if task["task"]["name"].endswith("report | Show the report"):
                    for host, result in task["hosts"].items():
                        self.lines[host] = result["msg"]

    def report(self, host: str) -> dict[str, dict[str, Any]]:
        return {entry["check"]: entry for entry in self.stats[host]["doctor_report"]}


def run_doctor(playbook, *args: str, **extra_vars: Any) -> DoctorRun:
    previous = os.environ.get("ANSIBLE_SHOW_CUSTOM_STATS")
    os.environ["ANSIBLE_SHOW_CUSTOM_STATS"] = "true"  # the json callback then includes set_stats' data
    try:
        return DoctorRun(playbook("playbooks/doctor.yml", *args, extra_vars=extra_vars or None))
    finally:
        if previous is None:
            del os.environ["ANSIBLE_SHOW_CUSTOM_STATS"]
        else:
            os.environ["ANSIBLE_SHOW_CUSTOM_STATS"] = previous


@pytest.fixture(scope="module")
def doctor(playbook) -> DoctorRun:
    """The doctor with its defaults, on both hosts."""
    return run_doctor(playbook)


def test_the_planted_mismatch_is_real(get_host):
    host = get_host(BROKEN)
    assert login(host, "command -v ipython").stdout.strip() == "/opt/py-other-tools/bin/ipython"
    assert login(host, "command -v python3").stdout.strip() == "/usr/bin/python3"
    user_site = host.check_output("python3 -m site --user-site")
    host.run_expect([0], f"mkdir -p {user_site} && echo 'VALUE = 1' >{user_site}/reforge_probe.py")
    try:
        # What `pip install --user` puts in python3's user site: python3 imports it, ipython cannot.
        assert login(host, "python3 -c 'import reforge_probe'").rc == 0
        assert login(host, "ipython -c 'import reforge_probe'").rc != 0
        assert login(host, "ipython -c 'import sys'").rc == 0
    finally:
        host.run(f"rm -f {user_site}/reforge_probe.py")


def test_the_doctor_fails_on_the_broken_host_only(doctor):
    assert doctor.rc != 0
    assert doctor.run.failed(BROKEN) == 1
    assert doctor.run.failed(HEALTHY) == 0
    assert doctor.stats[BROKEN]["doctor_summary"]["status"] == "FAIL"
    assert doctor.run.changed(BROKEN) == doctor.run.changed(HEALTHY) == 0  # the doctor only reads


def test_the_doctor_names_the_mismatch_with_both_interpreters(doctor):
    ipython = doctor.report(BROKEN)["ipython"]
    assert ipython["status"] == "FAIL"
    assert "/opt/py-other-tools/bin/ipython runs /opt/py-other/bin/python3" in ipython["detail"]
    assert "but python3 runs /usr/bin/python3 " in ipython["detail"]
    assert "ipython cannot import X" in ipython["cause"]
    assert "/opt/py-other/bin/python3 does not read (its user site is disabled)" in ipython["cause"]
    assert "python3 -m pip install ipython" in ipython["fix"]
    lines = doctor.lines[BROKEN]
    index = lines.index("FAIL ipython: " + ipython["detail"])
    assert lines[index + 1] == "  cause: " + ipython["cause"]
    assert lines[index + 2] == "  fix: " + ipython["fix"]


def test_the_doctor_uses_the_login_path(doctor):
    path = doctor.report(BROKEN)["PATH"]
    assert path["status"] == "OK"
    assert path["detail"].startswith("/opt/py-other-tools/bin:")


def test_the_doctor_flags_the_real_directory_and_the_open_key(doctor):
    report = doctor.report(BROKEN)
    assert report["link .local"]["status"] == "FAIL"
    assert report["link .local"]["detail"] == "/root/.local is a real directory, not a link to /storage/.local"
    assert report["link .ssh"]["status"] == "OK"
    assert report["ssh id_ed25519"]["status"] == "FAIL"
    assert report["ssh id_ed25519"]["detail"] == "private key /root/.ssh/id_ed25519 has mode 0644, not 0600"
    assert report["ssh id_ed25519"]["fix"] == "Run: chmod 0600 /root/.ssh/id_ed25519"
    assert set(doctor.stats[BROKEN]["doctor_summary"]["failed_checks"]) == {"ipython", "link .local", "ssh id_ed25519"}


def test_secrets_on_a_volume_not_declared_private_are_a_warning(doctor):
    broken, healthy = doctor.report(BROKEN)["storage privacy"], doctor.report(HEALTHY)["storage privacy"]
    assert broken["status"] == "WARN"
    secrets = broken["detail"].split(" live on /storage")[0].split(", ")
    assert sorted(secrets) == [".git-credentials", ".kaggle", ".ssh"]
    assert "not declared private" in broken["detail"] and "reforge_storage_private: true" in broken["fix"]
    assert healthy["status"] == "OK" and healthy["detail"].endswith("declared private")


def test_the_doctor_names_every_backup(doctor):
    backups = doctor.report(BROKEN)["backups"]
    assert backups["status"] == "WARN"
    assert "/storage/.reforge/backup/20260101T000000Z/root/.local/bin/tool" in backups["detail"]
    assert doctor.report(HEALTHY)["backups"]["status"] == "OK"


def test_the_healthy_host_reports_all_ok(doctor):
    report = doctor.report(HEALTHY)
    statuses = {check: entry["status"] for check, entry in report.items()}
    assert {check for check, status in statuses.items() if status != "OK"} == NOT_SET_UP
    assert {statuses[check] for check in NOT_SET_UP} == {"SKIP"}
    expected = {"PATH", "python", "python3", "ipython", "pip", "pip3", "ssh dir", "ssh id_ed25519",
                "ssh id_ed25519.pub", "disk storage"} | {f"link {name}" for name in LINKS}
    assert expected <= set(statuses)
    assert "the same interpreter as python" in report["ipython"]["detail"]
    assert report["link .ssh"]["detail"] == "/home/dev/.ssh -> /storage/.ssh"
    assert all(not line.startswith(("WARN", "FAIL")) for line in doctor.lines[HEALTHY])
    assert doctor.stats[HEALTHY]["doctor_summary"]["status"] == "OK"


def test_quick_mode_reporting_only_checks_interpreters_and_links(playbook):
    run = run_doctor(playbook, "--limit", BROKEN, doctor_quick=True, doctor_fail_on_error=False)
    assert run.rc == 0, run.output[-3000:]
    report = run.report(BROKEN)
    assert report["ipython"]["status"] == "FAIL"
    assert not [check for check in report if check.startswith(("ssh", "disk", "gpu"))]
    assert {check for check in report if check.startswith("link ")} == {f"link {name}" for name in LINKS}
