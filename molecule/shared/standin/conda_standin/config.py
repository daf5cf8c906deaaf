"""Configuration (``.condarc`` files, a YAML subset) and the choice of target environment.
"""

import argparse
import os
import re
from typing import Any

from . import common
from .common import fail
from .prefix import is_env


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
        os.path.join(common.ROOT_PREFIX, ".condarc"),
        os.path.join(common.ROOT_PREFIX, "condarc"),
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
        or [os.path.join(common.ROOT_PREFIX, "pkgs"), os.path.join(home(), ".conda", "pkgs")],
        "envs_dirs": [_expand(p) for p in merged.get("envs_dirs") or []]
        or [os.path.join(common.ROOT_PREFIX, "envs"), os.path.join(home(), ".conda", "envs")],
        # conda 26 renamed auto_activate_base to auto_activate; the old name is an alias.
        "auto_activate": merged.get("auto_activate", merged.get("auto_activate_base", True)),
        "auto_activate_base": merged.get("auto_activate", merged.get("auto_activate_base", True)),
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
    if os.path.normpath(prefix) == os.path.normpath(common.ROOT_PREFIX):
        return "base"
    if os.path.dirname(os.path.normpath(prefix)) in [os.path.normpath(d) for d in config["envs_dirs"]]:
        return os.path.basename(os.path.normpath(prefix))
    return prefix


def locate_named(name: str, config: dict[str, Any]) -> str | None:
    if name in ("base", "root"):
        return common.ROOT_PREFIX
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
    root = os.environ.get("MAMBA_ROOT_PREFIX", "") if common.PROG == "mamba" else ""
    if not root:
        return dict(config, root_prefix=common.ROOT_PREFIX)
    root = _expand(root)
    own = os.path.join(common.ROOT_PREFIX, "envs")
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
        prefix = active if active and is_env(active) and not creating else common.ROOT_PREFIX
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
    found.discard(common.ROOT_PREFIX)
    return [common.ROOT_PREFIX] + sorted(found)
