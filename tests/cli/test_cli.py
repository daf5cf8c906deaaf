"""The `reforge` command, end to end: real playbooks of a throw-away project
(its own ansible.cfg, inventory and playbooks) run on localhost with the local
connection, with and without a terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakeproject import clean_env, make_project

TIMEOUT = 120

# Values the output must never show.
PLAYBOOK_SECRET = "PlaybookSecret-7f3a9c"
TOKEN = "TokenFromCli-51d2e8"
PASSWORD = "PasswordFromFile-c04b6a"

# converge: three tasks, only the copy changes anything (the first time).
CONVERGE = """\
- name: Converge
  hosts: all
  gather_facts: false
  tasks:
    - name: Look at the marker
      ansible.builtin.stat:
        path: "{{ out_dir }}/marker"
      tags: [look]
    - name: Write the marker
      ansible.builtin.copy:
        dest: "{{ out_dir }}/marker"
        content: "converged\\n"
        mode: "0644"
      tags: [write]
    - name: Say it is done
      ansible.builtin.debug:
        msg: done
      tags: [look]
"""

# rebuild: the second task fails, the third never runs.
REBUILD = """\
- name: Rebuild
  hosts: all
  gather_facts: false
  tasks:
    - name: Start the rebuild
      ansible.builtin.debug:
        msg: starting
    - name: Break on purpose
      ansible.builtin.fail:
        msg: the rebuild broke on purpose
    - name: Never reached
      ansible.builtin.debug:
        msg: unreachable code
"""

# teardown: a no_log task shows a secret; secrets from -e reach a task name,
# the play's custom stats and a failure message.
TEARDOWN = f"""\
- name: Teardown
  hosts: all
  gather_facts: false
  vars:
    playbook_secret: {PLAYBOOK_SECRET}
  tasks:
    - name: Show the playbook secret
      ansible.builtin.debug:
        msg: "{{{{ playbook_secret }}}}"
      no_log: true
    - name: "Log in with {{{{ api_token }}}}"
      ansible.builtin.debug:
        msg: "token {{{{ api_token }}}}"
    - name: Publish a login report
      ansible.builtin.set_stats:
        data:
          login_report: ["logged in with {{{{ api_token }}}}", "as admin"]
        per_host: false
    - name: Fail with the password
      ansible.builtin.fail:
        msg: "cannot log in as admin with {{{{ db_password }}}}"
"""

# startup: a no_log task fails with a secret in its message.
STARTUP = f"""\
- name: Startup
  hosts: all
  gather_facts: false
  vars:
    playbook_secret: {PLAYBOOK_SECRET}
  tasks:
    - name: Fail with the hidden secret
      ansible.builtin.fail:
        msg: "{{{{ playbook_secret }}}}"
      no_log: true
"""

# paperspace: run against an unreachable host given with -i.
PAPERSPACE = """\
- name: Paperspace
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping the machine
      ansible.builtin.ping:
"""

# An ssh that always fails to connect, as ssh does (exit 255): ansible reports
# the host unreachable, on any machine, with or without an ssh client.
FAKE_SSH = """\
#!/bin/sh
echo "ssh: connect to host 127.0.0.1 port 1: Connection refused" >&2
exit 255
"""


@dataclass
class Result:
    rc: int
    out: str
    err: str = ""

    @property
    def both(self) -> str:
        return self.out + self.err


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("project"), {"base": CONVERGE, "rebuild_base": REBUILD, "teardown": TEARDOWN,
                                  "startup": STARTUP, "paperspace": PAPERSPACE})


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no ANSIBLE_* from the caller, a private state dir."""
    return clean_env(tmp_path / "state")


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "reforge", *args]


def run_piped(args: list[str], env: dict[str, str], cwd: Path) -> Result:
    proc = subprocess.run(command(*args), env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _read_all(master: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], TIMEOUT)
        if not ready:
            raise TimeoutError("reforge wrote nothing for too long")
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def run_tty(args: list[str], env: dict[str, str], cwd: Path) -> Result:
    """Run with stdin, stdout and stderr on a pseudo-terminal 200 columns wide."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    proc = subprocess.Popen(command(*args), stdin=slave, stdout=slave, stderr=slave,
                            env=env, cwd=cwd, close_fds=True)
    os.close(slave)
    try:
        output = _read_all(master)
    finally:
        os.close(master)
    rc = proc.wait(timeout=TIMEOUT)
    # The terminal turns every \n into \r\n.
    return Result(rc, output.decode("utf-8", errors="replace").replace("\r\n", "\n"))


@pytest.fixture
def fake_ssh(tmp_path: Path) -> Path:
    path = tmp_path / "fake-ssh"
    path.write_text(FAKE_SSH)
    path.chmod(0o755)
    return path


def host_row(text: str, host: str = "localhost") -> dict[str, int]:
    """The summary table's counts for a host."""
    lines = text.splitlines()
    header = next(line for line in lines if line.split()[:1] == ["host"])
    row = next(line for line in lines if line.split()[:1] == [host])
    return dict(zip(header.split()[1:], (int(cell) for cell in row.split()[1:])))


def section(text: str, title: str) -> str:
    """The indented lines under a summary heading such as `failed tasks:`."""
    lines = text.splitlines()
    start = lines.index(title) + 1
    body = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        body.append(line)
    return "\n".join(body)


def assert_no_secret(text: str) -> None:
    for secret in (PLAYBOOK_SECRET, TOKEN, PASSWORD):
        assert secret not in text


# --- what happened is what the summary says -------------------------------


def test_converge_without_tty_prints_plain_lines_and_counts(project: Path, env: dict[str, str],
                                                             tmp_path: Path) -> None:
    result = run_piped(["converge", "--project", str(project), "-e", f"out_dir={tmp_path}"], env, tmp_path)

    assert result.rc == 0, result.both
    assert (tmp_path / "marker").read_text() == "converged\n"
    assert "\x1b[" not in result.out and "\r" not in result.out
    assert [line for line in result.out.splitlines() if line.startswith("task ")] == [
        "task 1: Look at the marker", "task 2: Write the marker", "task 3: Say it is done"]
    counts = host_row(result.out)
    assert (counts["ok"], counts["changed"], counts["failed"], counts["unreachable"]) == (3, 1, 0, 0)
    assert "reforge converge: successful (exit 0), 3 tasks in" in result.out
    slowest = section(result.out, "slowest tasks:").splitlines()
    assert len(slowest) == 3 and all(line.endswith("[localhost]") for line in slowest)
    artifacts = Path(result.out.splitlines()[-1].split()[1])
    assert artifacts.is_relative_to(tmp_path / "state" / "reforge")
    assert (artifacts / "stdout").is_file() and (artifacts / "job_events").is_dir()


def test_json_summary_with_check_and_tags_passed_through(project: Path, env: dict[str, str],
                                                         tmp_path: Path) -> None:
    result = run_piped(["converge", "--project", str(project), "--json", "--check", "--tags", "write",
                        "-e", f"out_dir={tmp_path}"], env, tmp_path)

    assert result.rc == 0, result.both
    summary = json.loads(result.out)
    assert not (tmp_path / "marker").exists(), "--check must not write the marker"
    assert summary["hosts"] == {"localhost": {"ok": 1, "changed": 1, "failed": 0, "unreachable": 0,
                                              "skipped": 0, "rescued": 0, "ignored": 0}}
    assert summary["tasks"] == 1
    assert [task["task"] for task in summary["slowest_tasks"]] == ["Write the marker"]
    assert (summary["command"], summary["playbook"], summary["status"], summary["rc"]) == (
        "converge", "playbooks/base.yml", "successful", 0)
    assert summary["failed_tasks"] == [] and summary["elapsed_seconds"] > 0
    assert Path(summary["artifacts"]).is_dir()


def test_tty_shows_one_live_line_and_knows_the_count_the_second_time(project: Path, env: dict[str, str],
                                                                      tmp_path: Path) -> None:
    args = ["converge", "--project", str(project), "-e", f"out_dir={tmp_path}"]
    first = run_tty(args, env, tmp_path)
    second = run_tty(args, env, tmp_path)

    assert first.rc == 0 and second.rc == 0, first.out + second.out
    assert "\r\x1b[Ktask 3: Say it is done [localhost]" in first.out
    assert "\r\x1b[Ktask 2/3: Write the marker [localhost]" in second.out
    # Live: task lines are redrawn in place, never printed one per line.
    assert not [line for line in second.out.splitlines() if line.startswith("task ")]
    assert host_row(first.out)["changed"] == 1
    assert host_row(second.out)["changed"] == 0
    assert "reforge converge: successful (exit 0), 3 tasks in" in second.out


# --- failures ---------------------------------------------------------------


def test_failing_task_exits_non_zero_and_is_named(project: Path, env: dict[str, str], tmp_path: Path) -> None:
    result = run_piped(["rebuild", "--project", str(project), "--json"], env, tmp_path)

    assert result.rc == 2, result.both
    summary = json.loads(result.out)
    assert summary["status"] == "failed" and summary["rc"] == 2
    assert summary["failed_tasks"] == [{"task": "Break on purpose", "host": "localhost",
                                        "msg": "the rebuild broke on purpose", "unreachable": False}]
    assert summary["hosts"]["localhost"]["failed"] == 1 and summary["tasks"] == 2
    assert "Never reached" not in result.out


def test_failing_task_on_a_tty(project: Path, env: dict[str, str], tmp_path: Path) -> None:
    result = run_tty(["rebuild", "--project", str(project)], env, tmp_path)

    assert result.rc == 2, result.out
    assert "failed: Break on purpose [localhost]\n" in result.out
    failed = section(result.out, "failed tasks:")
    assert "Break on purpose [localhost] failed:" in failed
    assert "the rebuild broke on purpose" in failed
    assert host_row(result.out)["failed"] == 1
    assert "Never reached" not in result.out


def test_unreachable_host_from_inventory_option(project: Path, env: dict[str, str], tmp_path: Path,
                                                fake_ssh: Path) -> None:
    inventory = tmp_path / "ghost.yml"
    inventory.write_text(f"all:\n  hosts:\n    ghost:\n      ansible_host: 127.0.0.1\n"
                         f"      ansible_connection: ssh\n      ansible_ssh_executable: {fake_ssh}\n")
    result = run_piped(["paperspace", "--project", str(project), "-i", "ghost.yml", "--json"], env, tmp_path)

    assert result.rc == 4, result.both
    summary = json.loads(result.out)
    assert summary["hosts"]["ghost"]["unreachable"] == 1
    assert list(summary["hosts"]) == ["ghost"]
    [failure] = summary["failed_tasks"]
    assert (failure["task"], failure["host"], failure["unreachable"]) == ("Ping the machine", "ghost", True)
    assert "Connection refused" in failure["msg"]


# --- secrets ------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_secrets_from_extra_vars_are_scrubbed(project: Path, env: dict[str, str], tmp_path: Path,
                                              as_json: bool) -> None:
    (tmp_path / "secrets.yml").write_text(f"db_password: {PASSWORD}\n")
    args = ["teardown", "--project", str(project), "-e", f"api_token={TOKEN}", "-e", "@secrets.yml"]
    result = run_piped(args + (["--json"] if as_json else []), env, tmp_path)

    assert result.rc == 2, result.both
    assert_no_secret(result.both)
    if as_json:
        summary = json.loads(result.out)
        assert summary["failed_tasks"][0]["msg"] == "cannot log in as admin with ********"
        assert "Log in with ********" in {task["task"] for task in summary["slowest_tasks"]}
        assert summary["custom_stats"] == {"login_report": ["logged in with ********", "as admin"]}
    else:
        assert "task 2: Log in with ********" in result.out
        assert "cannot log in as admin with ********" in section(result.out, "failed tasks:")
        assert section(result.out, "custom stats:").splitlines() == [
            "  login_report:", "    logged in with ********", "    as admin"]
        assert host_row(result.out)["ok"] == 3


def test_no_log_failure_stays_hidden_on_a_tty(project: Path, env: dict[str, str], tmp_path: Path) -> None:
    result = run_tty(["startup", "--project", str(project)], env, tmp_path)

    assert result.rc == 2, result.both
    assert_no_secret(result.both)
    assert "Fail with the hidden secret [localhost] failed:" in result.out
    assert "no_log" in section(result.out, "failed tasks:")


def test_no_log_failure_stays_hidden_in_json(project: Path, env: dict[str, str], tmp_path: Path) -> None:
    result = run_piped(["startup", "--project", str(project), "--json"], env, tmp_path)

    assert result.rc == 2, result.both
    assert_no_secret(result.both)
    [failure] = json.loads(result.out)["failed_tasks"]
    assert failure["task"] == "Fail with the hidden secret" and "no_log" in failure["msg"]


# --- bad input --------------------------------------------------------------


def assert_usage_error(result: Result, *words: str) -> None:
    assert result.rc == 2
    assert "Traceback" not in result.both
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("reforge")
    for word in words:
        assert word in lines[0]


def test_unknown_subcommand(env: dict[str, str], tmp_path: Path) -> None:
    assert_usage_error(run_piped(["rebiuld"], env, tmp_path), "invalid choice", "rebiuld")


def test_missing_subcommand(env: dict[str, str], tmp_path: Path) -> None:
    assert_usage_error(run_piped([], env, tmp_path), "COMMAND")


def test_missing_inventory(project: Path, env: dict[str, str], tmp_path: Path) -> None:
    result = run_piped(["converge", "--project", str(project), "-i", "nowhere.yml"], env, tmp_path)
    assert_usage_error(result, "inventory not found", "nowhere.yml")


def test_missing_extra_vars_file(project: Path, env: dict[str, str], tmp_path: Path) -> None:
    result = run_piped(["converge", "--project", str(project), "-e", "@missing.yml"], env, tmp_path)
    assert_usage_error(result, "cannot read extra vars file missing.yml", "No such file")


def test_unreadable_extra_vars_file(project: Path, env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "adir.yml").mkdir()
    result = run_piped(["converge", "--project", str(project), "-e", "@adir.yml"], env, tmp_path)
    assert_usage_error(result, "cannot read extra vars file adir.yml", "directory")


def test_invalid_extra_vars_file_does_not_echo_its_content(project: Path, env: dict[str, str],
                                                            tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(f"api_token: {TOKEN}\n  broken: [\n")
    result = run_piped(["converge", "--project", str(project), "-e", "@bad.yml"], env, tmp_path)
    assert_usage_error(result, "extra vars file bad.yml is not valid YAML or JSON", "line 2")
    assert_no_secret(result.both)


def test_missing_playbook(project: Path, env: dict[str, str], tmp_path: Path) -> None:
    result = run_piped(["doctor", "--project", str(project)], env, tmp_path)
    assert_usage_error(result, "playbooks/doctor.yml does not exist")


def test_not_a_project(env: dict[str, str], tmp_path: Path) -> None:
    env["REFORGE_PROJECT"] = str(tmp_path)
    assert_usage_error(run_piped(["converge"], env, tmp_path), "REFORGE_PROJECT", "not a reforge project")
