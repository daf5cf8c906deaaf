"""Run one playbook of the project with ansible-runner, in a deliberate environment.

- The environment ansible-playbook gets is built from an allow-list, not copied
  from the caller (an HF_TOKEN in the shell never reaches the run or its records).
- Host-key checking follows ansible.cfg (on by default): ansible-runner's own
  ANSIBLE_HOST_KEY_CHECKING=False is removed unless the caller set the variable.
- Inline -e values go through private files in the run's throw-away data dir,
  removed afterwards, so they never appear on a command line or in `command`.
- Run records (events, ansible's full output) are kept under the XDG state dir,
  mode 0700, unless a symlink leads there (on Paperspace ~/.local is a link into
  the shared /storage); then under $TMPDIR/reforge-<uid>. After the run, secret
  values are masked in every record and `command` keeps no environment.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reforge.errors import RunError, UsageError
from reforge.extravars import file_text, load_extra_vars
from reforge.project import Project
from reforge.secrets import Scrubber

if TYPE_CHECKING:
    import ansible_runner

KEEP_RUNS = 20
# What the run may see of the caller's environment: locale, terminal, home and user,
# proxies and CA bundles, the ssh agent, and the settings of the tools it drives.
ENV_NAMES = frozenset({
    "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TZ", "LANG", "LANGUAGE", "TMPDIR", "SSH_AUTH_SOCK",
    "http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME",
})
ENV_PREFIXES = ("LC_", "ANSIBLE_", "REFORGE_", "PIP_", "CONDA_", "MAMBA_")
HOST_KEY_CHECKING = "ANSIBLE_HOST_KEY_CHECKING"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ERROR_START = ("[ERROR]", "ERROR!")
TASK_FAILED = "Task failed"
MAX_ERROR_LINES = 10

EventHandler = Callable[[Mapping[str, Any]], None]


@dataclass
class RunRequest:
    """Everything ansible-playbook gets, already validated."""

    command: str
    project: Project
    playbook: Path
    inventories: list[str] = field(default_factory=list)
    cmdline: list[str] = field(default_factory=list)
    tags: str | None = None
    skip_tags: str | None = None
    limit: str | None = None
    verbosity: int = 0
    vault_password_files: list[str] = field(default_factory=list)
    # Asked with --ask-vault-pass; handed to ansible-playbook in a 0600 file, never on a command line.
    vault_password: str | None = field(default=None, repr=False)

    def count_key(self) -> str:
        """Runs with the same key start the same tasks (give or take conditions)."""
        return json.dumps([str(self.playbook), self.inventories, self.tags, self.skip_tags,
                           self.limit, "--check" in self.cmdline])


@dataclass
class RunResult:
    status: str
    rc: int
    elapsed: float
    artifacts: Path
    errors: list[str]


def _through_link(path: Path) -> bool:
    """Whether a symlink sits anywhere on the way to `path` (the parts that exist)."""
    return any(part.is_symlink() for part in (path, *path.parents))


def state_dir(environ: Mapping[str, str]) -> Path:
    """Where reforge keeps its run records: never where a link (into storage, say) leads."""
    base = Path(environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")).absolute()
    if not _through_link(base / "reforge"):
        return base / "reforge"
    tmp = environ.get("TMPDIR") or tempfile.gettempdir()
    return Path(tmp).absolute() / f"reforge-{os.getuid()}"


def private_dir(path: Path) -> Path:
    """Create `path` (mode 0700); refuse a link, or a directory another user owns."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(path)
    except OSError as error:
        raise RunError(f"cannot create the run records dir {path}: {error.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise RunError(f"refusing the run records dir {path}: it is a link, or not a directory of this user")
    path.chmod(0o700)
    return path


class TaskCounts:
    """How many tasks the last successful run of each kind started, so the next
    run can show `task n/m` (includes and conditions make m unknowable before)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> int | None:
        value = self._load().get(key)
        return value if isinstance(value, int) and value > 0 else None

    def save(self, key: str, count: int) -> None:
        data = self._load()
        data[key] = count
        try:
            _write_private(self.path, json.dumps(data, indent=1))
        except OSError:
            pass  # only costs the next run its "of m"


def _write_private(path: Path, text: str, exclusive: bool = False) -> None:
    """Write a 0600 file, never through a link planted at its name."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)


def _search_path(environ: Mapping[str, str]) -> str:
    # The venv's bin first, so ansible-playbook is the one installed beside
    # reforge even when the venv is not activated.
    return os.pathsep.join(filter(None, (str(Path(sys.executable).parent), environ.get("PATH", ""))))


def environment(project: Project, environ: Mapping[str, str]) -> dict[str, str]:
    """What reforge sets for the run, on top of the allowed part of the caller's environment."""
    path = _search_path(environ)
    if shutil.which("ansible-playbook", path=path) is None:
        raise UsageError("ansible-playbook not found: install reforge's requirements (see the README)")
    return {"ANSIBLE_CONFIG": str(project.config), "PATH": path}


def allowed(name: str) -> bool:
    return name in ENV_NAMES or name.startswith(ENV_PREFIXES)


def run_environment(prepared: Mapping[str, str], environ: Mapping[str, str],
                    envvars: Mapping[str, str]) -> dict[str, str]:
    """The run's environment: the allowed part of the caller's, plus what reforge and ansible-runner set.

    ansible-runner seeds `prepared` with the whole process environment; what it
    (or reforge) set or changed is kept, the rest only when allowed. Its
    ANSIBLE_HOST_KEY_CHECKING=False goes, so ansible.cfg decides (on by default)."""
    added = {name: value for name, value in prepared.items() if os.environ.get(name) != value}
    env = {name: value for name, value in environ.items() if allowed(name)}
    env.update(added)
    env.update(envvars)
    if HOST_KEY_CHECKING not in environ:
        env.pop(HOST_KEY_CHECKING, None)
    return env


def private_extra_vars(cmdline: list[str], data_dir: Path) -> list[str]:
    """The command line with every inline -e value moved into a 0600 file in the private data dir."""
    out: list[str] = []
    args = iter(cmdline)
    for arg in args:
        if arg != "-e":
            out.append(arg)
            continue
        value = next(args)
        if not value.startswith("@"):
            path = data_dir / f"extra-vars-{len(out)}.yml"
            _write_private(path, file_text(value), exclusive=True)
            value = f"@{path}"
        out += ["-e", value]
    return out


def vault_options(request: RunRequest, data_dir: Path) -> list[str]:
    """--vault-password-file for each given file, and for the asked password in the private data dir."""
    options: list[str] = []
    for path in request.vault_password_files:
        options += ["--vault-password-file", path]
    if request.vault_password:
        path = data_dir / "vault-password"
        _write_private(path, request.vault_password + "\n", exclusive=True)
        options += ["--vault-password-file", str(path)]
    return options


def extra_vars_secrets(request: RunRequest) -> Scrubber:
    """A scrubber for the secret values of the request's extra vars (files included)."""
    values = [request.cmdline[i + 1] for i, arg in enumerate(request.cmdline[:-1]) if arg == "-e"]
    try:
        secrets = load_extra_vars(values, request.project.root, request.project.secret_options()).secrets
    except UsageError:
        secrets = set()
    if request.vault_password:
        secrets.add(request.vault_password)
    return Scrubber(secrets)


def scrub_records(artifacts: Path, scrubber: Scrubber) -> None:
    """Mask secret values in every run record, keep no environment in `command`, make all 0600."""
    command_file = artifacts / "command"
    try:
        recorded = json.loads(command_file.read_text(encoding="utf-8"))
        recorded = {"command": recorded.get("command"), "cwd": recorded.get("cwd"),
                    "environment_names": sorted(recorded.get("env") or {})}
        command_file.unlink()
        _write_private(command_file, json.dumps(recorded), exclusive=True)
    except (OSError, ValueError, AttributeError):
        # Unreadable as ansible-runner writes it: keep no copy of the environment at all.
        command_file.unlink(missing_ok=True)
    for path in sorted(artifacts.rglob("*")):
        if path.is_symlink():
            continue
        path.chmod(0o700 if path.is_dir() else 0o600)
        if path.is_dir():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        cleaned = scrubber.text(text)
        if cleaned != text:
            path.unlink()
            _write_private(path, cleaned, exclusive=True)


def run_ident(command: str) -> str:
    return time.strftime("%Y%m%dT%H%M%S") + f"-{command}-{os.getpid()}"


def error_lines(stdout_file: Path) -> list[str]:
    """ansible-playbook's own error messages (syntax, unknown module, bad
    option, a missing file), without colours. A failed task's error is left
    out: ansible prints its message even for a no_log task."""
    try:
        text = stdout_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    lines = [ANSI_ESCAPE.sub("", line).rstrip() for line in text.splitlines()]
    picked: list[str] = []
    keep_origin = False
    for line in lines:
        if line.startswith(ERROR_START):
            keep_origin = TASK_FAILED not in line
            picked += [line] if keep_origin else []
        elif line.startswith("Origin:") and keep_origin:
            picked.append(line)
            keep_origin = False
    return picked[:MAX_ERROR_LINES]


def run(request: RunRequest, *, handler: EventHandler, cancel: Callable[[], bool],
        environ: Mapping[str, str]) -> RunResult:
    envvars = environment(request.project, environ)
    private_dir(state_dir(environ))
    artifacts_root = private_dir(state_dir(environ) / "runs")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reforge-runner-") as data_dir:
        runner = _start(request, data_dir, artifacts_root, envvars, environ, handler, cancel)
    artifacts = Path(runner.config.artifact_dir)
    scrub_records(artifacts, extra_vars_secrets(request))
    rc = runner.rc if isinstance(runner.rc, int) else 1
    errors = error_lines(artifacts / "stdout") if rc != 0 else []
    return RunResult(str(runner.status), rc, time.monotonic() - started, artifacts, errors)


def _keeping(handler: EventHandler) -> Callable[[Mapping[str, Any]], bool]:
    """ansible-runner drops an event from the artifacts unless its handler returns True."""

    def handle(event: Mapping[str, Any]) -> bool:
        handler(event)
        return True

    return handle


def _start(request: RunRequest, data_dir: str, artifacts_root: Path, envvars: dict[str, str],
           environ: Mapping[str, str], handler: EventHandler, cancel: Callable[[], bool]) -> ansible_runner.Runner:
    # Imported only when a playbook runs: ansible_runner loads ansible, most of the
    # command's start-up time, which help and refused input do without.
    from ansible_runner.exceptions import AnsibleRunnerException  # pylint: disable=import-outside-toplevel
    from ansible_runner.interface import init_runner  # pylint: disable=import-outside-toplevel

    cmdline = private_extra_vars(request.cmdline, Path(data_dir)) + vault_options(request, Path(data_dir))
    try:
        runner = init_runner(
            private_data_dir=data_dir,
            project_dir=str(request.project.root),
            playbook=str(request.playbook),
            inventory=request.inventories or None,
            cmdline=shlex.join(cmdline) if cmdline else None,
            tags=request.tags,
            skip_tags=request.skip_tags,
            limit=request.limit,
            verbosity=request.verbosity or None,
            envvars=envvars,
            artifact_dir=str(artifacts_root),
            ident=run_ident(request.command),
            rotate_artifacts=KEEP_RUNS,
            suppress_env_files=True,
            quiet=True,
            event_handler=_keeping(handler),
            cancel_callback=cancel,
        )
    except AnsibleRunnerException as error:
        raise RunError(f"ansible-runner could not start the run: {error}") from None
    runner.config.env = run_environment(runner.config.env, environ, envvars)
    runner.run()
    return runner
