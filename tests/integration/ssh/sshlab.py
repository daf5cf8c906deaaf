"""Helpers for the SSH tests: the test sshd, a temporary home, the roles applied with ansible-playbook, git repositories.

The sshd runs as the current user with its own config, host key and authorized_keys
file, so no system account and no root is needed. Git reaches the bare
repositories through it, as the current user.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[3]
PLAYBOOK = Path(__file__).resolve().parent / "playbook.yml"
SSH_ALIAS = "reforge-test"
RECAP = re.compile(r"^\S+\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def sshd_binary() -> str:
    """Path of sshd; the tests need the real daemon (Debian: apt-get install openssh-server)."""
    for candidate in (shutil.which("sshd"), "/usr/sbin/sshd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("sshd not found: install openssh-server (the SSH tests authenticate against a real sshd)")


def free_port() -> int:
    """An unprivileged TCP port that is free right now on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output, and fail the test with that output when check is set."""
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@dataclass
class Sshd:
    """A running test sshd."""

    port: int
    user: str
    authorized_keys: Path
    host_key_line: str
    log: Path

    def authorize(self, public_key: Path, options: str = "") -> None:
        """Let the key log in as the test user, with authorized_keys options (such as a forced command) if given."""
        prefix = f"{options} " if options else ""
        with self.authorized_keys.open("a", encoding="utf-8") as handle:
            handle.write(prefix + public_key.read_text(encoding="utf-8").strip() + "\n")

    def known_hosts_line(self) -> str:
        """The known_hosts line that pins this server's host key on its port."""
        return f"[127.0.0.1]:{self.port} {self.host_key_line}"


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until sshd accepts connections, or fail with its log."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sshd exited with {proc.returncode}:\n{log.read_text(encoding='utf-8', errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"sshd did not listen on {port}:\n{log.read_text(encoding='utf-8', errors='replace')}")


@contextlib.contextmanager
def running_sshd(base: Path) -> Iterator[Sshd]:
    """Run sshd for the current user on a free high port, with its files under base."""
    binary = sshd_binary()
    host_key = base / "host_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(host_key)])
    authorized_keys = base / "authorized_keys"
    authorized_keys.write_text("", encoding="utf-8")
    authorized_keys.chmod(0o600)
    port = free_port()
    log = base / "sshd.log"
    config = base / "sshd_config"
    # StrictModes is off because the temporary files live under the world-writable /tmp;
    # the client-side key checks under test are unaffected. PAM is off so that a non-root
    # user can run the daemon, and root needs no PAM session inside a container.
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {base / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized_keys}",
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "LogLevel VERBOSE",
                "",
            ]
        ),
        encoding="utf-8",
    )
    if os.geteuid() == 0:
        # sshd started by root checks for its privilege separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    with log.open("wb") as log_handle:
        proc = subprocess.Popen([binary, "-D", "-e", "-f", str(config)], stdout=log_handle, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, log)
        host_key_line = " ".join(Path(f"{host_key}.pub").read_text(encoding="utf-8").split()[:2])
        yield Sshd(port=port, user=getpass.getuser(), authorized_keys=authorized_keys, host_key_line=host_key_line, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class PlaybookRun:
    """The outcome of one ansible-playbook run."""

    returncode: int
    output: str
    changed: int
    failed: int

    def __str__(self) -> str:
        return f"ansible-playbook exited {self.returncode}, changed={self.changed}, failed={self.failed}\n{self.output}"


@dataclass
class Workspace:
    """A temporary home, the controller's copy of a key pair, and the roles' variables for them."""

    root: Path
    home: Path
    controller_key: Path
    sshd: Sshd
    variables: dict[str, object] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    @property
    def ssh_dir(self) -> Path:
        """The .ssh directory the roles manage."""
        return self.home / ".ssh"

    @property
    def git_dir(self) -> Path:
        """Where git_repos clones."""
        return self.root / "storage" / "git"

    def playbook(self, *extra: str, **overrides: object) -> PlaybookRun:
        """Apply both roles with the workspace's variables plus overrides, as a user would."""
        variables = {**self.variables, **overrides}
        vars_file = self.root / f"vars-{len(self.outputs)}.json"
        vars_file.write_text(json.dumps(variables), encoding="utf-8")
        env = {
            **os.environ,
            "HOME": str(self.home),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_PIPELINING": "1",
            "ANSIBLE_LOCAL_TEMP": str(self.root / "ansible-local"),
            "ANSIBLE_REMOTE_TEMP": str(self.root / "ansible-remote"),
        }
        ansible_playbook = Path(sys.executable).with_name("ansible-playbook")
        command = [str(ansible_playbook if ansible_playbook.exists() else "ansible-playbook"), str(PLAYBOOK), "-e", f"@{vars_file}", *extra]
        proc = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600, check=False)
        output = proc.stdout + proc.stderr
        self.outputs.append(output)
        recap = RECAP.findall(output)
        changed = sum(int(row[1]) for row in recap)
        failed = sum(int(row[3]) for row in recap) + sum(int(row[2]) for row in recap)
        return PlaybookRun(returncode=proc.returncode, output=output, changed=changed, failed=failed)

    def converge(self, *extra: str, **overrides: object) -> PlaybookRun:
        """Apply the roles and require success."""
        result = self.playbook(*extra, **overrides)
        assert result.returncode == 0 and result.failed == 0, str(result)
        return result

    def ssh(self, *command: str, key: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Connect to the test sshd through the deployed config, key and known_hosts, as git does."""
        args = [
            "ssh",
            "-F", str(self.ssh_dir / "config"),
            "-o", f"UserKnownHostsFile={self.ssh_dir / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=20",
        ]
        if key is not None:
            args += ["-i", str(key)]
        return run(args + [SSH_ALIAS, *command], check=False)


def private_key_lines(path: Path) -> list[str]:
    """The base64 body lines of a private key, each of which must never appear in any output."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("-----")]


def assert_no_private_key(outputs: list[str], key: Path) -> None:
    """No line of the private key appears in any captured output."""
    secret_lines = private_key_lines(key)
    assert secret_lines, f"{key} has no body to look for"
    for index, output in enumerate(outputs):
        for line in secret_lines:
            assert line not in output, f"a line of the private key appears in the output of run {index}"


def make_workspace(root: Path, sshd: Sshd, source: str = "file") -> Workspace:
    """A fresh temporary home and the roles' variables pointing at it and at the test sshd."""
    home = root / "home"
    home.mkdir(parents=True)
    controller = root / "controller"
    controller.mkdir()
    controller_key = controller / "id_test"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "reforge-test-controller", "-f", str(controller_key)])
    if source == "file":
        sshd.authorize(controller_key.with_name("id_test.pub"))
    variables: dict[str, object] = {
        "ssh_keys_home": str(home),
        "ssh_keys_source": source,
        "ssh_keys_hosts": [
            {"host": "github.com", "hostname": "github.com", "user": "git"},
            {"host": SSH_ALIAS, "hostname": "127.0.0.1", "port": sshd.port, "user": sshd.user},
        ],
        "ssh_keys_known_hosts_extra": [sshd.known_hosts_line()],
        "ssh_keys_check_target": SSH_ALIAS,
        "git_repos_home": str(home),
        "git_repos_dir": str(root / "storage" / "git"),
        "git_repos_repositories": [],
    }
    if source == "file":
        variables["ssh_keys_private_key_file"] = str(controller_key)
    return Workspace(root=root, home=home, controller_key=controller_key, sshd=sshd, variables=variables)


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "reforge test",
    "GIT_AUTHOR_EMAIL": "test@reforge.invalid",
    "GIT_COMMITTER_NAME": "reforge test",
    "GIT_COMMITTER_EMAIL": "test@reforge.invalid",
}


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git locally (no SSH) with a fixed identity; return stdout."""
    env = {**os.environ, **GIT_IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    return run(["git", *args], cwd=cwd, env=env).stdout.strip()


@dataclass
class Upstream:
    """A bare repository on the git server and a local clone used to push new commits to it."""

    bare: Path
    work: Path

    def commit(self, name: str, content: str) -> str:
        """Commit a file in the pusher's clone, push it, and return the new commit."""
        (self.work / name).write_text(content, encoding="utf-8")
        git("add", name, cwd=self.work)
        git("commit", "--quiet", "-m", f"Add {name}", cwd=self.work)
        git("push", "--quiet", "origin", "HEAD:main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


def make_upstream(root: Path, name: str) -> Upstream:
    """A bare repository with one commit on main, reached over SSH as <alias>:<path>."""
    bare = root / "server" / f"{name}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    work = root / "pusher" / name
    git("clone", "--quiet", str(bare), str(work))
    git("checkout", "--quiet", "-b", "main", cwd=work)
    upstream = Upstream(bare=bare, work=work)
    upstream.commit("README.md", f"# {name}\n")
    return upstream
