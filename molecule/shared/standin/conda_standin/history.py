"""``conda-meta/history``: written as conda or mamba 2 writes it, read as conda replays it.
"""

import ast
import os
import re
from typing import Any

from . import common
from .common import CHANNEL, CONDA_VERSION, fail
from .specs import parse_spec
from .prefix import read_records
from .transaction import now_stamp


def history_path(prefix: str) -> str:
    return os.path.join(prefix, "conda-meta", "history")


# The installer's own history entry is baked into its payload at build time.
INSTALLER_STAMP = "2024-12-03 09:00:00"
# mamba 2 writes this placeholder where conda writes its own version.
MAMBA_HISTORY_CONDA_VERSION = "3.8.0"


def mamba_spec(spec: str) -> str:
    """A spec as mamba 2 prints it: bracket values in double quotes."""
    head, bracket, rest = spec.partition("[")
    return head + bracket + rest.replace("'", '"')


def std_quoted(text: str) -> str:
    """C++ std::quoted: double quotes, with \\ and \" escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def spec_line(action: str, specs: list[str], prog: str) -> str:
    if prog == "mamba":
        return f"# {action} specs: [" + ", ".join(std_quoted(mamba_spec(spec)) for spec in specs) + "]"
    return f"# {action} specs: {specs!r}"


def append_history(
    prefix: str,
    cmd: str,
    unlinked: list[str],
    linked: list[str],
    update_specs: list[str],
    remove_specs: list[str],
    *,
    updating: bool = False,
    stamp: str = "",
) -> None:
    """One request, in the form of the program that ran it.

    conda: remove specs, then update specs, single-quoted Python reprs.
    mamba 2: update specs, then remove specs, std::quoted lists, and an
    update request puts its specs on both lines (libmamba transaction.cpp).
    """
    prog = common.PROG
    version = MAMBA_HISTORY_CONDA_VERSION if prog == "mamba" else CONDA_VERSION
    lines = [f"==> {stamp or now_stamp()} <==", f"# cmd: {cmd}", f"# conda version: {version}"]
    lines += [f"-{dist}" for dist in sorted(unlinked)] + [f"+{dist}" for dist in sorted(linked)]
    if prog == "mamba":
        if updating and update_specs:
            remove_specs = remove_specs + update_specs
        if update_specs:
            lines.append(spec_line("update", update_specs, prog))
        if remove_specs:
            lines.append(spec_line("remove", remove_specs, prog))
    else:
        if remove_specs:
            lines.append(spec_line("remove", remove_specs, prog))
        if update_specs:
            lines.append(spec_line("update", update_specs, prog))
    os.makedirs(os.path.join(prefix, "conda-meta"), exist_ok=True)
    with open(history_path(prefix), "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def history_dist(record: dict[str, Any]) -> str:
    return (
        f"{record.get('schannel', CHANNEL)}/{record.get('subdir', 'noarch')}::"
        f"{record['name']}-{record['version']}-{record['build']}"
    )


def conda_rejects(spec: str) -> bool:
    """With STANDIN_CONDA_CANNOT_PARSE=1, conda fails on mamba's double-quoted bracket specs.

    Real conda fails on some specs that mamba 2 writes (conda/conda#15123:
    'sam-2[version="=1.0",build="cuda12*"]'); which ones depends on conda's
    MatchSpec parser, so a test chooses with this switch.
    """
    return common.PROG == "conda" and os.environ.get("STANDIN_CONDA_CANNOT_PARSE") == "1" and '="' in spec


def history_requests(prefix: str) -> list[dict[str, list[str]]]:
    """The spec lines of each ==> ... <== entry, like conda's History.get_user_requests."""
    requests: list[dict[str, list[str]]] = []
    if not os.path.isfile(history_path(prefix)):
        return requests
    with open(history_path(prefix), encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if re.match(r"^==>\s*(.+?)\s*<==", line):
                requests.append({"update": [], "remove": [], "neutered": []})
                continue
            match = re.match(r"^#\s*(\w+)\s+specs:\s*(.*)$", line)
            if not match or not requests:
                continue
            action, payload = match.group(1), match.group(2).strip()
            try:
                items = ast.literal_eval(payload) if payload.startswith("[") else payload.split(",")
            except (ValueError, SyntaxError):
                fail("CondaHistoryError", f"Error in {history_path(prefix)}: cannot read '{line}'")
            kind = {"install": "update", "create": "update", "uninstall": "remove"}.get(action, action)
            if kind in requests[-1]:
                requests[-1][kind] = [str(item).strip() for item in items if str(item).strip()]
    return requests


def requested_specs(prefix: str) -> list[str]:
    """Replay conda-meta/history the way conda's History.get_requested_specs_map does.

    Per request: remove specs drop a name, then update specs set it, then
    neutered specs override it. Names no longer installed are left out.
    """
    specs: dict[str, str] = {}
    for request in history_requests(prefix):
        for kind in ("remove", "update", "neutered"):
            for item in request[kind]:
                if conda_rejects(item):
                    fail("InvalidMatchSpec", f"Invalid spec '{item}': Invalid version spec (stand-in switch "
                         "STANDIN_CONDA_CANNOT_PARSE=1)")
                spec = parse_spec(item)
                if kind == "remove":
                    specs.pop(spec.name, None)
                else:
                    # conda prints the parsed MatchSpec, whichever program wrote the line.
                    specs[spec.name] = spec.canonical()
    installed = read_records(prefix)
    return [spec for name, spec in specs.items() if name in installed]
