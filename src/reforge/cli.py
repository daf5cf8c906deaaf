"""The `reforge` command: run one of the project's playbooks with live
progress and a final summary; the exit code is the playbook's."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from reforge import __version__
from reforge.errors import RunError, UsageError
from reforge.project import COMMANDS, DEFAULT_INVENTORIES, find_project
from reforge.secrets import Scrubber

if TYPE_CHECKING:
    from reforge.runner import RunRequest

# The modules that prepare and run a playbook (and through them ansible_runner and
# ansible, most of the start-up time) are imported by the functions that use them:
# help and refused input answer without them (tests/cli/test_cli_imports.py).

RUN_ERROR = 1
USAGE_ERROR = 2
CANCELED = 130
# Runs that may leave a rebuild half done when interrupted, and so roll back after it.
ROLLED_BACK_ON_INTERRUPT = ("rebuild", "converge")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _options() -> Parser:
    options = Parser(add_help=False)
    ansible = options.add_argument_group("passed to ansible-playbook")
    ansible.add_argument("-C", "--check", action="store_true", help="do not change anything; show what would change")
    ansible.add_argument("-D", "--diff", action="store_true", help="show the differences in changed files")
    ansible.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS",
                         help="key=value, YAML/JSON, or @FILE (repeatable)")
    ansible.add_argument("-i", "--inventory", action="append", default=[], metavar="INVENTORY",
                         help="inventory file or directory, or a comma-separated host list (repeatable)")
    ansible.add_argument("--tags", help="run only the tasks with these tags")
    ansible.add_argument("--skip-tags", help="skip the tasks with these tags")
    ansible.add_argument("--limit", help="run on these hosts only")
    ansible.add_argument("-v", "--verbose", action="count", default=0,
                         help="more detail: ansible's verbosity, and each task result's status")
    ansible.add_argument("-J", "--ask-vault-pass", "--ask-vault-password", dest="ask_vault_pass", action="store_true",
                         help="ask for the vault password (read from standard input when it is not a terminal)")
    ansible.add_argument("--vault-password-file", "--vault-pass-file", dest="vault_password_files", action="append",
                         default=[], metavar="FILE", help="file holding the vault password, or a script that "
                         "prints it (repeatable)")
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
        command = commands.add_parser(name, parents=[options], help=summary,
                                      description=f"{summary} ({playbook})")
        if name == "rollback":
            command.add_argument("generation", nargs="?", type=_generation, default=None, metavar="N",
                                 help="the generation to bring back, as `reforge generations` numbers "
                                      "them (default 1, the newest); an interrupted rebuild is undone first")
    return parser


def _generation(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"generation must be a number from 1: {value!r}")
    return int(value)


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
    from reforge.extravars import load_extra_vars  # pylint: disable=import-outside-toplevel
    from reforge.runner import RunRequest  # pylint: disable=import-outside-toplevel,redefined-outer-name

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
    if getattr(args, "generation", None) is not None:
        cmdline += ["-e", json.dumps({"miniforge_rollback_generation": args.generation})]
    vault_files = _vault_password_files(args.vault_password_files, cwd)
    vault_password = _ask_vault_password() if args.ask_vault_pass else None
    request = RunRequest(args.command, project, playbook, inventories, cmdline,
                         args.tags, args.skip_tags, args.limit, args.verbose,
                         vault_password_files=vault_files, vault_password=vault_password)
    secrets = set(extra.secrets) | ({vault_password} if vault_password else set())
    return request, Scrubber(secrets)


def _vault_password_files(values: list[str], cwd: Path) -> list[str]:
    """Absolute paths of readable files; anything else is refused before the run."""
    checked: list[str] = []
    for value in values:
        path = (cwd / Path(value).expanduser()).resolve()
        if not path.is_file() or not os.access(path, os.R_OK):
            raise UsageError(f"vault password file not found or not readable: {value}")
        checked.append(str(path))
    return checked


def _ask_vault_password() -> str:
    """The vault password from the terminal (not echoed), or one line of a pipe."""
    if sys.stdin.isatty():
        import getpass  # pylint: disable=import-outside-toplevel

        password = getpass.getpass("Vault password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("--ask-vault-pass: no vault password was given")
    return password


class Interrupt:
    """Ctrl-C (or SIGTERM) asks the runner to stop ansible-playbook instead of raising."""

    def __init__(self) -> None:
        self.requested = False
        self.signal = 0

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        self.signal = self.signal or signum

    def poll(self) -> bool:
        return self.requested


class Ignore:
    """While a rollback runs, a second Ctrl-C must not leave it half done."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        print("reforge: rolling back, please wait; interrupting now could leave the rollback half done",
              file=self.stream, flush=True)


def _trap(handler: Any) -> dict[int, Any]:
    return {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}


def _untrap(previous: Mapping[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _progress_stream(as_json: bool) -> TextIO | None:
    if not as_json:
        return sys.stdout
    # JSON goes to stdout alone; a terminal on stderr still gets the live line.
    return sys.stderr if sys.stderr.isatty() else None


def _run(request: RunRequest, scrubber: Scrubber, as_json: bool, environ: Mapping[str, str],
         handler: Any) -> tuple[int, Any, bool]:
    """One playbook run under `handler` for the stop signals: (rc, summary, interrupted)."""
    from reforge.progress import Progress  # pylint: disable=import-outside-toplevel
    from reforge.runner import TaskCounts, run, state_dir  # pylint: disable=import-outside-toplevel
    from reforge.summary import Recorder, build_summary  # pylint: disable=import-outside-toplevel

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

    interrupt = handler if isinstance(handler, Interrupt) else None
    previous = _trap(handler)
    try:
        result = run(request, handler=handle, cancel=interrupt.poll if interrupt else (lambda: False),
                     environ=environ)
    finally:
        _untrap(previous)
        if progress is not None:
            progress.finish()
    interrupted = bool(interrupt and interrupt.requested)
    rc = CANCELED if interrupted else result.rc
    if rc == 0:
        counts.save(request.count_key(), recorder.tasks_started)
    summary = build_summary(recorder, command=request.command,
                            playbook=str(request.playbook.relative_to(request.project.root)),
                            status=result.status, rc=rc, elapsed=result.elapsed,
                            errors=result.errors, artifacts=str(result.artifacts))
    return rc, summary, interrupted


def _rollback_request(request: RunRequest) -> RunRequest:
    """The same hosts and variables; only undo what the interrupted run left pending."""
    extra = [item for item in request.cmdline if item not in ("--check", "--diff")]
    extra += ["-e", json.dumps({"miniforge_rollback_generation": 0})]
    return dataclasses.replace(request, command="rollback", playbook=request.project.playbook("rollback"),
                               cmdline=extra, tags=None, skip_tags=None, verbosity=0)


def _execute(request: RunRequest, scrubber: Scrubber, as_json: bool, environ: Mapping[str, str]) -> int:
    from reforge.summary import render_json, render_text  # pylint: disable=import-outside-toplevel

    rc, summary, interrupted = _run(request, scrubber, as_json, environ, Interrupt())
    rollback = None
    if interrupted and request.command in ROLLED_BACK_ON_INTERRUPT and "--check" not in request.cmdline:
        notice = sys.stderr if as_json else sys.stdout
        print(f"reforge {request.command}: interrupted; rolling back what it had changed", file=notice, flush=True)
        _, rollback, _ = _run(_rollback_request(request), scrubber, as_json, environ, Ignore(notice))
        summary.custom_stats["rolled back"] = _rollback_lines(rollback)
    if as_json:
        print(render_json(summary, scrubber))
    else:
        colour = sys.stdout.isatty() and not environ.get("NO_COLOR")
        print("\n".join(scrubber.text(line) for line in render_text(summary, colour=colour)))
    return rc


def _rollback_lines(rollback: Any) -> list[str]:
    """What the rollback did, or why it did not."""
    if rollback.rc != 0:
        failed = "; ".join(f"{failure.host}: {failure.msg}" for failure in rollback.failed_tasks)
        return [f"the rollback failed ({failed or 'see ' + rollback.artifacts}); "
                "run `reforge rollback` to finish it"]
    lines = rollback.custom_stats.get("rollback")
    return lines if isinstance(lines, list) and lines else ["nothing had been changed"]


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
    from reforge.runner import state_dir  # pylint: disable=import-outside-toplevel

    path = state_dir(environ)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create the state dir {path}: {error.strerror}") from None
