"""Check -e/--extra-vars before the run, and learn which values are secret.

Values are parsed the way ansible-playbook reads them (`@file`, a YAML/JSON
mapping, or key=value pairs) only to find secrets and to refuse unreadable
input with a clear message; ansible-playbook still receives them as given
(files with an absolute path, because the run's working directory is the
project). Inline values reach ansible-playbook through a private file (see
runner.py), never on its command line. Error messages never quote a value: it
may be a secret.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reforge.errors import UsageError
from reforge.secrets import secret_values

if TYPE_CHECKING:
    import yaml

VAULT_HEADER = "$ANSIBLE_VAULT"


# yaml and ansible are imported where they are needed, not at the top: `reforge
# --help` and the refusals that need neither stay fast (tests/cli/test_cli_imports.py).
@cache
def _tolerant_loader() -> type[yaml.SafeLoader]:
    """SafeLoader that reads Ansible's tags (!vault, !unsafe) as plain data."""
    import yaml  # pylint: disable=import-outside-toplevel,redefined-outer-name

    class TolerantLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
        pass

    TolerantLoader.add_multi_constructor("!", _construct_tagged)
    return TolerantLoader


def _construct_tagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    import yaml  # pylint: disable=import-outside-toplevel,redefined-outer-name

    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


@dataclass
class ExtraVars:
    """The -e arguments to pass on, and the secret values they hold."""

    args: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)


def _yaml_error(error: yaml.YAMLError) -> str:
    # str(error) quotes the offending line, which may hold a secret.
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or "invalid YAML"
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{problem}{where}"


def _load_mapping(text: str, origin: str) -> dict[str, Any]:
    import yaml  # pylint: disable=import-outside-toplevel,redefined-outer-name

    try:
        data = yaml.load(text, Loader=_tolerant_loader())
    except yaml.YAMLError as error:
        raise UsageError(f"{origin} is not valid YAML or JSON: {_yaml_error(error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{origin} must hold a mapping of variable names to values")
    return data


def _read_file(value: str, cwd: Path) -> tuple[str, dict[str, Any]]:
    name = value[1:]
    if not name:
        raise UsageError("-e @: a file name must follow the @")
    path = (cwd / Path(name).expanduser()).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise UsageError(f"cannot read extra vars file {name}: {reason}") from None
    if text.lstrip().startswith(VAULT_HEADER):
        # Encrypted as a whole: ansible-playbook decrypts it; its values stay unknown here.
        return f"@{path}", {}
    return f"@{path}", _load_mapping(text, f"extra vars file {name}")


def _parse_inline(value: str) -> dict[str, Any]:
    if value.lstrip().startswith(("{", "[")):
        return _load_mapping(value, "an -e value")
    from ansible.errors import AnsibleError  # pylint: disable=import-outside-toplevel
    from ansible.parsing.splitter import parse_kv  # pylint: disable=import-outside-toplevel

    try:
        pairs: dict[str, Any] = parse_kv(value)
    except AnsibleError:
        raise UsageError("an -e value is not valid key=value pairs (check its quoting)") from None
    return pairs


def load_extra_vars(values: list[str], cwd: Path, secret_names: Collection[str] = ()) -> ExtraVars:
    """Validate every -e value; file names become absolute paths.

    `secret_names` are the variables the roles' argument specs mark no_log."""
    result = ExtraVars()
    for value in values:
        if value.startswith("@"):
            arg, data = _read_file(value, cwd)
        else:
            arg, data = value, _parse_inline(value)
        result.args.append(arg)
        result.secrets |= secret_values(data, secret_names)
    return result


def file_text(value: str) -> str:
    """The content of an extra-vars file that means what the inline -e value means.

    YAML/JSON is kept verbatim (its tags, !unsafe included, mean the same in a
    file); key=value pairs become JSON strings, as ansible-playbook reads them."""
    if value.lstrip().startswith(("{", "[")):
        return value
    return json.dumps(_parse_inline(value))
