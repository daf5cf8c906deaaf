"""Helpers for the SSH tests: the test sshd, temporary homes as inventory hosts, ansible-playbook runs, git repositories.

The sshd runs as the current user with its own config, host key and authorized_keys
file, so no system account and no root is needed. Git reaches the bare
repositories through it, as the current user.

Every ansible-playbook run costs seconds of start-up, so the tests apply the roles
to several temporary homes at once: each home is a host of its own in a generated
inventory (all with the local connection), with its own key source and variables,
and the play recap gives each host's changed and failed counts.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import re
import shutil
import socket
import stat
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
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


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


def mode(path: Path) -> str:
    """Permission bits of path (following links), as an octal string."""
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"


def digest(path: Path) -> str:
    """SHA-256 of a file's content."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


@dataclass(frozen=True)
class HostStats:
    """One host's line of the play recap."""

    ok: int
    changed: int
    unreachable: int
    failed: int


@dataclass
class PlaybookRun:
    """The outcome of one ansible-playbook run over every host of the lab."""

    args: tuple[str, ...]
    returncode: int
    output: str
    stats: dict[str, HostStats]
    seconds: float

    def host(self, name: str) -> HostStats:
        """The recap of one host; fails the test with the output when the host is missing from the recap."""
        if name not in self.stats:
            pytest.fail(f"no recap line for {name}\n{self}")
        return self.stats[name]

    def __str__(self) -> str:
        return f"ansible-playbook {' '.join(self.args)} exited {self.returncode} after {self.seconds:.1f} s, recap {self.stats}\n{self.output}"


@dataclass
class Host:
    """One temporary home, applied to as an inventory host: its key pair on the controller and the roles' variables."""

    name: str
    root: Path
    home: Path
    controller_key: Path
    sshd: Sshd
    variables: dict[str, object] = field(default_factory=dict)

    @property
    def ssh_dir(self) -> Path:
        """The .ssh directory the roles manage (it may be a symlink)."""
        return self.home / ".ssh"

    @property
    def key(self) -> Path:
        """The private key the roles manage."""
        return self.ssh_dir / "id_ed25519"

    @property
    def controller_public_key(self) -> Path:
        """The public half of the controller's key pair."""
        return self.controller_key.with_name(self.controller_key.name + ".pub")

    @property
    def git_dir(self) -> Path:
        """Where git_repos clones."""
        return self.root / "storage" / "git"

    def ssh(self, *command: str) -> subprocess.CompletedProcess[str]:
        """Connect to the test sshd through the host's deployed config, key and known_hosts, as git does."""
        args = [
            "ssh",
            "-F", str(self.ssh_dir / "config"),
            "-o", f"UserKnownHostsFile={self.ssh_dir / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=20",
        ]
        return run(args + [SSH_ALIAS, *command], check=False)

    def snapshot(self) -> dict[str, str]:
        """The managed state as it is on disk: the .ssh link, every file's mode and digest, each checkout's commit and status."""
        state: dict[str, str] = {}
        if self.ssh_dir.is_symlink():
            state[".ssh -> "] = os.readlink(self.ssh_dir)
        if self.ssh_dir.exists():
            state[".ssh/"] = mode(self.ssh_dir)
            for path in sorted(self.ssh_dir.iterdir()):
                state[f".ssh/{path.name}"] = f"{mode(path)} {digest(path)}"
        if self.git_dir.is_dir():
            for checkout in sorted(self.git_dir.iterdir()):
                state[f"git/{checkout.name}"] = f"{git('rev-parse', 'HEAD', cwd=checkout)} {git('status', '--porcelain', cwd=checkout)!r}"
        return state


def make_host(lab_root: Path, name: str, sshd: Sshd, source: str, authorize: bool) -> Host:
    """A fresh temporary home with a controller key pair, and the roles' variables pointing at it and at the test sshd."""
    root = lab_root / name
    home = root / "home"
    home.mkdir(parents=True)
    controller = root / "controller"
    controller.mkdir()
    controller_key = controller / "id_test"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"reforge-test-{name}", "-f", str(controller_key)])
    host = Host(name=name, root=root, home=home, controller_key=controller_key, sshd=sshd)
    if authorize:
        sshd.authorize(host.controller_public_key)
    host.variables = {
        "ssh_keys_home": str(home),
        "ssh_keys_source": source,
        "ssh_keys_hosts": [
            {"host": "github.com", "hostname": "github.com", "user": "git"},
            {"host": SSH_ALIAS, "hostname": "127.0.0.1", "port": sshd.port, "user": sshd.user},
        ],
        "ssh_keys_known_hosts_extra": [sshd.known_hosts_line()],
        "ssh_keys_check_target": SSH_ALIAS,
        "git_repos_home": str(home),
        "git_repos_dir": str(host.git_dir),
        "git_repos_repositories": [],
    }
    if source == "file":
        host.variables["ssh_keys_private_key_file"] = str(controller_key)
    return host


@dataclass
class Lab:
    """Temporary homes that one ansible-playbook run applies both roles to, each as an inventory host."""

    root: Path
    sshd: Sshd
    hosts: dict[str, Host] = field(default_factory=dict)
    runs: list[PlaybookRun] = field(default_factory=list)

    def add(self, name: str, source: str, authorize: bool = True) -> Host:
        """Add a host whose key comes from source; its controller key may log in when authorize is set."""
        host = make_host(self.root, name, self.sshd, source, authorize)
        self.hosts[name] = host
        return host

    def inventory(self) -> Path:
        """Write the inventory: every host local, with the Python that runs Ansible, as inventory/local.yml does."""
        hosts = {
            name: {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}", **host.variables}
            for name, host in self.hosts.items()
        }
        # JSON is YAML, and the yaml inventory plugin reads .json files.
        path = self.root / f"inventory-{len(self.runs)}.json"
        path.write_text(json.dumps({"all": {"hosts": hosts}}), encoding="utf-8")
        return path

    def playbook(self, *extra: str) -> PlaybookRun:
        """Apply both roles to every host, as a user would, and keep the output for the secrecy checks."""
        controller_home = self.root / "controller-home"
        controller_home.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "HOME": str(controller_home),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_PIPELINING": "1",
            "ANSIBLE_FORKS": str(max(5, len(self.hosts))),
            "ANSIBLE_LOCAL_TEMP": str(self.root / "ansible-local"),
            "ANSIBLE_REMOTE_TEMP": str(self.root / "ansible-remote"),
        }
        # An unbuffered stdin makes every pipelined module read its payload one byte per system call.
        env.pop("PYTHONUNBUFFERED", None)
        ansible_playbook = Path(sys.executable).with_name("ansible-playbook")
        command = [str(ansible_playbook if ansible_playbook.exists() else "ansible-playbook"), "-i", str(self.inventory()), str(PLAYBOOK), *extra]
        started = time.monotonic()
        proc = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600, check=False)
        seconds = time.monotonic() - started
        output = proc.stdout + proc.stderr
        # Kept beside the homes for a look after a failure.
        (self.root / f"run-{len(self.runs)}.log").write_text(output, encoding="utf-8")
        stats = {
            row[0]: HostStats(ok=int(row[1]), changed=int(row[2]), unreachable=int(row[3]), failed=int(row[4]))
            for row in RECAP.findall(output)
        }
        result = PlaybookRun(args=tuple(extra), returncode=proc.returncode, output=output, stats=stats, seconds=seconds)
        self.runs.append(result)
        return result


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


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "reforge test",
    "GIT_AUTHOR_EMAIL": "test@reforge.invalid",
    "GIT_COMMITTER_NAME": "reforge test",
    "GIT_COMMITTER_EMAIL": "test@reforge.invalid",
}


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git locally (no SSH) with a fixed identity; return stdout."""
    env = {**os.environ, **GIT_IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    # The tests' own git runs nothing a checkout planted either (hooks, fsmonitor).
    return run(["git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", *args], cwd=cwd, env=env).stdout.strip()


@dataclass
class Upstream:
    """A bare repository on the git server and a local clone used to push new commits to it."""

    bare: Path
    work: Path

    @property
    def over_ssh(self) -> str:
        """The repository's URL through the ssh config alias that ssh_keys writes."""
        return f"{SSH_ALIAS}:{self.bare}"

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


def local_commit(checkout: Path, name: str) -> str:
    """Commit a new file in a clone without pushing it; return the commit."""
    (checkout / name).write_text(f"{name}\n", encoding="utf-8")
    git("add", name, cwd=checkout)
    git("commit", "--quiet", "-m", f"Local {name}", cwd=checkout)
    return git("rev-parse", "HEAD", cwd=checkout)
