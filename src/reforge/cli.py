"""The `reforge` command: run one of the project's playbooks with live
progress and a final summary; the exit code is the playbook's."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TextIO

from reforge import __version__
from reforge.errors import RunError, UsageError
from reforge.extravars import load_extra_vars
from reforge.progress import Progress
from reforge.project import COMMANDS, DEFAULT_INVENTORIES, find_project
from reforge.runner import RunRequest, TaskCounts, run, state_dir
from reforge.secrets import Scrubber
from reforge.summary import Recorder, build_summary, render_json, render_text

RUN_ERROR = 1
USAGE_ERROR = 2
CANCELED = 130


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _options() -> Parser:
    options = Parser(add_help=False)
    ansible = options.add_argument_group("passed to ansible-playbook")
    ansible.add_argument("--check", action="store_true", help="do not change anything; show what would change")
    ansible.add_argument("--diff", action="store_true", help="show the differences in changed files")
    ansible.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS",
                         help="key=value, YAML/JSON, or @FILE (repeatable)")
    ansible.add_argument("-i", "--inventory", action="append", default=[], metavar="INVENTORY",
                         help="inventory file or directory, or a comma-separated host list (repeatable)")
    ansible.add_argument("--tags", help="run only the tasks with these tags")
    ansible.add_argument("--skip-tags", help="skip the tasks with these tags")
    ansible.add_argument("--limit", help="run on these hosts only")
    ansible.add_argument("-v", "--verbose", action="count", default=0,
                         help="more detail: ansible's verbosity, and each task result's status")
    own = options.add_argument_group("reforge")
    own.add_argument("--json", action="store_true", help="print the summary as JSON only")
    own.add_argument("--project", metavar="DIR", help="the reforge project (default: $REFORGE_PROJECT, "
                     "else the checkout reforge was installed from)")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="reforge", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    options = _options()
    for name, (playbook, summary) in COMMANDS.items():
        commands.add_parser(name, parents=[options], help=summary,
                            description=f"{summary} ({playbook})")
    return parser


def _inventories(values: list[str], cwd: Path) -> list[str]:
    """Files must exist; a value with a comma is a host list, kept as is."""
    checked: list[str] = []
    for value in values:
        if "," in value:
            checked.append(value)
            continue
        path = (cwd / Path(value).expanduser()).resolve()
        if not path.exists():
            raise UsageError(f"inventory not found: {value}")
        checked.append(str(path))
    return checked


def _request(args: argparse.Namespace, environ: Mapping[str, str], cwd: Path) -> tuple[RunRequest, Scrubber]:
    project = find_project(args.project, environ, cwd)
    playbook = project.playbook(args.command)
    inventories = _inventories(args.inventory, cwd)
    default_inventory = project.root / DEFAULT_INVENTORIES.get(args.command, "")
    if not inventories and args.command in DEFAULT_INVENTORIES and default_inventory.is_file():
        inventories = [str(default_inventory)]
    extra = load_extra_vars(args.extra_vars, cwd, project.secret_options())
    cmdline = [flag for flag, wanted in (("--check", args.check), ("--diff", args.diff)) if wanted]
    for value in extra.args:
        cmdline += ["-e", value]
    request = RunRequest(args.command, project, playbook, inventories, cmdline,
                         args.tags, args.skip_tags, args.limit, args.verbose)
    return request, Scrubber(extra.secrets)


class Interrupt:
    """Ctrl-C asks the runner to stop ansible-playbook instead of raising."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True

    def poll(self) -> bool:
        return self.requested


def _progress_stream(as_json: bool) -> TextIO | None:
    if not as_json:
        return sys.stdout
    # JSON goes to stdout alone; a terminal on stderr still gets the live line.
    return sys.stderr if sys.stderr.isatty() else None


def _execute(request: RunRequest, scrubber: Scrubber, as_json: bool, environ: Mapping[str, str]) -> int:
    counts = TaskCounts(state_dir(environ) / "task-counts.json")
    stream = _progress_stream(as_json)
    progress = None
    if stream is not None:
        progress = Progress(stream, live=stream.isatty(), scrubber=scrubber,
                            expected=counts.get(request.count_key()), verbose=request.verbosity > 0)
    recorder = Recorder()

    def handle(event: Mapping[str, Any]) -> None:
        recorder.record(event)
        if progress is not None:
            progress.handle(event)

    interrupt = Interrupt()
    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        result = run(request, handler=handle, cancel=interrupt.poll, environ=environ)
    finally:
        signal.signal(signal.SIGINT, previous)
        if progress is not None:
            progress.finish()
    rc = CANCELED if interrupt.requested else result.rc
    if rc == 0:
        counts.save(request.count_key(), recorder.tasks_started)
    summary = build_summary(recorder, command=request.command,
                            playbook=str(request.playbook.relative_to(request.project.root)),
                            status=result.status, rc=rc, elapsed=result.elapsed,
                            errors=result.errors, artifacts=str(result.artifacts))
    if as_json:
        print(render_json(summary, scrubber))
    else:
        print("\n".join(scrubber.text(line) for line in render_text(summary)))
    return rc


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    environ = os.environ
    try:
        request, scrubber = _request(args, environ, Path.cwd())
        _make_state_dir(environ)
        return _execute(request, scrubber, args.json, environ)
    except UsageError as error:
        print(f"reforge: {error}", file=sys.stderr)
        return USAGE_ERROR
    except RunError as error:
        print(f"reforge: {error}", file=sys.stderr)
        return RUN_ERROR


def _make_state_dir(environ: Mapping[str, str]) -> None:
    path = state_dir(environ)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create the state dir {path}: {error.strerror}") from None
