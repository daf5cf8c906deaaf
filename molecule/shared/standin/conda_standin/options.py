"""Output helpers (JSON, plans, confirmation) and the command-line options shared by commands.
"""

import argparse
import json
import os
import sys
from typing import Any

from . import common
from .common import CHANNEL, PLATFORM, fail
from .specs import version_key


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def confirm(args: argparse.Namespace, config: dict[str, Any]) -> None:
    if getattr(args, "yes", False) or config.get("always_yes") or os.environ.get("CONDA_ALWAYS_YES"):
        return
    if getattr(args, "json", False):
        return
    sys.stdout.write("\nProceed ([y]/n)? ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("", "y", "yes"):
        fail("CondaSystemExit", "Exiting.")


def print_plan(
    prefix: str, specs: list[str], unlink: list[dict[str, Any]], link: list[dict[str, Any]], removing: bool
) -> None:
    print("Channels:\n - conda-forge\nPlatform: " + PLATFORM)
    print("Collecting package metadata (repodata.json): done\nSolving environment: done\n")
    print("## Package Plan ##\n")
    print(f"  environment location: {prefix}\n")
    if specs:
        print("  removed specs:" if removing else "  added / updated specs:")
        for spec in specs:
            print(f"    - {spec}")
        print()
    old = {rec["name"]: rec for rec in unlink}
    new = {entry["name"]: entry for entry in link}
    sections = [
        ("The following NEW packages will be INSTALLED:", [n for n in new if n not in old]),
        ("The following packages will be REMOVED:", [n for n in old if n not in new]),
        (
            "The following packages will be UPDATED:",
            [n for n in new if n in old and version_key(new[n]["version"]) > version_key(old[n]["version"])],
        ),
        (
            "The following packages will be DOWNGRADED:",
            [n for n in new if n in old and version_key(new[n]["version"]) < version_key(old[n]["version"])],
        ),
        (
            "The following packages will be REINSTALLED:",
            [n for n in new if n in old and new[n]["version"] == old[n]["version"]],
        ),
    ]
    for title, names in sections:
        if not names:
            continue
        print(title + "\n")
        for name in sorted(names):
            entry = new.get(name) or old[name]
            print(f"  {name:<18} {CHANNEL}/{entry['platform']}::{entry['dist_name']}")
        print()


# --------------------------------------------------------------------------
# install / update / remove / create
# --------------------------------------------------------------------------


def _add_env_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--name")
    parser.add_argument("-p", "--prefix")


def _add_output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-y", "--yes", action="store_true")
    parser.add_argument("-d", "--dry-run", action="store_true")
    parser.add_argument("--debug", action="store_true")


def _add_channel_args(parser: argparse.ArgumentParser) -> None:
    # Accepted for compatibility and ignored: the embedded index is the only channel.
    parser.add_argument("-c", "--channel", action="append", default=[])
    parser.add_argument("--override-channels", action="store_true")
    parser.add_argument("--strict-channel-priority", action="store_true")
    parser.add_argument("--no-channel-priority", action="store_true")
    parser.add_argument("--use-local", action="store_true")
    parser.add_argument("--offline", action="store_true")
    parser.add_argument("--repodata-fn", action="append", default=[])
    parser.add_argument("--experimental-solver", "--solver")


def _add_install_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="*")
    parser.add_argument("--file", action="append", default=[])
    for flag in (
        "--freeze-installed",
        "--update-deps",
        "--no-update-deps",
        "--force-reinstall",
        "--no-deps",
        "--only-deps",
        "--no-pin",
        "--copy",
        "--clobber",
        "--update-specs",
        "--no-pyc",
        "--download-only",
        "--no-shortcuts",
        "--show-channel-urls",
    ):
        parser.add_argument(flag, action="store_true")
    parser.add_argument("--all", "--update-all", dest="all", action="store_true")
    # conda: exit early when every requested spec is already satisfied, without aggressive updates.
    parser.add_argument("-S", "--satisfied-skip-solve", action="store_true")


def _parser(prog: str, command: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"{prog} {command}", allow_abbrev=False)


def _read_spec_files(paths: list[str]) -> list[str]:
    specs: list[str] = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.split("#", 1)[0].strip()
                if line and not line.startswith("@"):
                    specs.append(line)
    return specs


def _set_json(args: argparse.Namespace) -> None:
    common.JSON_ERRORS = bool(getattr(args, "json", False))
