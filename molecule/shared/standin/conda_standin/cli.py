"""The installer hook and the dispatch from ``argv`` to a command.
"""

import os
import sys

from . import common
from .common import CONDA_VERSION, CondaError, MAMBA_VERSION, SHIPPED_PYTHON, SolveError, fail
from .prefix import read_records
from .index import SHIPPED_VERSIONS, _index, _root_python_version, index_package, index_versions
from .transaction import _write, link_package
from .history import INSTALLER_STAMP, history_dist, history_path
from .options import _parser, emit_json
from .commands import cmd_clean, cmd_config, cmd_create, cmd_env, cmd_info, cmd_install, cmd_list, cmd_remove, cmd_run
from .shell import cmd_activate_binary, cmd_init, cmd_shell_mamba, cmd_shell_posix, mamba_hook, posix_hook


def cmd_postinstall(prog: str, command: str, argv: list[str]) -> int:
    """Called once by the installer: base records, history, profile scripts, .condarc."""
    parser = _parser(prog, command)
    parser.add_argument("--cmd", default="constructor Miniforge3/ --output-dir build")
    args = parser.parse_args(argv)
    prefix = common.ROOT_PREFIX
    for directory in ("conda-meta", "pkgs", "envs", "etc/profile.d", "condabin"):
        os.makedirs(os.path.join(prefix, directory), exist_ok=True)
    _write(os.path.join(prefix, "etc", "profile.d", "conda.sh"), posix_hook(prefix, False))
    _write(
        os.path.join(prefix, "etc", "profile.d", "mamba.sh"),
        mamba_hook(prefix, os.path.join(prefix, "bin", "mamba"), "bash"),
    )
    # The payload's .condarc and history are extracted over whatever is there
    # (constructor: preconda holds an empty history, postconda the installer's
    # own), so -u and -f replace the user's request history and PREFIX/.condarc.
    _write(os.path.join(prefix, ".condarc"), "channels:\n  - conda-forge\n")
    records = read_records(prefix)
    wanted = ["python", "pip"] + (["setuptools"] if "setuptools" in _index() else [])
    wanted += ["ca-certificates", "openssl", "conda", "mamba"]
    linked: list[str] = []
    for name in wanted:
        version = _root_python_version() if name == "python" else SHIPPED_VERSIONS.get(name) or index_versions(name)[0]
        pkg = index_package(name, version, None)
        current = records.get(name)
        if current and current["version"] == pkg.version and current["build"] == pkg.build:
            record = current
        else:
            record = link_package(prefix, pkg, "")
        linked.append(history_dist(record))
    # The installer's entry is constructor's (preconda.py write_history), baked in at build time:
    # `# cmd: constructor …`, no `# conda version` line, and Miniforge's user_requested_specs.
    specs = [
        f"python={SHIPPED_PYTHON}",
        f"conda[version='>={CONDA_VERSION}']",
        f"mamba[version='>={MAMBA_VERSION}']",
        "pip",
    ]
    lines = [f"==> {INSTALLER_STAMP} <==", f"# cmd: {args.cmd}"] + [f"+{dist}" for dist in sorted(linked)]
    lines.append(f"# update specs: {specs!r}")
    with open(history_path(prefix), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return 0


# --------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------


COMMANDS = {
    "install": cmd_install,
    "update": cmd_install,
    "upgrade": cmd_install,
    "remove": cmd_remove,
    "uninstall": cmd_remove,
    "create": cmd_create,
    "list": cmd_list,
    "info": cmd_info,
    "config": cmd_config,
    "env": cmd_env,
    "init": cmd_init,
    "clean": cmd_clean,
    "run": cmd_run,
    "activate": cmd_activate_binary,
    "deactivate": cmd_activate_binary,
    "shell.posix": cmd_shell_posix,
    "shell.bash": cmd_shell_posix,
    "shell.zsh": cmd_shell_posix,
    "_standin-postinstall": cmd_postinstall,
}


def usage(prog: str) -> str:
    names = sorted(name for name in COMMANDS if not name.startswith(("_", "shell.")))
    if prog == "mamba":
        names.append("shell")
    return (
        f"usage: {prog} COMMAND [options]\n\nStand-in {prog} (reforge test resource). Commands: "
        + ", ".join(sorted(names))
        + "\n"
    )


def dispatch(prog: str, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(usage(prog))
        return 0
    if argv[0] in ("-V", "--version") or (prog == "mamba" and argv[0] == "version"):
        print(MAMBA_VERSION if prog == "mamba" else f"conda {CONDA_VERSION}")
        return 0
    command, rest = argv[0], argv[1:]
    if prog == "mamba" and command == "shell":
        return cmd_shell_mamba(prog, command, rest)
    handler = COMMANDS.get(command)
    if handler is None:
        fail(
            "CommandNotFoundError",
            f"'{prog} {command}' is not implemented by the stand-in " "(see molecule/shared/standin/README.md)",
        )
    return handler(prog, command, rest)


def main(argv: list[str]) -> int:
    common.PROG = "mamba" if os.path.basename(argv[0]).startswith("mamba") else "conda"
    try:
        return dispatch(common.PROG, argv[1:])
    except SolveError as error:
        if common.PROG == "conda" and common.JSON_ERRORS:
            emit_json(error.conda_json())
        else:
            sys.stderr.write(error.render() + "\n")
        return 1
    except BrokenPipeError:
        # The reader went away (e.g. '| head'): say nothing more, like conda.
        sys.stderr.close()
        return 1
    except CondaError as error:
        if common.JSON_ERRORS:
            payload = {
                "caused_by": "None",
                "error": f"{error.name}: {error.message}",
                "exception_name": error.name,
                "exception_type": f"<class 'conda.exceptions.{error.name}'>",
                "message": error.message,
            }
            payload.update(error.extra)
            emit_json(payload)
        else:
            sys.stderr.write(f"\n{error.name}: {error.message}\n\n")
        return 1
