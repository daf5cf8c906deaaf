"""The environment commands: install/update/remove, create, list, info, config, env, clean, run.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from typing import Any

from . import common
from .common import CHANNEL, CHANNEL_ALIAS, CONDA_VERSION, MAMBA_VERSION, PLATFORM, fail
from .specs import Spec, parse_spec
from .prefix import is_env, list_entry, list_packages, read_records, record_python_version
from .index import Package, _index, _root_python_version, index_package
from .config import all_envs, condarc_files, env_name, home, load_config, parse_yaml_subset, register_env, target_prefix
from .solver import Solver
from .transaction import link_package, unlink_record
from .history import append_history, history_dist, history_path, requested_specs
from .options import (
    _add_channel_args,
    _add_env_args,
    _add_install_args,
    _add_output_args,
    _parser,
    _read_spec_files,
    _set_json,
    confirm,
    emit_json,
    print_plan,
)


def run_transaction(
    prefix: str,
    args: argparse.Namespace,
    config: dict[str, Any],
    *,
    link_plan: dict[str, str],
    unlink_names: list[str],
    update_specs: list[Spec],
    remove_specs: list[Spec],
    force: set[str],
    creating: bool,
    updating: bool = False,
) -> int:
    records = read_records(prefix)
    python_version = link_plan.get("python") or record_python_version(records)
    requested = {spec.name: spec for spec in update_specs}
    unlink = [records[name] for name in unlink_names if name in records]
    link: list[Package] = []
    for name, version in link_plan.items():
        current = records.get(name)
        if current and current["version"] == version and name not in force:
            try:
                # Same version, new build: a Python change rebuilds the py-versioned packages.
                if index_package(name, version, python_version).build == current["build"]:
                    continue
            except KeyError:
                continue
        pkg = index_package(name, version, python_version)
        if current and current not in unlink:
            unlink.append(current)
        link.append(pkg)
    order = {"python": 0, "pip": 1, "setuptools": 2}
    link.sort(key=lambda pkg: (order.get(pkg.name, 3), pkg.name))
    if common.PROG == "mamba":
        # mamba 2's --json: libmamba PackageInfo entries (no dist_name) and its own message.
        link_entries = [package_info(write_record_preview(pkg), pkg.depends) for pkg in link]
        unlink_entries = [package_info(record, record.get("depends", [])) for record in unlink]
        nothing = "All requested packages already installed"
    else:
        link_entries = [list_entry(write_record_preview(pkg)) for pkg in link]
        unlink_entries = [list_entry(record) for record in unlink]
        nothing = "All requested packages already installed."
    spec_strings = [spec.canonical() for spec in (remove_specs or update_specs)]
    if not link and not unlink and not creating:
        if args.json:
            emit_json({"message": nothing, "success": True})
        else:
            print("\n# All requested packages already installed.\n")
        return 0
    actions = {"PREFIX": prefix, "LINK": link_entries, "UNLINK": unlink_entries, "FETCH": link_entries}
    if args.dry_run:
        if args.json:
            emit_json({"actions": actions, "dry_run": True, "prefix": prefix, "success": True})
        else:
            print_plan(prefix, spec_strings, unlink_entries, link_entries, bool(remove_specs))
            print("DryRunExit: Dry run. Exiting.\n")
        return 0
    if not args.json and not args.quiet:
        print_plan(prefix, spec_strings, unlink_entries, link_entries, bool(remove_specs))
    confirm(args, config)
    os.makedirs(os.path.join(prefix, "conda-meta"), exist_ok=True)
    for record in unlink:
        unlink_record(prefix, record)
    for pkg in link:
        spec = requested.get(pkg.name)
        link_package(prefix, pkg, spec.canonical() if spec else "")
    if creating and not os.path.isfile(history_path(prefix)):
        open(history_path(prefix), "a", encoding="utf-8").close()
    append_history(
        prefix,
        " ".join(sys.argv),
        [history_dist(r) for r in unlink],
        [history_dist(write_record_preview(pkg)) for pkg in link],
        [spec.canonical() for spec in update_specs],
        [spec.canonical() for spec in remove_specs],
        updating=updating,
    )
    if prefix != common.ROOT_PREFIX:
        register_env(prefix, True)
    if args.json:
        emit_json({"actions": actions, "dry_run": False, "prefix": prefix, "success": True})
    elif not args.quiet:
        print("Preparing transaction: done\nVerifying transaction: done\nExecuting transaction: done")
    return 0


def package_info(record: dict[str, Any], depends: Any) -> dict[str, Any]:
    """One entry of mamba 2's --json actions: libmamba's PackageInfo, not conda's list record."""
    dist = f"{record['name']}-{record['version']}-{record['build']}"
    subdir = record.get("subdir", "noarch")
    return {
        "build": record["build"],
        "build_number": record.get("build_number", 0),
        "build_string": record["build"],
        "channel": f"{CHANNEL_ALIAS}/{CHANNEL}/{subdir}",
        "constrains": [],
        "depends": list(depends),
        "fn": f"{dist}.conda",
        "license": record.get("license", ""),
        "md5": "",
        "name": record["name"],
        "sha256": "",
        "size": 0,
        "subdir": subdir,
        "timestamp": 0,
        "track_features": "",
        "url": f"{CHANNEL_ALIAS}/{CHANNEL}/{subdir}/{dist}.conda",
        "version": record["version"],
    }


def aggressive_updates(config: dict[str, Any], installed: dict[str, str], prefix: str) -> set[str]:
    """What conda adds as UPDATE jobs to every install/update: aggressive_update_packages that are
    installed and, in the root prefix, conda itself (auto_update_conda). The environment
    variables win over .condarc, as in conda; an empty CONDA_AGGRESSIVE_UPDATE_PACKAGES is none."""
    env = os.environ.get("CONDA_AGGRESSIVE_UPDATE_PACKAGES")
    if env is not None:
        names = [part.strip() for part in env.split(",") if part.strip()]
    else:
        names = [str(name) for name in config.get("aggressive_update_packages", AGGRESSIVE_DEFAULT)]
    chosen = {name for name in names if name in installed}
    auto = os.environ.get("CONDA_AUTO_UPDATE_CONDA")
    if auto is not None:
        auto_update = auto.strip().lower() in ("true", "yes", "on", "1", "y")
    else:
        auto_update = config.get("auto_update_conda", True) is not False
    if auto_update and "conda" in installed and os.path.normpath(prefix) == os.path.normpath(common.ROOT_PREFIX):
        chosen.add("conda")
    return {name for name in chosen if name in _index()}


AGGRESSIVE_DEFAULT = ("ca-certificates", "certifi", "openssl")


def write_record_preview(pkg: Package) -> dict[str, Any]:
    return {
        "name": pkg.name,
        "version": pkg.version,
        "build": pkg.build,
        "subdir": pkg.subdir,
        "schannel": CHANNEL,
        "build_number": 0,
    }


def cmd_install(prog: str, command: str, argv: list[str]) -> int:
    parser = _parser(prog, command)
    _add_env_args(parser)
    _add_output_args(parser)
    _add_channel_args(parser)
    _add_install_args(parser)
    args = parser.parse_args(argv)
    _set_json(args)
    config = load_config()
    prefix = target_prefix(args, config)
    specs = [parse_spec(text) for text in args.specs + _read_spec_files(args.file)]
    records = read_records(prefix)
    installed = {name: record["version"] for name, record in records.items()}
    updating = command in ("update", "upgrade")
    if updating and args.all:
        specs = [Spec(name) for name in installed if name in _index()]
        history_specs: list[Spec] = []
    else:
        history_specs = specs
    if not specs:
        fail("CondaValueError", "no package names supplied\n" f"# Example: {prog} {command} -n myenv scipy")
    if updating:
        missing = [spec.name for spec in specs if spec.name not in installed]
        if missing:
            fail(
                "PackageNotInstalledError",
                f"Package is not installed in prefix.\n  prefix: {prefix}\n" f"  package name: {missing[0]}",
            )
    if args.satisfied_skip_solve and all(
        spec.name in installed and spec.matches(installed[spec.name]) for spec in specs
    ):
        specs, history_specs = [], []
    update: set[str] = set()
    if common.PROG == "conda" and specs:
        # conda-libmamba-solver: a requested installed package is an UPDATE job, and
        # aggressive updates and auto_update_conda come along; mamba 2 has none of these.
        update = {spec.name for spec in specs if spec.name in installed} | aggressive_updates(config, installed, prefix)
    requested = {spec.name for spec in specs}
    if updating and args.all:
        # update --all requests nothing by name: the installed Python's minor stays pinned.
        requested.discard("python")
    solver = Solver(installed, "update" if updating else "install", requested, frozenset(update))
    final = solver.solve(specs) if specs else dict(installed)
    plan = {name: version for name, version in final.items() if name in _index()}
    force = {spec.name for spec in specs} if args.force_reinstall else set()
    return run_transaction(
        prefix,
        args,
        config,
        link_plan=plan,
        unlink_names=[],
        update_specs=history_specs,
        remove_specs=[],
        force=force,
        creating=False,
        updating=updating,
    )


def cmd_remove(prog: str, command: str, argv: list[str]) -> int:
    parser = _parser(prog, command)
    _add_env_args(parser)
    _add_output_args(parser)
    _add_channel_args(parser)
    _add_install_args(parser)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--keep-env", action="store_true")
    parser.add_argument("--prune-deps", "--prune", dest="prune_deps", action="store_true", default=None)
    parser.add_argument("--no-prune-deps", dest="prune_deps", action="store_false")
    args = parser.parse_args(argv)
    _set_json(args)
    config = load_config()
    if args.all:
        return remove_env(prog, args, config)
    prefix = target_prefix(args, config)
    specs = [parse_spec(text) for text in args.specs]
    if not specs:
        fail("CondaValueError", "no package names supplied,\n" f'       try "{prog} remove -h" for more details')
    records = read_records(prefix)
    missing = [
        spec.canonical()
        for spec in specs
        if spec.name not in records or not spec.matches(records[spec.name]["version"])
    ]
    if missing:
        fail(
            "PackagesNotFoundError",
            "The following packages are missing from the target environment:\n"
            + "".join(f"  - {name}\n" for name in missing),
            packages=missing,
        )
    if prefix == common.ROOT_PREFIX:
        for spec in specs:
            if spec.name in ("conda", "mamba", "python"):
                fail(
                    "RemoveError",
                    f"'{spec.name}' is a dependency of conda and cannot be removed from\n"
                    "conda's operating environment.",
                )
    doomed = {spec.name for spec in specs}
    grew = True
    while grew:
        grew = False
        for name, record in records.items():
            if name in doomed:
                continue
            if any(parse_spec(dep).name in doomed for dep in record.get("depends", [])):
                doomed.add(name)
                grew = True
    if common.PROG == "mamba" and args.prune_deps is not False:
        doomed |= orphans(records, doomed, {parse_spec(spec).name for spec in requested_specs(prefix)})
    return run_transaction(
        prefix,
        args,
        config,
        link_plan={},
        unlink_names=sorted(doomed),
        update_specs=[],
        remove_specs=specs,
        force=set(),
        creating=False,
    )


def orphans(records: dict[str, Any], doomed: set[str], requested: set[str]) -> set[str]:
    """What mamba 2's remove prunes (libsolv SOLVER_CLEANDEPS): dependencies of the removed
    packages, and theirs, that the user did not request and no remaining package needs."""

    def deps(name: str) -> set[str]:
        return {parse_spec(dep).name for dep in records[name].get("depends", [])} & set(records)

    candidates: set[str] = set()
    stack = [dep for name in doomed for dep in deps(name)]
    while stack:
        name = stack.pop()
        if name in candidates or name in doomed or name in requested:
            continue
        candidates.add(name)
        stack.extend(deps(name))
    grew = True
    while grew:
        grew = False
        for name in sorted(candidates):
            if any(name in deps(other) for other in set(records) - doomed - candidates):
                candidates.discard(name)
                grew = True
    return candidates


def remove_env(prog: str, args: argparse.Namespace, config: dict[str, Any]) -> int:
    if not args.name and not args.prefix:
        fail("CondaValueError", "no environment given: use -n NAME or -p PREFIX")
    prefix = target_prefix(args, config, must_exist=False)
    if os.path.normpath(prefix) == os.path.normpath(common.ROOT_PREFIX):
        fail("CondaEnvironmentError", "cannot remove root environment, add -n NAME or -p PREFIX option")
    if os.path.normpath(prefix) == os.path.normpath(os.environ.get("CONDA_PREFIX", "//")):
        fail("CondaEnvironmentError", "Cannot remove current environment. Deactivate and run conda remove again")
    if not is_env(prefix):
        fail("EnvironmentLocationNotFound", f"Not a conda environment: {prefix}", location=prefix)
    unlink = [list_entry(record) for record in read_records(prefix).values()]
    if args.dry_run:
        if args.json:
            emit_json(
                {
                    "actions": {"PREFIX": prefix, "UNLINK": unlink, "LINK": [], "FETCH": []},
                    "dry_run": True,
                    "prefix": prefix,
                    "success": True,
                }
            )
        else:
            print(f"Would remove environment {prefix}")
        return 0
    if not args.json and not args.quiet:
        print(f"\nRemove all packages in environment {prefix}:\n")
    confirm(args, config)
    shutil.rmtree(prefix)
    register_env(prefix, False)
    if args.json:
        emit_json(
            {
                "actions": {"PREFIX": prefix, "UNLINK": unlink, "LINK": [], "FETCH": []},
                "dry_run": False,
                "prefix": prefix,
                "success": True,
            }
        )
    elif not args.quiet:
        print(
            "Everything found within the environment, including any conda environment configurations\n"
            "and any non-conda files, will be deleted.\n"
        )
    return 0


def env_is_empty(prefix: str) -> bool:
    if not os.path.isdir(prefix):
        return True
    entries = set(os.listdir(prefix))
    if entries - {"conda-meta"}:
        return False
    return not read_records(prefix)


def cmd_create(prog: str, command: str, argv: list[str]) -> int:
    parser = _parser(prog, command)
    _add_env_args(parser)
    _add_output_args(parser)
    _add_channel_args(parser)
    _add_install_args(parser)
    parser.add_argument("--clone")
    args = parser.parse_args(argv)
    _set_json(args)
    config = load_config()
    if not args.name and not args.prefix:
        fail("CondaValueError", "one of the arguments -n/--name -p/--prefix is required")
    prefix = target_prefix(args, config, must_exist=False, creating=True)
    if os.path.exists(prefix) and not env_is_empty(prefix):
        if common.PROG == "mamba" and is_env(prefix) and args.yes and not args.dry_run:
            # mamba 2 asks "Found conda-prefix at ... Overwrite?"; -y answers
            # yes: the environment is deleted and created again (api/create.cpp).
            shutil.rmtree(prefix)
        elif not (common.PROG == "mamba" and is_env(prefix) and args.yes):
            fail("CondaValueError", f"prefix already exists: {prefix}")
    specs = [parse_spec(text) for text in args.specs + _read_spec_files(args.file)]
    return create_env(prefix, specs, args, config)


def create_env(prefix: str, specs: list[Spec], args: argparse.Namespace, config: dict[str, Any]) -> int:
    plan: dict[str, str] = {}
    if specs:
        plan = Solver({}, "install", {spec.name for spec in specs}).solve(specs)
    return run_transaction(
        prefix,
        args,
        config,
        link_plan=plan,
        unlink_names=[],
        update_specs=specs,
        remove_specs=[],
        force=set(),
        creating=True,
    )


# --------------------------------------------------------------------------
# list / info / config / env
# --------------------------------------------------------------------------


def cmd_list(prog: str, command: str, argv: list[str]) -> int:
    parser = _parser(prog, command)
    _add_env_args(parser)
    parser.add_argument("regex", nargs="?")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--export", "-e", action="store_true")
    parser.add_argument("--explicit", action="store_true")
    parser.add_argument("-f", "--full-name", action="store_true")
    parser.add_argument("--show-channel-urls", action="store_true")
    parser.add_argument("-c", "--canonical", action="store_true")
    parser.add_argument("--no-pip", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    _set_json(args)
    config = load_config()
    prefix = target_prefix(args, config)
    entries = list_packages(prefix)
    if args.no_pip:
        entries = [entry for entry in entries if entry["channel"] != "pypi"]
    if args.regex:
        pattern = re.compile(("^%s$" if args.full_name else "%s") % args.regex)
        entries = [entry for entry in entries if pattern.search(entry["name"])]
    if args.json:
        emit_json(entries)
    elif args.export:
        print(
            f"# This file may be used to create an environment using:\n# $ conda create --name <env> "
            f"--file <this file>\n# platform: {PLATFORM}"
        )
        for entry in entries:
            print(f"{entry['name']}={entry['version']}={entry['build_string']}")
    elif args.canonical:
        for entry in entries:
            print(f"{entry['channel']}/{entry['platform']}::{entry['dist_name']}")
    else:
        print(f"# packages in environment at {prefix}:\n#")
        print(f"# {'Name':<23} {'Version':<15} {'Build':>15}  Channel")
        for entry in entries:
            print(f"{entry['name']:<25} {entry['version']:<15} {entry['build_string']:>15}  {entry['channel']}")
    return 0


def channel_urls(channels: list[Any]) -> list[str]:
    urls: list[str] = []
    for channel in channels:
        base = str(channel) if "://" in str(channel) else f"{CHANNEL_ALIAS}/{channel}"
        urls += [f"{base}/{PLATFORM}", f"{base}/noarch"]
    return urls


def cmd_info(prog: str, command: str, argv: list[str]) -> int:
    parser = _parser(prog, command)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--base", action="store_true")
    parser.add_argument("-e", "--envs", action="store_true")
    parser.add_argument("-a", "--all", action="store_true")
    parser.add_argument("-s", "--system", action="store_true")
    parser.add_argument("--unsafe-channels", action="store_true")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="store_true")
    _add_env_args(parser)
    args = parser.parse_args(argv)
    _set_json(args)
    config = load_config()
    active = os.environ.get("CONDA_PREFIX") or None
    envs = all_envs(config)
    if args.base:
        if args.json:
            emit_json({"root_prefix": common.ROOT_PREFIX})
        else:
            print(common.ROOT_PREFIX)
        return 0
    if args.envs and not args.json:
        print_env_list(envs, config)
        return 0
    if prog == "mamba":
        data: dict[str, Any] = {
            "base environment": common.ROOT_PREFIX,
            "channels": channel_urls(config["channels"]),
            "env location": active or "-",
            "envs directories": config["envs_dirs"],
            "environment": (env_name(active, config) + " (active)") if active else "None",
            "libmamba version": MAMBA_VERSION,
            "mamba version": MAMBA_VERSION,
            "package cache": config["pkgs_dirs"],
            "platform": PLATFORM,
            "populated config files": condarc_files(),
            "user config files": [os.path.join(home(), ".mambarc")],
            "virtual packages": [
                "__unix=0=0",
                f"__linux={platform.release().split('-')[0]}=0",
                f"__glibc={platform.libc_ver()[1] or '0'}=0",
                f"__archspec=1={platform.machine()}",
            ],
        }
        if args.envs:
            data["envs"] = envs
    else:
        data = {
            "active_prefix": active,
            "active_prefix_name": env_name(active, config) if active else None,
            "av_data_dir": os.path.join(common.ROOT_PREFIX, "etc", "conda"),
            "channels": channel_urls(config["channels"]),
            "conda_build_version": "not installed",
            "conda_env_version": CONDA_VERSION,
            "conda_location": os.path.join(common.ROOT_PREFIX, "lib", "conda"),
            "conda_prefix": common.ROOT_PREFIX,
            "conda_shlvl": int(os.environ.get("CONDA_SHLVL", "-1") or -1),
            "conda_version": CONDA_VERSION,
            "config_files": condarc_files(),
            "default_prefix": common.ROOT_PREFIX,
            "envs": envs,
            # conda 26 adds envs_details (one entry per environment).
            "envs_details": {env: {"name": env_name(env, config), "base": env == common.ROOT_PREFIX} for env in envs},
            "envs_dirs": config["envs_dirs"],
            "pkgs_dirs": config["pkgs_dirs"],
            "platform": PLATFORM,
            "python_version": _root_python_version(),
            "rc_path": os.path.join(home(), ".condarc"),
            "root_prefix": common.ROOT_PREFIX,
            "root_writable": os.access(common.ROOT_PREFIX, os.W_OK),
            "solver": {"default": True, "name": "libmamba", "user_agent": "solver/libmamba"},
            "sys.executable": sys.executable,
            "sys.prefix": common.ROOT_PREFIX,
            "sys.version": sys.version,
            "user_rc_path": os.path.join(home(), ".condarc"),
        }
    if args.json:
        emit_json(data)
    else:
        for key, value in data.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            print(f"{key:>26} : {shown}")
    return 0


def print_env_list(envs: list[str], config: dict[str, Any]) -> None:
    active = os.environ.get("CONDA_PREFIX", "")
    print("# conda environments:\n#")
    for prefix in envs:
        name = env_name(prefix, config)
        label = "" if name == prefix else name
        print(f"{label:<25}{'*' if prefix == active else ' '}  {prefix}")
    print()


def cmd_config(prog: str, command: str, argv: list[str]) -> int:
    parser = _parser(prog, command)
    parser.add_argument("--show", nargs="*")
    parser.add_argument("--show-sources", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--file")
    parser.add_argument("--get", nargs="*")
    for flag in ("--system", "--env"):
        parser.add_argument(flag, action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    _set_json(args)
    config = load_config()
    if args.show_sources:
        for path in condarc_files():
            with open(path, encoding="utf-8") as handle:
                print(f"==> {path} <==\n{handle.read().rstrip()}\n")
        return 0
    keys = args.show if args.show is not None else args.get
    if keys is None:
        fail("CondaValueError", "the stand-in implements only 'config --show', '--get' and '--show-sources'")
    if keys:
        unknown = [key for key in keys if key not in config]
        if unknown and args.show is not None:
            fail("ArgumentError", "Invalid configuration parameters: " + ", ".join(repr(k) for k in unknown))
        shown = {key: config[key] for key in keys if key in config}
    else:
        shown = dict(sorted(config.items()))
    if args.json:
        emit_json(shown)
        return 0
    for key, value in shown.items():
        if isinstance(value, list):
            print(f"{key}:" + ("" if value else " []"))
            for item in value:
                print(f"  - {item}")
        else:
            print(f"{key}: {json.dumps(value) if value is None or isinstance(value, bool) else value}")
    return 0


def cmd_env(prog: str, command: str, argv: list[str]) -> int:
    if not argv:
        fail("ArgumentError", f"usage: {prog} env {{create,export,list,remove,update}} ...")
    sub, rest = argv[0], argv[1:]
    if sub == "list":
        parser = _parser(prog, "env list")
        parser.add_argument("--json", action="store_true")
        parser.add_argument("-q", "--quiet", action="store_true")
        parser.add_argument("-v", "--verbose", action="count", default=0)
        args = parser.parse_args(rest)
        _set_json(args)
        config = load_config()
        if args.json:
            emit_json({"envs": all_envs(config)})
        else:
            print_env_list(all_envs(config), config)
        return 0
    if sub == "remove":
        parser = _parser(prog, "env remove")
        _add_env_args(parser)
        _add_output_args(parser)
        args = parser.parse_args(rest)
        _set_json(args)
        return remove_env(prog, args, load_config())
    if sub == "export":
        return env_export(prog, rest)
    if sub in ("create", "update"):
        return env_from_file(prog, sub, rest)
    fail("CommandNotFoundError", f"'{prog} env {sub}' is not implemented by the stand-in")


def env_export(prog: str, argv: list[str]) -> int:
    parser = _parser(prog, "env export")
    _add_env_args(parser)
    parser.add_argument("--from-history", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-builds", action="store_true")
    parser.add_argument("--ignore-channels", action="store_true")
    parser.add_argument("-f", "--file")
    parser.add_argument("-c", "--channel", action="append", default=[])
    parser.add_argument("--override-channels", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    _set_json(args)
    config = load_config()
    prefix = target_prefix(args, config)
    dependencies: list[Any]
    if args.from_history:
        # conda >= 25.7 (conda export): specs in conda_env_form(), and with no requested spec
        # the full explicit package list, build strings included.
        dependencies = [env_form(spec) for spec in requested_specs(prefix)] or [
            f"{e['name']}={e['version']}={e['build_string']}" for e in list_packages(prefix) if e["channel"] != "pypi"
        ]
    else:
        entries = list_packages(prefix)
        dependencies = [
            f"{e['name']}={e['version']}" + ("" if args.no_builds else f"={e['build_string']}")
            for e in entries
            if e["channel"] != "pypi"
        ]
        pip = [f"{e['name']}=={e['version']}" for e in entries if e["channel"] == "pypi"]
        if pip:
            dependencies.append({"pip": pip})
    channels = list(dict.fromkeys([*args.channel, *map(str, config["channels"])]))
    name = env_name(prefix, config)
    data = {
        "name": os.path.basename(name) if name == prefix else name,
        "channels": channels,
        "dependencies": dependencies,
        "prefix": prefix,
    }
    if args.json:
        text = json.dumps(data, indent=2) + "\n"
    else:
        lines = [f"name: {data['name']}", "channels:"] + [f"  - {c}" for c in channels] + ["dependencies:"]
        for dep in dependencies:
            if isinstance(dep, dict):
                lines.append("  - pip:")
                lines += [f"    - {item}" for item in dep["pip"]]
            else:
                lines.append(f"  - {dep}")
        lines.append(f"prefix: {prefix}")
        text = "\n".join(lines) + "\n"
    if args.file:
        with open(args.file, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


def env_form(spec: str) -> str:
    """conda's MatchSpec.conda_env_form(): no channel, the first '==' becomes '=' (brackets stay)."""
    text = spec.split("::", 1)[1] if "::" in spec.split("[", 1)[0] else spec
    head, bracket, rest = text.partition("[")
    return head.replace("==", "=", 1) + bracket + rest


def env_from_file(prog: str, sub: str, argv: list[str]) -> int:
    parser = _parser(prog, f"env {sub}")
    _add_env_args(parser)
    _add_output_args(parser)
    parser.add_argument("-f", "--file", default="environment.yml")
    parser.add_argument("--prune", action="store_true")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("remote_definition", nargs="?")
    args = parser.parse_args(argv)
    _set_json(args)
    config = load_config()
    with open(args.file, encoding="utf-8") as handle:
        text = handle.read()
    spec_file = json.loads(text) if text.lstrip().startswith("{") else parse_yaml_subset(text, args.file)
    if not args.name and not args.prefix:
        if spec_file.get("prefix") and not spec_file.get("name"):
            args.prefix = spec_file["prefix"]
        else:
            args.name = spec_file.get("name")
    if not args.name and not args.prefix:
        fail("SpecNotFound", f"Environment with requirements.txt file needs a name: {args.file}")
    conda_specs = [parse_spec(str(dep)) for dep in spec_file.get("dependencies", []) if not isinstance(dep, dict)]
    pip_specs = [
        str(item) for dep in spec_file.get("dependencies", []) if isinstance(dep, dict) for item in dep.get("pip", [])
    ]
    if sub == "create":
        prefix = target_prefix(args, config, must_exist=False, creating=True)
        if os.path.exists(prefix) and not env_is_empty(prefix):
            if not (args.force or args.yes):
                fail("CondaValueError", f"prefix already exists: {prefix}")
            shutil.rmtree(prefix)
        args.yes = True
        status = create_env(prefix, conda_specs, args, config)
    else:
        prefix = target_prefix(args, config, must_exist=False, creating=True)
        if not is_env(prefix):
            args.yes = True
            status = create_env(prefix, conda_specs, args, config)
        else:
            installed = {n: r["version"] for n, r in read_records(prefix).items()}
            plan = Solver(installed, "install", {s.name for s in conda_specs}).solve(conda_specs)
            args.yes = True
            status = run_transaction(
                prefix,
                args,
                config,
                link_plan=plan,
                unlink_names=[],
                update_specs=conda_specs,
                remove_specs=[],
                force=set(),
                creating=False,
            )
    if status == 0 and pip_specs and not args.dry_run:
        result = subprocess.run(
            [os.path.join(prefix, "bin", "python"), "-m", "pip", "install", *pip_specs], check=False
        )
        status = result.returncode
    return status


def cmd_clean(prog: str, command: str, argv: list[str]) -> int:
    parser = _parser(prog, command)
    _add_output_args(parser)
    for flag in ("-a", "-i", "-p", "-t", "-f", "-c", "-l"):
        parser.add_argument(flag, action="store_true")
    for flag in (
        "--all",
        "--index-cache",
        "--packages",
        "--tarballs",
        "--force-pkgs-dirs",
        "--tempfiles",
        "--logfiles",
        "--locks",
    ):
        parser.add_argument(flag, action="store_true")
    args = parser.parse_args(argv)
    _set_json(args)
    if args.json:
        emit_json(
            {"success": True, "tarballs": {"files": [], "total_size": 0}, "packages": {"files": [], "total_size": 0}}
        )
    else:
        print("There are no unused tarball(s) to remove.\nThere are no unused package(s) to remove.")
    return 0


def cmd_run(prog: str, command: str, argv: list[str]) -> int:
    options: dict[str, str] = {}
    rest = list(argv)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag in ("-n", "--name", "-p", "--prefix", "--cwd"):
            if not rest:
                fail("ArgumentError", f"{flag} needs a value")
            options[flag.lstrip("-")[0] if flag in ("-n", "--name", "-p", "--prefix") else "cwd"] = rest.pop(0)
        elif flag in (
            "--no-capture-output",
            "--live-stream",
            "--no-banner",
            "-v",
            "--verbose",
            "--dev",
            "--debug-wrapper-scripts",
        ):
            continue
        elif flag == "--":
            break
        else:
            fail("ArgumentError", f"unrecognized argument: {flag}")
    if not rest:
        fail("ArgumentError", "No command given to run")
    config = load_config()
    args = argparse.Namespace(name=options.get("n"), prefix=options.get("p"))
    prefix = target_prefix(args, config)
    env = dict(os.environ)
    env["PATH"] = os.path.join(prefix, "bin") + os.pathsep + env.get("PATH", "")
    env.update(CONDA_PREFIX=prefix, CONDA_DEFAULT_ENV=env_name(prefix, config), CONDA_SHLVL="1")
    try:
        return subprocess.run(rest, env=env, cwd=options.get("cwd"), check=False).returncode
    except FileNotFoundError:
        fail("CondaError", f"command not found in {prefix}: {rest[0]}")
