"""Run one playbook of the project with ansible-runner.

The run gets a throw-away private data dir; its artifacts (events, ansible's
full output) are kept under the XDG state dir, readable by the user only,
because ansible's own output and the recorded command line may hold secrets.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
from ansible_runner.exceptions import AnsibleRunnerException

from reforge.errors import RunError, UsageError
from reforge.project import Project

KEEP_RUNS = 20
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


def state_dir(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "reforge"


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
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
            self.path.write_text(json.dumps(data, indent=1), encoding="utf-8")
        except OSError:
            pass  # only costs the next run its "of m"


def _search_path(environ: Mapping[str, str]) -> str:
    # The venv's bin first, so ansible-playbook is the one installed beside
    # reforge even when the venv is not activated.
    return os.pathsep.join(filter(None, (str(Path(sys.executable).parent), environ.get("PATH", ""))))


def environment(project: Project, environ: Mapping[str, str]) -> dict[str, str]:
    path = _search_path(environ)
    if shutil.which("ansible-playbook", path=path) is None:
        raise UsageError("ansible-playbook not found: install reforge's requirements (see the README)")
    return {"ANSIBLE_CONFIG": str(project.config), "PATH": path}


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
    artifacts_root = private_dir(state_dir(environ) / "runs")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reforge-runner-") as data_dir:
        runner = _start(request, data_dir, artifacts_root, envvars, handler, cancel)
    artifacts = Path(runner.config.artifact_dir)
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
           handler: EventHandler, cancel: Callable[[], bool]) -> ansible_runner.Runner:
    try:
        return ansible_runner.run(
            private_data_dir=data_dir,
            project_dir=str(request.project.root),
            playbook=str(request.playbook),
            inventory=request.inventories or None,
            cmdline=shlex.join(request.cmdline) if request.cmdline else None,
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
