#!/bin/bash
# Stand-in for the Miniforge3 installer: reforge's Molecule tests only.
#
# The conda-forge channels and the Miniforge downloads are out of reach in the
# test environments, so this one file takes the installer's place. It has the
# real installer's command line (-b -p PREFIX [-u] [-f]) and builds a prefix
# with a real Python and pip (python3 -m venv) plus conda / mamba front ends
# that answer the sub-commands reforge calls, against a small embedded package
# index. What it covers and what it does not: README.md in this directory.
#
# Needs only bash, coreutils and python3 with the venv module (ensurepip).

set -eu

STANDIN_RELEASE="24.11.3-0"
INSTALLER_NAME="Miniforge3"
THIS_PATH="$0"

usage() {
    cat <<USAGE
usage: $0 [options]

Installs ${INSTALLER_NAME} ${STANDIN_RELEASE} (reforge test stand-in)

-b           run install in batch mode (without manual intervention),
             required: the stand-in has no interactive mode
-f           no error if install prefix already exists
-h           print this help message and exit
-p PREFIX    install prefix, defaults to \$HOME/miniforge3
-s           accepted for compatibility (no pre/post-link scripts here)
-u           update an existing installation
USAGE
}

BATCH=0
FORCE=0
UPDATE=0
PREFIX="${HOME:-/root}/miniforge3"
ORIGINAL_ARGS="$*"

while getopts "bfhp:su" opt; do
    case "$opt" in
        b) BATCH=1 ;;
        f) FORCE=1 ;;
        h) usage; exit 0 ;;
        p) PREFIX="$OPTARG" ;;
        s) ;;
        u) UPDATE=1 ;;
        *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ "$#" -gt 0 ]; then
    echo "ERROR: unexpected argument(s): $*" >&2
    usage >&2
    exit 2
fi

if [ "$BATCH" != 1 ]; then
    echo "ERROR: the ${INSTALLER_NAME} stand-in runs only in batch mode; pass -b" >&2
    exit 1
fi

case "$PREFIX" in
    *" "*)
        echo "ERROR: Cannot install into directories with spaces" >&2
        exit 1
        ;;
    # A literal "~" (quoted on the caller's side) means HOME, as for the real installer.
    \~ | \~/*) PREFIX="${HOME}${PREFIX#\~}" ;;
esac

if [ -e "$PREFIX" ] && [ "$UPDATE" = 0 ] && [ "$FORCE" = 0 ]; then
    printf "ERROR: File or directory already exists: '%s'\n" "$PREFIX" >&2
    printf "If you want to update an existing installation, use the -u option.\n" >&2
    exit 1
fi

HOST_PYTHON="${STANDIN_PYTHON:-python3}"
if ! "$HOST_PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "ERROR: the stand-in needs python3 >= 3.10 with the venv module (ensurepip): '$HOST_PYTHON'" >&2
    exit 1
fi

if ! mkdir -p "$PREFIX" 2>/dev/null; then
    echo "ERROR: Could not create directory: '$PREFIX'" >&2
    exit 1
fi
PREFIX="$(cd "$PREFIX" && pwd)"
echo "PREFIX=$PREFIX"

# 0. Like the real installer, unpack the standalone conda (_conda) first, so
#    that an interrupted install leaves a prefix recognisable as conda's.
if [ ! -e "$PREFIX/_conda" ]; then
    printf '#!/bin/sh\necho "conda-standalone stand-in: nothing to do" >&2\nexit 1\n' >"$PREFIX/_conda"
    chmod 0755 "$PREFIX/_conda"
fi

# 1. The interpreter: a real Python with a real pip. A repair (-u) keeps a
#    working one, as the real installer keeps an intact python package.
if "$PREFIX/bin/python" -c 'import pip' >/dev/null 2>&1; then
    echo "Keeping the existing Python in $PREFIX"
else
    echo "Unpacking payload ..."
    "$HOST_PYTHON" -m venv "$PREFIX"
fi

if [ "${STANDIN_INTERRUPT_AFTER_PYTHON:-0}" = 1 ]; then
    echo "ERROR: interrupted after the Python was in place (STANDIN_INTERRUPT_AFTER_PYTHON=1)" >&2
    exit 1
fi

# 2. The front end: one Python program, run as conda or mamba (argv[0]).
echo "Installing base environment..."
mkdir -p "$PREFIX/condabin"
FRONT_END="$PREFIX/bin/.conda.standin.$$"
{
    printf '#!%s/bin/python\n' "$PREFIX"
    printf '# Written by the %s stand-in installer (%s).\n' "$INSTALLER_NAME" "$STANDIN_RELEASE"
    printf 'STANDIN_ROOT_PREFIX = %s\n' "$("$PREFIX/bin/python" -c 'import sys; print(repr(sys.argv[1]))' "$PREFIX")"
    cat <<'STANDIN_FRONT_END'
"""Stand-in conda / mamba front end (reforge test resource).

One program answers as ``conda`` or as ``mamba``, depending on the name it is
run under. It implements the sub-commands that reforge's roles call, against
the small package index below, and keeps its state in the same files real
conda uses (``conda-meta/*.json``, ``conda-meta/history``). It is a test
double: it never downloads anything and has no real solver.
"""

import argparse
import ast
import datetime
import email.parser
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

CONDA_VERSION = "24.11.3"
MAMBA_VERSION = "2.0.5"
CHANNEL = "conda-forge"
# Placeholder hosts (".invalid" never resolves): nothing is ever downloaded.
CHANNEL_ALIAS = "https://conda.standin.invalid"
PYPI_URL = "https://pypi.standin.invalid/simple"
CONDA_BLOCK = ("# >>> conda initialize >>>", "# <<< conda initialize <<<")
MAMBA_BLOCK = ("# >>> mamba initialize >>>", "# <<< mamba initialize <<<")
SHELLS = ("bash", "zsh")

JSON_ERRORS = False
PROG = "conda"


def _platform() -> str:
    machine = platform.machine()
    return {"aarch64": "linux-aarch64", "ppc64le": "linux-ppc64le"}.get(machine, "linux-64")


PLATFORM = _platform()


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class CondaError(Exception):
    """An error reported the way conda reports its own (name: message)."""

    def __init__(self, name: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.extra = extra


class SolveError(Exception):
    """An unsatisfiable request, reported as libmamba's plain-text problem tree."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems

    def render(self) -> str:
        head = "The following package could not be installed"
        if len(self.problems) > 1:
            head = "The following packages are incompatible"
        lines = ["error    libmamba Could not solve for environment specs", f"    {head}"]
        for number, problem in enumerate(self.problems):
            branch = "└─" if number == len(self.problems) - 1 else "├─"
            first, *rest = problem.split("\n")
            lines.append(f"    {branch} {first}")
            lines.extend(f"       {line}" for line in rest)
        lines.append("critical libmamba Could not solve for environment specs")
        return "\n".join(lines)


def fail(name: str, message: str, **extra: Any) -> NoReturn:
    raise CondaError(name, message, **extra)


# --------------------------------------------------------------------------
# Versions and match specs (the subset of conda's MatchSpec the roles use)
# --------------------------------------------------------------------------


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    key: list[tuple[int, int, str]] = []
    for part in re.split(r"[.\-_+]", version):
        match = re.match(r"^(\d+)(.*)$", part)
        if match:
            key.append((1, int(match.group(1)), match.group(2)))
        else:
            key.append((0, 0, part))
    while key and key[-1] == (1, 0, ""):
        key.pop()
    return tuple(key)


def _prefix_match(version: str, base: str) -> bool:
    wanted = [p for p in base.split(".") if p]
    have = version.split(".")
    return have[: len(wanted)] == wanted or version_key(".".join(have[: len(wanted)])) == version_key(base)


def _match_constraint(version: str, constraint: str) -> bool:
    text = constraint.strip()
    if text in ("", "*"):
        return True
    operator = ""
    for candidate in ("==", "!=", ">=", "<=", "~=", ">", "<", "="):
        if text.startswith(candidate):
            operator = candidate
            text = text[len(candidate) :].strip()
            break
    glob = text.endswith("*")
    base = text.rstrip("*").rstrip(".")
    have, want = version_key(version), version_key(base)
    if operator in ("", "=="):
        return _prefix_match(version, base) if glob else have == want
    if operator == "=":
        return _prefix_match(version, base)
    if operator == "!=":
        return not _prefix_match(version, base) if glob else have != want
    if operator == "~=":
        head = base.rsplit(".", 1)[0]
        return have >= want and _prefix_match(version, head)
    return {">=": have >= want, "<=": have <= want, ">": have > want, "<": have < want}[operator]


def version_matches(version: str, spec: str | None) -> bool:
    if not spec:
        return True
    return any(
        all(_match_constraint(version, part) for part in alternative.split(",")) for alternative in spec.split("|")
    )


@dataclass(frozen=True)
class Spec:
    """A parsed match spec: name plus optional conda version / build patterns."""

    name: str
    version: str | None = None
    build: str | None = None
    channel: str | None = None

    def matches(self, version: str) -> bool:
        return version_matches(version, self.version)

    def canonical(self) -> str:
        """The spec as conda's ``str(MatchSpec(...))`` writes it into the history."""
        text = f"{self.channel}::{self.name}" if self.channel else self.name
        brackets: list[str] = []
        version = self.version
        if version:
            if any(char in version for char in "><$^|,") or version.startswith(("!=", "~=")):
                brackets.append(f"version='{version}'")
            elif version.endswith(".*"):
                text += "=" + version[:-2]
            elif version.endswith("*"):
                text += "=" + version[:-1]
            elif version.startswith("=="):
                text += version
            else:
                text += "==" + version
        if self.build:
            brackets.append(f"build='{self.build}'")
        if brackets:
            text += "[" + ",".join(brackets) + "]"
        return text

    def mamba_display(self) -> str:
        return f"{self.name} {self.version or '=*'} {self.build or '*'}"


def parse_spec(text: str) -> Spec:
    raw = text.strip()
    body = raw
    channel = None
    if "::" in body:
        channel, body = body.split("::", 1)
        channel = channel.split("/")[0] or None
    brackets: dict[str, str] = {}
    bracket_match = re.match(r"^(.*?)\[(.*)\]\s*$", body)
    if bracket_match:
        body = bracket_match.group(1)
        for key, quoted1, quoted2, bare in re.findall(
            r"(\w+)\s*=\s*(?:'([^']*)'|\"([^\"]*)\"|([^,\]]*))", bracket_match.group(2)
        ):
            brackets[key] = quoted1 or quoted2 or bare.strip()
    name_match = re.match(r"^([A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*(.*)$", body.strip())
    if not name_match:
        fail("InvalidMatchSpec", f"Invalid spec '{raw}'")
    name = name_match.group(1).lower()
    rest = name_match.group(2).strip()
    version: str | None = None
    build: str | None = None
    if rest.startswith("=") and not rest.startswith("=="):
        parts = rest[1:].split("=", 1)
        version = parts[0]
        if len(parts) > 1:
            build = parts[1]
        elif not version.endswith("*"):
            version += ".*"
    elif rest:
        tokens = rest.split()
        version = tokens[0]
        build = tokens[1] if len(tokens) > 1 else None
    version = brackets.get("version", version)
    build = brackets.get("build", build)
    return Spec(name, version if version not in ("", "*") else None, build if build not in ("", "*") else None, channel)


# --------------------------------------------------------------------------
# The embedded package index
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    """One entry of the embedded index."""

    name: str
    version: str
    build: str
    subdir: str
    depends: tuple[str, ...] = ()
    module: str | None = None
    license: str = "BSD-3-Clause"

    @property
    def dist(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"


def _root_python_version() -> str:
    return ".".join(str(part) for part in sys.version_info[:3])


def _dist_info_version(site_packages: str | None, project: str) -> str | None:
    if not site_packages or not os.path.isdir(site_packages):
        return None
    for entry in sorted(os.listdir(site_packages)):
        if entry.lower().startswith(project + "-") and entry.endswith(".dist-info"):
            return entry[len(project) + 1 : -len(".dist-info")]
    return None


def _pybuild(python_version: str | None, digest: str) -> str:
    xy = "".join((python_version or _root_python_version()).split(".")[:2])
    return f"py{xy}h{digest}_0"


def index_versions(name: str) -> list[str]:
    """Versions of NAME in the index, newest first."""
    return sorted({pkg.version for pkg in _index().get(name, [])}, key=version_key, reverse=True)


_INDEX_CACHE: dict[str, list[Package]] = {}


def _index() -> dict[str, list[Package]]:
    if _INDEX_CACHE:
        return _INDEX_CACHE
    host = _root_python_version()
    others = ("3.9.20", "3.10.16", "3.11.11", "3.12.8", "3.13.1")
    pythons = {v for v in others if v.split(".")[:2] != host.split(".")[:2]} | {host}
    root_sp = site_packages_of(ROOT_PREFIX)
    entries: list[Package] = [
        Package("python", v, f"h{_digest('python' + v)}_0_cpython", PLATFORM, (), None, "Python-2.0") for v in pythons
    ]
    setuptools_version = _dist_info_version(root_sp, "setuptools")
    # ensurepip brings setuptools along up to Python 3.11; conda-forge's pip depends on it too.
    pip_depends = ("python >=3.8", "setuptools") if setuptools_version else ("python >=3.8",)
    entries.append(
        Package(
            "pip", _dist_info_version(root_sp, "pip") or "24.3.1", "pyh8b19718_2", "noarch", pip_depends, None, "MIT"
        )
    )
    if setuptools_version:
        entries.append(
            Package("setuptools", setuptools_version, "pyhff2d567_0", "noarch", ("python >=3.8",), None, "MIT")
        )
    entries += [
        Package(
            "conda",
            CONDA_VERSION,
            f"py{''.join(host.split('.')[:2])}h8cc9a2d_0",
            PLATFORM,
            ("python",),
            None,
            "BSD-3-Clause",
        ),
        Package("mamba", MAMBA_VERSION, "had4a41a_0", PLATFORM, (), None, "BSD-3-Clause"),
        Package("fastcore", "1.5.29", "pyhd8ed1ab_0", "noarch", ("python >=3.7",), "fastcore", "Apache-2.0"),
        Package("fastcore", "1.7.1", "pyhd8ed1ab_0", "noarch", ("python >=3.8",), "fastcore", "Apache-2.0"),
        Package(
            "fastai",
            "2.7.18",
            "pyhd8ed1ab_0",
            "noarch",
            ("python >=3.8", "fastcore >=1.5.29,<1.8", "tinydep"),
            "fastai",
            "Apache-2.0",
        ),
        Package("tinydep", "0.1.0", "pyhd8ed1ab_0", "noarch", ("python >=3.7",), "tinydep", "MIT"),
        Package(
            "sentencepiece", "0.2.0", "PYBUILD:5c1b4f1", PLATFORM, ("python >=3.8",), "sentencepiece", "Apache-2.0"
        ),
        Package("numpy", "1.26.4", "PYBUILD:b4c3d1e", PLATFORM, ("python >=3.9",), "numpy"),
        Package("numpy", "2.1.3", "PYBUILD:9f2c4a7", PLATFORM, ("python >=3.10",), "numpy"),
    ]
    for entry in entries:
        _INDEX_CACHE.setdefault(entry.name, []).append(entry)
    return _INDEX_CACHE


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:7]


def index_package(name: str, version: str, python_version: str | None) -> Package:
    for pkg in _index()[name]:
        if pkg.version == version:
            if pkg.build.startswith("PYBUILD:"):
                return Package(
                    pkg.name,
                    pkg.version,
                    _pybuild(python_version, pkg.build[8:]),
                    pkg.subdir,
                    pkg.depends,
                    pkg.module,
                    pkg.license,
                )
            return pkg
    raise KeyError(f"{name}-{version}")


# --------------------------------------------------------------------------
# Environments on disk
# --------------------------------------------------------------------------

# The installer writes STANDIN_ROOT_PREFIX above this code, as real conda embeds its prefix.
ROOT_PREFIX: str = globals().get("STANDIN_ROOT_PREFIX") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def site_packages_of(prefix: str) -> str | None:
    lib = os.path.join(prefix, "lib")
    if not os.path.isdir(lib):
        return None
    for entry in sorted(os.listdir(lib)):
        candidate = os.path.join(lib, entry, "site-packages")
        if entry.startswith("python3") and os.path.isdir(candidate):
            return candidate
    return None


def is_env(prefix: str) -> bool:
    return os.path.isdir(os.path.join(prefix, "conda-meta"))


def read_records(prefix: str) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    meta = os.path.join(prefix, "conda-meta")
    if not os.path.isdir(meta):
        return records
    for entry in sorted(os.listdir(meta)):
        if not entry.endswith(".json"):
            continue
        try:
            with open(os.path.join(meta, entry), encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            continue
        record["_file"] = entry
        records[record["name"]] = record
    return records


def record_python_version(records: dict[str, dict[str, Any]]) -> str | None:
    python = records.get("python")
    return python["version"] if python else None


def list_entry(record: dict[str, Any]) -> dict[str, Any]:
    """One package as ``conda list --json`` (and the actions of --json) show it."""
    channel = record.get("schannel", CHANNEL)
    return {
        "base_url": record.get("base_url", f"{CHANNEL_ALIAS}/{channel}"),
        "build_number": record.get("build_number", 0),
        "build_string": record["build"],
        "channel": channel,
        "dist_name": f"{record['name']}-{record['version']}-{record['build']}",
        "name": record["name"],
        "platform": record.get("subdir", "noarch"),
        "version": record["version"],
    }


def _metadata_headers(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            headers = email.parser.HeaderParser().parse(handle)
    except OSError:
        return {}
    return {"name": headers.get("Name", ""), "version": headers.get("Version", "")}


def pip_entries(prefix: str, records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Python distributions in PREFIX's site-packages that no conda record owns."""
    site_packages = site_packages_of(prefix)
    if not site_packages:
        return []
    owned: set[str] = set()
    for record in records.values():
        for path in record.get("files", []):
            for part in path.split("/"):
                if part.endswith((".dist-info", ".egg-info")):
                    owned.add(part)
    entries = []
    for entry in sorted(os.listdir(site_packages)):
        if not entry.endswith((".dist-info", ".egg-info")) or entry in owned:
            continue
        full = os.path.join(site_packages, entry)
        if entry.endswith(".dist-info"):
            meta = _metadata_headers(os.path.join(full, "METADATA"))
        elif os.path.isdir(full):
            meta = _metadata_headers(os.path.join(full, "PKG-INFO"))
        else:
            meta = _metadata_headers(full)
        if not meta.get("name"):
            continue
        name = re.sub(r"[-_.]+", "-", meta["name"]).lower()
        version = meta["version"]
        entries.append(
            {
                "base_url": PYPI_URL,
                "build_number": 0,
                "build_string": "pypi_0",
                "channel": "pypi",
                "dist_name": f"{name}-{version}-pypi_0",
                "name": name,
                "platform": "pypi",
                "version": version,
            }
        )
    return entries


def list_packages(prefix: str) -> list[dict[str, Any]]:
    records = read_records(prefix)
    entries = [list_entry(record) for record in records.values()] + pip_entries(prefix, records)
    return sorted(entries, key=lambda item: item["name"].lower())


# --------------------------------------------------------------------------
# Configuration (~/.condarc, a YAML subset)
# --------------------------------------------------------------------------


def _scalar(text: str) -> Any:
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    if value.startswith("[") and value.endswith("]"):
        inner = value[1:-1].strip()
        return [_scalar(item) for item in inner.split(",")] if inner else []
    lowered = value.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if lowered in ("null", "~"):
        return None
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


def _strip_comment(line: str) -> str:
    quote = ""
    for position, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (position == 0 or line[position - 1].isspace()):
            return line[:position].rstrip()
    return line.rstrip()


def parse_yaml_subset(text: str, source: str) -> dict[str, Any]:
    """Top-level ``key: scalar`` and ``key:`` + ``- item`` lists; one nested list under a ``- key:`` item."""
    data: dict[str, Any] = {}
    current: str | None = None
    nested: list[Any] | None = None
    nested_indent = -1
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        if not line.strip() or line.strip() in ("---", "..."):
            continue
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if indent == 0 and not stripped.startswith("-"):
            match = re.match(r"^([^:]+?)\s*:(?:\s+(.*))?$", stripped)
            if not match:
                fail(
                    "ConfigurationLoadError",
                    f"Unable to load configuration file.\n  path: {source}\n"
                    f"  reason: line {number} is not 'key: value'",
                )
            current, nested = match.group(1).strip(), None
            value = match.group(2)
            data[current] = [] if value is None or value == "" else _scalar(value)
            if value not in (None, ""):
                current = None
            continue
        if current is None:
            continue  # nested mappings (custom_channels, ...) are not interpreted
        target = data[current]
        if not isinstance(target, list):
            continue
        if stripped.startswith("-"):
            item = stripped[1:].strip()
            if nested is not None and indent > nested_indent:
                nested.append(_scalar(item))
                continue
            nested = None
            key_match = re.match(r"^([^:'\"]+):$", item)
            if key_match:
                nested = []
                nested_indent = indent
                target.append({key_match.group(1).strip(): nested})
            else:
                target.append(_scalar(item))
    return data


def home() -> str:
    return os.path.expanduser("~")


def condarc_files() -> list[str]:
    paths = [
        os.path.join(ROOT_PREFIX, ".condarc"),
        os.path.join(ROOT_PREFIX, "condarc"),
        os.path.join(os.environ.get("XDG_CONFIG_HOME", os.path.join(home(), ".config")), "conda", ".condarc"),
        os.path.join(home(), ".conda", ".condarc"),
        os.path.join(home(), ".condarc"),
    ]
    if os.environ.get("CONDARC"):
        paths.append(os.path.expanduser(os.environ["CONDARC"]))
    seen: list[str] = []
    for path in paths:
        if os.path.isfile(path) and path not in seen:
            seen.append(path)
    return seen


def _expand(path: str) -> str:
    return os.path.abspath(os.path.expandvars(os.path.expanduser(path)))


def load_config() -> dict[str, Any]:
    """Merge the rc files like conda: later files win; lists put later items first."""
    merged: dict[str, Any] = {}
    for path in condarc_files():
        with open(path, encoding="utf-8") as handle:
            data = parse_yaml_subset(handle.read(), path)
        for key, value in data.items():
            if isinstance(value, list) and isinstance(merged.get(key), list):
                merged[key] = value + [item for item in merged[key] if item not in value]
            else:
                merged[key] = value
    config: dict[str, Any] = {
        "channels": merged.get("channels") or ["defaults"],
        "channel_priority": merged.get("channel_priority", "flexible"),
        "pkgs_dirs": [_expand(p) for p in merged.get("pkgs_dirs") or []]
        or [os.path.join(ROOT_PREFIX, "pkgs"), os.path.join(home(), ".conda", "pkgs")],
        "envs_dirs": [_expand(p) for p in merged.get("envs_dirs") or []]
        or [os.path.join(ROOT_PREFIX, "envs"), os.path.join(home(), ".conda", "envs")],
        "auto_activate_base": merged.get("auto_activate_base", True),
        "changeps1": merged.get("changeps1", True),
        "always_yes": merged.get("always_yes"),
        "show_channel_urls": merged.get("show_channel_urls"),
    }
    for key, value in merged.items():
        config.setdefault(key, value)
    return config


# --------------------------------------------------------------------------
# Target environment selection
# --------------------------------------------------------------------------


def env_name(prefix: str, config: dict[str, Any]) -> str:
    if os.path.normpath(prefix) == os.path.normpath(ROOT_PREFIX):
        return "base"
    if os.path.dirname(os.path.normpath(prefix)) in [os.path.normpath(d) for d in config["envs_dirs"]]:
        return os.path.basename(os.path.normpath(prefix))
    return prefix


def locate_named(name: str, config: dict[str, Any]) -> str | None:
    if name in ("base", "root"):
        return ROOT_PREFIX
    for envs_dir in config["envs_dirs"]:
        candidate = os.path.join(envs_dir, name)
        if is_env(candidate):
            return candidate
    return None


def mamba_root_config(config: dict[str, Any]) -> dict[str, Any]:
    """mamba 2 resolves -n NAME against MAMBA_ROOT_PREFIX from the caller's environment.

    That variable wins over the root mamba was installed in
    (libmamba api/configuration.cpp), and the mamba shell block exports it.
    conda ignores it.
    """
    root = os.environ.get("MAMBA_ROOT_PREFIX", "") if PROG == "mamba" else ""
    if not root:
        return dict(config, root_prefix=ROOT_PREFIX)
    root = _expand(root)
    own = os.path.join(ROOT_PREFIX, "envs")
    envs_dirs = [os.path.join(root, "envs")] + [d for d in config["envs_dirs"] if d != own]
    return dict(config, root_prefix=root, envs_dirs=envs_dirs)


def target_prefix(
    args: argparse.Namespace, config: dict[str, Any], *, must_exist: bool = True, creating: bool = False
) -> str:
    if getattr(args, "prefix", None):
        prefix = _expand(args.prefix)
    elif getattr(args, "name", None):
        name = args.name
        if "/" in name or " " in name:
            fail("CondaValueError", f"Invalid environment name: '{name}'")
        config = mamba_root_config(config)
        if name in ("base", "root") and not creating:
            return config["root_prefix"]
        found = locate_named(name, config)
        if creating:
            if name in ("base", "root"):
                fail("CondaValueError", "The target prefix is the base prefix. Aborting.")
            prefix = found or os.path.join(config["envs_dirs"][0], name)
        elif found:
            prefix = found
        else:
            fail(
                "EnvironmentNameNotFound",
                f"Could not find conda environment: {name}\n"
                "You can list all discoverable environments with `conda info --envs`.",
                environment_name=name,
            )
    else:
        active = os.environ.get("CONDA_PREFIX", "")
        prefix = active if active and is_env(active) and not creating else ROOT_PREFIX
    if must_exist and not is_env(prefix):
        fail("EnvironmentLocationNotFound", f"Not a conda environment: {prefix}", location=prefix)
    return prefix


def environments_txt() -> str:
    return os.path.join(home(), ".conda", "environments.txt")


def register_env(prefix: str, add: bool) -> None:
    path = environments_txt()
    lines: list[str] = []
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle if line.strip()]
    if add and prefix not in lines:
        lines.append(prefix)
    elif not add and prefix in lines:
        lines.remove(prefix)
    else:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


def all_envs(config: dict[str, Any]) -> list[str]:
    found: set[str] = set()
    for envs_dir in config["envs_dirs"]:
        if os.path.isdir(envs_dir):
            for entry in os.listdir(envs_dir):
                if is_env(os.path.join(envs_dir, entry)):
                    found.add(os.path.join(envs_dir, entry))
    if os.path.isfile(environments_txt()):
        with open(environments_txt(), encoding="utf-8") as handle:
            found.update(line.strip() for line in handle if line.strip() and is_env(line.strip()))
    found.discard(ROOT_PREFIX)
    return [ROOT_PREFIX] + sorted(found)


# --------------------------------------------------------------------------
# Solver
# --------------------------------------------------------------------------


class Solver:
    """Backtracking search over the tiny index: newest first, keep what is installed."""

    def __init__(self, installed: dict[str, str], mode: str, requested: set[str]) -> None:
        self.installed = installed
        self.mode = mode
        self.requested = requested
        self.index = _index()
        self.pinned = {"python": installed["python"]} if "python" in installed else {}

    def candidates(self, name: str, constraints: list[Spec]) -> list[str]:
        versions = index_versions(name)
        if name in self.pinned:
            versions = [self.pinned[name]]
        versions = [v for v in versions if all(spec.matches(v) for spec in constraints)]
        preferred: str | None = None
        if name in self.installed and not (self.mode == "update" and name in self.requested):
            preferred = self.installed[name]
        elif name == "python" and name not in self.installed:
            preferred = _root_python_version()
        if preferred in versions:
            versions.remove(preferred)
            versions.insert(0, preferred)
        return versions

    def depends(self, name: str, version: str) -> list[Spec]:
        specs = [parse_spec(dep) for dep in index_package(name, version, None).depends]
        if name == "python":
            specs.append(Spec("pip"))  # conda's add_pip_as_python_dependency
        return specs

    def search(
        self, decided: dict[str, str], queue: list[str], constraints: dict[str, list[Spec]]
    ) -> dict[str, str] | None:
        while queue and queue[0] in decided:
            queue = queue[1:]
        if not queue:
            return decided
        name, rest = queue[0], queue[1:]
        if name not in self.index:
            return None
        for version in self.candidates(name, constraints.get(name, [])):
            deps = self.depends(name, version)
            if any(dep.name in decided and not dep.matches(decided[dep.name]) for dep in deps):
                continue
            if any(dep.name not in self.index for dep in deps):
                continue
            grown = {key: list(value) for key, value in constraints.items()}
            for dep in deps:
                grown.setdefault(dep.name, []).append(dep)
            result = self.search({**decided, name: version}, rest + [dep.name for dep in deps], grown)
            if result is not None:
                return result
        return None

    def solve(self, specs: list[Spec]) -> dict[str, str]:
        constraints: dict[str, list[Spec]] = {}
        for spec in specs:
            constraints.setdefault(spec.name, []).append(spec)
        fixed = {name: version for name, version in self.installed.items() if name not in self.index}
        queue = [spec.name for spec in specs] + [name for name in self.installed if name in self.index]
        result = self.search(dict(fixed), queue, constraints)
        if result is None:
            raise SolveError(self.explain(specs))
        return result

    def explain(self, specs: list[Spec]) -> list[str]:
        problems: list[str] = []
        for spec in specs:
            shown = spec.mamba_display()
            matching = [v for v in index_versions(spec.name) if spec.matches(v)]
            if not matching:
                problems.append(f"{shown} does not exist (perhaps a typo or a missing channel).")
                continue
            if spec.name in self.pinned and not spec.matches(self.pinned[spec.name]):
                problems.append(
                    f"{shown} is not installable because it conflicts with any installable "
                    "versions previously reported."
                )
                continue
            queue = [spec.name] + [name for name in self.installed if name in self.index]
            if self.search({}, queue, {spec.name: [spec]}) is None:
                version = matching[0]
                blocker = next(
                    (
                        dep
                        for dep in self.depends(spec.name, version)
                        if dep.name in self.pinned and not dep.matches(self.pinned[dep.name])
                    ),
                    None,
                )
                needed = blocker.mamba_display() if blocker else "its dependencies"
                problems.append(
                    f"{spec.name} {version} is not installable because it requires\n"
                    f"└─ {needed}, which conflicts with any installable versions previously "
                    "reported."
                )
        if not problems:
            problems = [f"{spec.mamba_display()} is requested" for spec in specs]
        return problems


# --------------------------------------------------------------------------
# Transactions: link / unlink packages, records, history
# --------------------------------------------------------------------------


def now_stamp() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def make_venv(prefix: str) -> None:
    """A real interpreter with a real pip: the environment's python is a venv of the host's.

    pip (and setuptools) are linked from the root prefix's copy, the way conda
    links packages from its cache, which is much faster than running ensurepip
    again; ensurepip is the fallback when the root has no pip.
    """
    base = getattr(sys, "_base_executable", sys.executable) or sys.executable
    result = subprocess.run([base, "-m", "venv", "--without-pip", prefix], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        fail("CondaError", f"could not create the Python of {prefix}:\n{result.stderr.strip()}")
    if not _clone_from_root(prefix, "pip"):
        subprocess.run(
            [os.path.join(prefix, "bin", "python"), "-m", "ensurepip", "--default-pip"],
            capture_output=True,
            check=False,
        )
        return
    _clone_from_root(prefix, "setuptools")


def _clone_from_root(prefix: str, project: str) -> bool:
    """Copy PROJECT's installed files (from its RECORD) from the root prefix into PREFIX."""
    root_files = _dist_info_files(ROOT_PREFIX, project)
    root_sp, env_sp = site_packages_of(ROOT_PREFIX), site_packages_of(prefix)
    if not root_files or not root_sp or not env_sp:
        return False
    if os.path.basename(os.path.dirname(root_sp)) != os.path.basename(os.path.dirname(env_sp)):
        return False
    python = os.path.join(prefix, "bin", "python")
    for relative in root_files:
        source = os.path.join(ROOT_PREFIX, relative)
        target = os.path.join(prefix, relative)
        if relative.endswith(".pyc") or not os.path.isfile(source):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if relative.startswith("bin/"):
            with open(source, encoding="utf-8") as handle:
                lines = handle.read().split("\n", 1)
            if lines[0].startswith("#!"):
                lines[0] = f"#!{python}"
            _write(target, "\n".join(lines), 0o755)
        else:
            shutil.copy2(source, target)
    return True


def _dist_info_files(prefix: str, project: str) -> list[str]:
    site_packages = site_packages_of(prefix)
    if not site_packages:
        return []
    relative_sp = os.path.relpath(site_packages, prefix)
    for entry in os.listdir(site_packages):
        if entry.lower().startswith(project + "-") and entry.endswith(".dist-info"):
            record_file = os.path.join(site_packages, entry, "RECORD")
            files = [f"{relative_sp}/{entry}/RECORD"]
            if os.path.isfile(record_file):
                with open(record_file, encoding="utf-8") as handle:
                    for line in handle:
                        path = line.rsplit(",", 2)[0] if line.strip() else ""
                        if path:
                            files.append(os.path.normpath(os.path.join(relative_sp, path)))
            return sorted(set(files))
    return []


def _write(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)


def _pip_name_requirement(dep: Spec) -> str:
    return dep.name + (dep.version if dep.version and dep.version[0] in "<>=!~" else "")


def install_module_files(prefix: str, pkg: Package) -> list[str]:
    """An importable stand-in module plus the dist-info pip sees, as conda packages ship."""
    site_packages = site_packages_of(prefix)
    if not pkg.module or not site_packages:
        return []
    relative_sp = os.path.relpath(site_packages, prefix)
    files = {
        f"{pkg.module}/__init__.py": f'"""Stand-in for {pkg.name} {pkg.version} (reforge test resource)."""\n\n'
        f'__version__ = "{pkg.version}"\n',
        f"{pkg.name}-{pkg.version}.dist-info/INSTALLER": "conda\n",
    }
    requires = [_pip_name_requirement(dep) for dep in map(parse_spec, pkg.depends) if dep.name != "python"]
    metadata = [
        f"Metadata-Version: 2.1",
        f"Name: {pkg.name}",
        f"Version: {pkg.version}",
        f"Summary: Stand-in for {pkg.name}",
        f"License: {pkg.license}",
    ]
    metadata += [f"Requires-Dist: {req}" for req in requires]
    files[f"{pkg.name}-{pkg.version}.dist-info/METADATA"] = "\n".join(metadata) + "\n"
    record_lines = [f"{path},," for path in files] + [f"{pkg.name}-{pkg.version}.dist-info/RECORD,,"]
    files[f"{pkg.name}-{pkg.version}.dist-info/RECORD"] = "\n".join(record_lines) + "\n"
    for path, text in files.items():
        _write(os.path.join(site_packages, path), text)
    return sorted(f"{relative_sp}/{path}" for path in files)


def write_record(prefix: str, pkg: Package, files: list[str], requested_spec: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "arch": None if pkg.subdir == "noarch" else platform.machine(),
        "base_url": f"{CHANNEL_ALIAS}/{CHANNEL}",
        "build": pkg.build,
        "build_number": 0,
        "channel": f"{CHANNEL_ALIAS}/{CHANNEL}/{pkg.subdir}",
        "constrains": [],
        "depends": list(pkg.depends),
        "extracted_package_dir": os.path.join(ROOT_PREFIX, "pkgs", pkg.dist),
        "files": files,
        "fn": f"{pkg.dist}.conda",
        "license": pkg.license,
        "link": {"source": os.path.join(ROOT_PREFIX, "pkgs", pkg.dist), "type": 1},
        "md5": hashlib.md5(pkg.dist.encode()).hexdigest(),
        "name": pkg.name,
        "platform": None if pkg.subdir == "noarch" else "linux",
        "requested_spec": requested_spec,
        "schannel": CHANNEL,
        "size": 0,
        "subdir": pkg.subdir,
        "timestamp": 0,
        "url": f"{CHANNEL_ALIAS}/{CHANNEL}/{pkg.subdir}/{pkg.dist}.conda",
        "version": pkg.version,
    }
    meta = os.path.join(prefix, "conda-meta")
    os.makedirs(meta, exist_ok=True)
    for stale in read_records(prefix).values():
        if stale["name"] == pkg.name:
            os.remove(os.path.join(meta, stale["_file"]))
    _write(os.path.join(meta, f"{pkg.dist}.json"), json.dumps(record, indent=2, sort_keys=True) + "\n")
    record["_file"] = f"{pkg.dist}.json"
    return record


def link_package(prefix: str, pkg: Package, requested_spec: str) -> dict[str, Any]:
    if pkg.name == "python":
        if not os.path.exists(os.path.join(prefix, "bin", "python")):
            make_venv(prefix)
        files = ["bin/python", "bin/python3"]
    elif pkg.name in ("pip", "setuptools"):
        if not _dist_info_files(prefix, pkg.name) and pkg.name == "pip":
            subprocess.run(
                [os.path.join(prefix, "bin", "python"), "-m", "ensurepip", "--default-pip"],
                capture_output=True,
                check=False,
            )
        files = _dist_info_files(prefix, pkg.name)
        # The record carries the version pip really has in this environment.
        actual = _dist_info_version(site_packages_of(prefix), pkg.name)
        if actual and actual != pkg.version:
            pkg = Package(pkg.name, actual, pkg.build, pkg.subdir, pkg.depends, pkg.module, pkg.license)
    elif pkg.name == "conda":
        files = ["bin/conda", "condabin/conda", "etc/profile.d/conda.sh"] if prefix == ROOT_PREFIX else []
    elif pkg.name == "mamba":
        files = ["bin/mamba", "etc/profile.d/mamba.sh"] if prefix == ROOT_PREFIX else []
    else:
        files = install_module_files(prefix, pkg)
    return write_record(prefix, pkg, files, requested_spec)


def unlink_record(prefix: str, record: dict[str, Any]) -> None:
    if record["name"] not in ("python", "conda", "mamba"):
        parents: set[str] = set()
        for path in record.get("files", []):
            full = os.path.join(prefix, path)
            if os.path.isfile(full) or os.path.islink(full):
                os.remove(full)
                parents.add(os.path.dirname(full))
        for parent in sorted(parents, key=len, reverse=True):
            cache = os.path.join(parent, "__pycache__")
            if os.path.isdir(cache):
                shutil.rmtree(cache, ignore_errors=True)
            while parent.startswith(prefix + os.sep) and os.path.isdir(parent) and not os.listdir(parent):
                os.rmdir(parent)
                parent = os.path.dirname(parent)
    path = os.path.join(prefix, "conda-meta", record["_file"])
    if os.path.exists(path):
        os.remove(path)


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
    prog = PROG
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
    return PROG == "conda" and os.environ.get("STANDIN_CONDA_CANNOT_PARSE") == "1" and '="' in spec


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


# --------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------


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
        "--satisfied-skip-solve",
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
            continue
        if current and current not in unlink:
            unlink.append(current)
        link.append(index_package(name, version, python_version))
    order = {"python": 0, "pip": 1, "setuptools": 2}
    link.sort(key=lambda pkg: (order.get(pkg.name, 3), pkg.name))
    link_entries = [list_entry(write_record_preview(pkg)) for pkg in link]
    unlink_entries = [list_entry(record) for record in unlink]
    spec_strings = [spec.canonical() for spec in (remove_specs or update_specs)]
    if not link and not unlink and not creating:
        if args.json:
            emit_json({"message": "All requested packages already installed.", "success": True})
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
    if prefix != ROOT_PREFIX:
        register_env(prefix, True)
    if args.json:
        emit_json({"actions": actions, "dry_run": False, "prefix": prefix, "success": True})
    elif not args.quiet:
        print("Preparing transaction: done\nVerifying transaction: done\nExecuting transaction: done")
    return 0


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
    solver = Solver(installed, "update" if updating else "install", {spec.name for spec in specs})
    final = solver.solve(specs)
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
    if prefix == ROOT_PREFIX:
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


def remove_env(prog: str, args: argparse.Namespace, config: dict[str, Any]) -> int:
    if not args.name and not args.prefix:
        fail("CondaValueError", "no environment given: use -n NAME or -p PREFIX")
    prefix = target_prefix(args, config, must_exist=False)
    if os.path.normpath(prefix) == os.path.normpath(ROOT_PREFIX):
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
        if PROG == "mamba" and is_env(prefix) and args.yes and not args.dry_run:
            # mamba 2 asks "Found conda-prefix at ... Overwrite?"; -y answers
            # yes: the environment is deleted and created again (api/create.cpp).
            shutil.rmtree(prefix)
        elif not (PROG == "mamba" and is_env(prefix) and args.yes):
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
            emit_json({"root_prefix": ROOT_PREFIX})
        else:
            print(ROOT_PREFIX)
        return 0
    if args.envs and not args.json:
        print_env_list(envs, config)
        return 0
    if prog == "mamba":
        data: dict[str, Any] = {
            "base environment": ROOT_PREFIX,
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
            "av_data_dir": os.path.join(ROOT_PREFIX, "etc", "conda"),
            "channels": channel_urls(config["channels"]),
            "conda_build_version": "not installed",
            "conda_env_version": CONDA_VERSION,
            "conda_location": os.path.join(ROOT_PREFIX, "lib", "conda"),
            "conda_prefix": ROOT_PREFIX,
            "conda_shlvl": int(os.environ.get("CONDA_SHLVL", "-1") or -1),
            "conda_version": CONDA_VERSION,
            "config_files": condarc_files(),
            "default_prefix": ROOT_PREFIX,
            "envs": envs,
            "envs_dirs": config["envs_dirs"],
            "pkgs_dirs": config["pkgs_dirs"],
            "platform": PLATFORM,
            "python_version": _root_python_version(),
            "rc_path": os.path.join(home(), ".condarc"),
            "root_prefix": ROOT_PREFIX,
            "root_writable": os.access(ROOT_PREFIX, os.W_OK),
            "solver": {"default": True, "name": "libmamba", "user_agent": "solver/libmamba"},
            "sys.executable": sys.executable,
            "sys.prefix": ROOT_PREFIX,
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
        dependencies = requested_specs(prefix)
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


# --------------------------------------------------------------------------
# Shell integration: init blocks, hooks, activate / deactivate
# --------------------------------------------------------------------------


def rc_file(shell: str) -> str:
    if shell == "zsh":
        return os.path.join(os.environ.get("ZDOTDIR") or home(), ".zshrc")
    return os.path.join(home(), ".bashrc")


def conda_block(shell: str, root: str) -> str:
    return f"""{CONDA_BLOCK[0]}
# !! Contents within this block are managed by 'conda init' !!
__conda_setup="$('{root}/bin/conda' 'shell.{shell}' 'hook' 2> /dev/null)"
if [ $? -eq 0 ]; then
    eval "$__conda_setup"
else
    if [ -f "{root}/etc/profile.d/conda.sh" ]; then
        . "{root}/etc/profile.d/conda.sh"
    else
        export PATH="{root}/bin:$PATH"
    fi
fi
unset __conda_setup
{CONDA_BLOCK[1]}"""


def mamba_block(shell: str, root: str, exe: str) -> str:
    return f"""{MAMBA_BLOCK[0]}
# !! Contents within this block are managed by 'mamba shell init' !!
export MAMBA_EXE='{exe}';
export MAMBA_ROOT_PREFIX='{root}';
__mamba_setup="$("$MAMBA_EXE" shell hook --shell {shell} --root-prefix "$MAMBA_ROOT_PREFIX" 2> /dev/null)"
if [ $? -eq 0 ]; then
    eval "$__mamba_setup"
else
    alias mamba="$MAMBA_EXE"  # Fallback on help from mamba activate
fi
unset __mamba_setup
{MAMBA_BLOCK[1]}"""


def _block_pattern(markers: tuple[str, str], with_newlines: bool) -> re.Pattern[str]:
    core = rf"^{re.escape(markers[0])}[^\n]*\n[\s\S]*?^{re.escape(markers[1])}[^\n\r]*"
    if with_newlines:
        # The newline before the block and the one ending it are the ones init added.
        return re.compile(rf"\n?{core}(?:\r?\n)?", re.MULTILINE)
    return re.compile(core, re.MULTILINE)


def edit_rc(content: str, markers: tuple[str, str], block: str | None) -> str:
    """Put BLOCK in CONTENT (replace in place or append), or remove it when BLOCK is None."""
    if block is None:
        return _block_pattern(markers, True).sub("", content)
    pattern = _block_pattern(markers, False)
    if pattern.search(content):
        return pattern.sub(lambda _match: block, content, count=1)
    return content + ("\n" if content else "") + block + "\n"


def _read_text(path: str) -> str | None:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        return handle.read()


def _write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as handle:
        handle.write(text)


def apply_rc(path: str, markers: tuple[str, str], block: str | None, dry_run: bool) -> bool:
    current = _read_text(path)
    if current is None and block is None:
        return False
    updated = edit_rc(current or "", markers, block)
    if updated == (current or "") and current is not None:
        return False
    if not dry_run:
        _write_text(path, updated)
    return True


def cmd_init(prog: str, command: str, argv: list[str]) -> int:
    parser = _parser(prog, command)
    parser.add_argument("shells", nargs="*")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--reverse", action="store_true")
    parser.add_argument("-d", "--dry-run", action="store_true")
    parser.add_argument("--user", action="store_true", default=True)
    parser.add_argument("--no-user", action="store_true")
    parser.add_argument("--system", action="store_true")
    parser.add_argument("--condabin", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    _set_json(args)
    shells = list(SHELLS) if args.all else (args.shells or ["bash"])
    unsupported = [shell for shell in shells if shell not in SHELLS]
    if unsupported:
        fail("CondaValueError", f"the stand-in initializes only bash and zsh, not: {', '.join(unsupported)}")
    if args.system:
        fail("CondaValueError", "the stand-in does not implement 'conda init --system'")
    for path in ("condabin/conda", "bin/conda", "bin/python", "etc/profile.d/conda.sh"):
        print(f"{'no change':<14}{os.path.join(ROOT_PREFIX, path)}")
    changed = False
    for shell in dict.fromkeys(shells):
        path = rc_file(shell)
        block = None if args.reverse else conda_block(shell, ROOT_PREFIX)
        modified = apply_rc(path, CONDA_BLOCK, block, args.dry_run)
        changed = changed or modified
        print(f"{'modified' if modified else 'no change':<14}{path}")
    if changed:
        print("\n==> For changes to take effect, close and re-open your current shell. <==\n")
    else:
        print("No action taken.")
    return 0


def posix_hook(root: str, auto_activate: bool) -> str:
    """What 'conda shell.bash hook' prints: the conda shell function, then 'conda activate base'."""
    text = f"""export CONDA_EXE='{root}/bin/conda'
export _CE_M=''
export _CE_CONDA=''
export CONDA_PYTHON_EXE='{root}/bin/python'

# Stand-in conda shell integration (reforge test resource).
__conda_exe() (
    "$CONDA_EXE" $_CE_M $_CE_CONDA "$@"
)

__conda_hashr() {{
    if [ -n "${{ZSH_VERSION:+x}}" ]; then
        \\rehash
    else
        \\hash -r
    fi
}}

__conda_activate() {{
    \\local ask_conda
    ask_conda="$(PS1="${{PS1:-}}" __conda_exe shell.posix "$@")" || \\return
    \\eval "$ask_conda"
    __conda_hashr
}}

__conda_reactivate() {{
    \\local ask_conda
    ask_conda="$(PS1="${{PS1:-}}" __conda_exe shell.posix reactivate)" || \\return
    \\eval "$ask_conda"
    __conda_hashr
}}

conda() {{
    \\local cmd="${{1-__missing__}}"
    case "$cmd" in
        activate|deactivate)
            __conda_activate "$@"
            ;;
        install|update|upgrade|remove|uninstall)
            __conda_exe "$@" || \\return
            __conda_reactivate
            ;;
        *)
            __conda_exe "$@"
            ;;
    esac
}}

if [ -z "${{CONDA_SHLVL+x}}" ]; then
    \\export CONDA_SHLVL=0
    PATH="{root}/condabin${{PATH:+":${{PATH}}"}}"
    \\export PATH
    if [ -z "${{PS1+x}}" ]; then
        PS1=
    fi
fi
"""
    if auto_activate:
        text += "conda activate base\n"
    return text


def mamba_hook(root: str, exe: str, shell: str) -> str:
    """What 'mamba shell hook' prints: the mamba shell function (activate / deactivate)."""
    return f"""export MAMBA_EXE='{exe}'
export MAMBA_ROOT_PREFIX='{root}'

# Stand-in mamba shell integration (reforge test resource).
__mamba_exe() (
    "$MAMBA_EXE" "$@"
)

__mamba_hashr() {{
    if [ -n "${{ZSH_VERSION:+x}}" ]; then
        \\rehash
    else
        \\hash -r
    fi
}}

__mamba_xctivate() {{
    \\local ask_mamba
    ask_mamba="$(PS1="${{PS1:-}}" __mamba_exe shell "$@" --shell {shell})" || \\return
    \\eval "$ask_mamba"
    __mamba_hashr
}}

mamba() {{
    \\local cmd="${{1-__missing__}}"
    case "$cmd" in
        activate|reactivate|deactivate)
            __mamba_xctivate "$@"
            ;;
        install|update|upgrade|remove|uninstall)
            __mamba_exe "$@" || \\return
            __mamba_xctivate reactivate
            ;;
        *)
            __mamba_exe "$@"
            ;;
    esac
}}

if [ -z "${{CONDA_SHLVL+x}}" ]; then
    \\export CONDA_SHLVL=0
fi
"""


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _path_without(path: str, directory: str) -> list[str]:
    parts = path.split(":") if path else []
    if directory in parts:
        parts.remove(directory)
    return parts


def activation(action: str, target: str | None, root: str) -> str:
    """Shell code that activates TARGET (or deactivates), computed from the caller's environment."""
    config = load_config()
    env = os.environ
    shlvl = int(env.get("CONDA_SHLVL", "0") or 0)
    current = env.get("CONDA_PREFIX", "")
    ps1 = env.get("PS1", "")
    old_modifier = env.get("CONDA_PROMPT_MODIFIER", "")
    if old_modifier and ps1.startswith(old_modifier):
        ps1 = ps1[len(old_modifier) :]
    path = env.get("PATH", "")
    lines: list[str] = []
    if action == "reactivate":
        return ""
    if action == "deactivate":
        if shlvl <= 0 or not current:
            return ""
        parts = _path_without(path, os.path.join(current, "bin"))
        new_level = shlvl - 1
        if new_level == 0:
            lines += [
                f"export PATH={_quote(':'.join(parts))}",
                "unset CONDA_PREFIX",
                "unset CONDA_DEFAULT_ENV",
                "unset CONDA_PROMPT_MODIFIER",
                "export CONDA_SHLVL='0'",
            ]
            if config["changeps1"]:
                lines.insert(0, f"PS1={_quote(ps1)}")
            return "\n".join(lines) + "\n"
        previous = env.get(f"CONDA_PREFIX_{new_level}", root)
        parts.insert(0, os.path.join(previous, "bin"))
        name = env_name(previous, config)
        modifier = f"({name}) "
        lines += [
            f"export PATH={_quote(':'.join(parts))}",
            f"export CONDA_PREFIX={_quote(previous)}",
            f"unset CONDA_PREFIX_{new_level}",
            f"export CONDA_SHLVL='{new_level}'",
            f"export CONDA_DEFAULT_ENV={_quote(name)}",
            f"export CONDA_PROMPT_MODIFIER={_quote(modifier)}",
        ]
        if config["changeps1"]:
            lines.insert(0, f"PS1={_quote(modifier + ps1)}")
        return "\n".join(lines) + "\n"
    # activate
    if not target or target in ("base", "root"):
        prefix = root
    elif "/" in target:
        prefix = _expand(target)
    else:
        prefix = locate_named(target, config) or ""
    if not prefix or not is_env(prefix):
        if PROG == "mamba":
            missing = prefix or os.path.join(root, "envs", target or "")
            fail("EnvironmentLocationNotFound", f"Cannot activate, prefix does not exist at: '{missing}'")
        fail(
            "EnvironmentNameNotFound",
            f"Could not find conda environment: {target}\n"
            "You can list all discoverable environments with `conda info --envs`.",
        )
    if shlvl > 0 and current:
        parts = path.split(":") if path else []
        old_bin = os.path.join(current, "bin")
        if old_bin in parts:
            parts[parts.index(old_bin)] = os.path.join(prefix, "bin")
        else:
            parts.insert(0, os.path.join(prefix, "bin"))
        if os.path.normpath(current) != os.path.normpath(prefix):
            lines.append(f"export CONDA_PREFIX_{shlvl}={_quote(current)}")
            new_level = shlvl + 1
        else:
            new_level = shlvl
    else:
        parts = [os.path.join(prefix, "bin")] + _path_without(path, os.path.join(prefix, "bin"))
        new_level = 1
    name = env_name(prefix, config)
    modifier = f"({name}) "
    lines = (
        ([f"PS1={_quote(modifier + ps1)}"] if config["changeps1"] else [])
        + [
            f"export PATH={_quote(':'.join(dict.fromkeys(parts)))}",
            f"export CONDA_PREFIX={_quote(prefix)}",
            f"export CONDA_SHLVL='{new_level}'",
            f"export CONDA_DEFAULT_ENV={_quote(name)}",
            f"export CONDA_PROMPT_MODIFIER={_quote(modifier)}",
        ]
        + lines
    )
    return "\n".join(lines) + "\n"


def cmd_shell_posix(prog: str, command: str, argv: list[str]) -> int:
    shell = command.split(".", 1)[1]
    if shell not in ("posix", "bash", "zsh"):
        fail("CondaValueError", f"the stand-in has no shell integration for {shell}")
    if not argv:
        fail("ArgumentError", f"usage: conda {command} {{hook,activate,deactivate,reactivate}}")
    action, rest = argv[0], [a for a in argv[1:] if not a.startswith("-")]
    if action == "hook":
        sys.stdout.write(posix_hook(ROOT_PREFIX, bool(load_config()["auto_activate_base"])))
        return 0
    if action in ("activate", "deactivate", "reactivate"):
        sys.stdout.write(activation(action, rest[0] if rest else None, ROOT_PREFIX))
        return 0
    fail("ArgumentError", f"unknown shell action: {action}")


def cmd_shell_mamba(prog: str, command: str, argv: list[str]) -> int:
    parser = _parser(prog, command)
    parser.add_argument("action", choices=["init", "deinit", "reinit", "hook", "activate", "deactivate", "reactivate"])
    parser.add_argument("env", nargs="?")
    parser.add_argument("-s", "--shell")
    parser.add_argument("-r", "--root-prefix")
    parser.add_argument("-p", "--prefix")
    parser.add_argument("-n", "--name")
    parser.add_argument("-d", "--dry-run", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-y", "--yes", action="store_true")
    args = parser.parse_args(argv)
    _set_json(args)
    shell = args.shell or os.path.basename(os.environ.get("SHELL", "bash")) or "bash"
    if shell not in ("bash", "zsh", "posix"):
        fail("CondaValueError", f"the stand-in has no shell integration for {shell}")
    root = _expand(args.root_prefix or os.environ.get("MAMBA_ROOT_PREFIX") or ROOT_PREFIX)
    exe = os.path.join(ROOT_PREFIX, "bin", "mamba")
    if args.action == "hook":
        sys.stdout.write(mamba_hook(root, exe, "bash" if shell == "posix" else shell))
        return 0
    if args.action in ("activate", "deactivate", "reactivate"):
        target = args.prefix or args.name or args.env
        sys.stdout.write(activation(args.action, target, root))
        return 0
    if shell == "posix":
        fail("CondaValueError", "shell init needs bash or zsh")
    path = rc_file(shell)
    if args.action == "deinit":
        print(
            f'Removing the following in your "{path}" file\n# >>> mamba initialize >>>\n...\n'
            "# <<< mamba initialize <<<"
        )
        apply_rc(path, MAMBA_BLOCK, None, args.dry_run)
        return 0
    block = mamba_block(shell, root, exe)
    print(
        f'Modifying RC file "{path}"\nGenerating config for root prefix "{root}"\n'
        f'Setting mamba executable to: "{exe}"\nAdding (or replacing) the following in your "{path}" file\n'
    )
    print(block)
    if args.dry_run:
        print("Running `shell init` in dry-run mode")
    apply_rc(path, MAMBA_BLOCK, block, args.dry_run)
    return 0


def cmd_activate_binary(prog: str, command: str, argv: list[str]) -> int:
    if prog == "mamba":
        sys.stderr.write(
            "\n'mamba' is running as a subprocess and can't modify the parent shell.\n"
            "Thus you must initialize your shell before using activate and deactivate.\n\n"
            "To initialize the current bash shell, run:\n"
            '    $ eval "$(mamba shell hook --shell bash)"\n'
            "and then activate or deactivate with:\n    $ mamba activate\n"
            "To automatically initialize all future (bash) shells, run:\n"
            "    $ mamba shell init --shell bash --root-prefix=~/.local/share/mamba\n\n"
        )
        return 1
    fail("CondaError", "Run 'conda init' before 'conda activate'")


# --------------------------------------------------------------------------
# Installer hook
# --------------------------------------------------------------------------


def cmd_postinstall(prog: str, command: str, argv: list[str]) -> int:
    """Called once by the installer: base records, history, profile scripts, .condarc."""
    parser = _parser(prog, command)
    parser.add_argument("--cmd", default="Miniforge3-standin.sh")
    args = parser.parse_args(argv)
    prefix = ROOT_PREFIX
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
    wanted = ["python", "pip"] + (["setuptools"] if "setuptools" in _index() else []) + ["conda", "mamba"]
    linked: list[str] = []
    for name in wanted:
        version = _root_python_version() if name == "python" else index_versions(name)[0]
        pkg = index_package(name, version, None)
        current = records.get(name)
        if current and current["version"] == pkg.version and current["build"] == pkg.build:
            record = current
        else:
            record = link_package(prefix, pkg, "")
        linked.append(history_dist(record))
    specs = [
        f"python={'.'.join(_root_python_version().split('.')[:2])}",
        f"conda=={CONDA_VERSION}",
        f"mamba=={MAMBA_VERSION}",
        "pip",
    ]
    open(history_path(prefix), "w", encoding="utf-8").close()
    append_history(prefix, args.cmd, [], linked, specs, [], stamp=INSTALLER_STAMP)
    return 0


# --------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------


def _set_json(args: argparse.Namespace) -> None:
    global JSON_ERRORS
    JSON_ERRORS = bool(getattr(args, "json", False))


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
    global PROG
    PROG = "mamba" if os.path.basename(argv[0]).startswith("mamba") else "conda"
    try:
        return dispatch(PROG, argv[1:])
    except SolveError as error:
        sys.stderr.write(error.render() + "\n")
        return 1
    except BrokenPipeError:
        # The reader went away (e.g. '| head'): say nothing more, like conda.
        sys.stderr.close()
        return 1
    except CondaError as error:
        if JSON_ERRORS:
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


if __name__ == "__main__":
    sys.exit(main(sys.argv))
STANDIN_FRONT_END
} > "$FRONT_END"
chmod 0755 "$FRONT_END"
cp -p "$FRONT_END" "$PREFIX/bin/mamba"
cp -p "$FRONT_END" "$PREFIX/condabin/conda"
mv -f "$FRONT_END" "$PREFIX/bin/conda"

# 3. Like the real installer (constructor's header.sh, register_envs), make
#    ~/.conda, under set -eu: a ~/.conda that cannot be created (a file, a
#    dangling link) aborts the install here, before conda-meta is written.
test -d ~/.conda || mkdir -p ~/.conda >/dev/null 2>/dev/null || test -d ~/.conda || mkdir ~/.conda

# 4. conda-meta records, history, profile scripts and .condarc. Like the real
#    payload, on -u or -f too: history and .condarc are replaced, not merged.
"$PREFIX/bin/conda" _standin-postinstall --cmd "$THIS_PATH $ORIGINAL_ARGS"

echo "installation finished."
