"""Find the reforge project (ansible.cfg + playbooks/) and its playbooks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reforge.errors import UsageError

PROJECT_ENV = "REFORGE_PROJECT"

# Subcommand -> (playbook relative to the project, one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    "rebuild": ("playbooks/rebuild_base.yml", "wipe and rebuild the base environment (the main job)"),
    "converge": ("playbooks/base.yml", "converge the base environment without wiping it"),
    "teardown": ("playbooks/teardown.yml", "remove the prefix and its shell init"),
    "paperspace": ("playbooks/paperspace.yml", "first setup of a Paperspace Gradient machine"),
    "startup": ("playbooks/startup.yml", "what runs at each start of a Paperspace machine"),
    "doctor": ("playbooks/doctor.yml", "diagnose interpreters, user site, links, keys, disk and GPU"),
    "rollback": ("playbooks/rollback.yml", "undo an interrupted rebuild, or bring back a kept generation"),
    "generations": ("playbooks/generations.yml", "list the prefix and the generations a rebuild kept"),
}


# Subcommands whose playbooks target the Paperspace inventory unless -i says otherwise.
DEFAULT_INVENTORIES: dict[str, str] = {
    "paperspace": "inventory/paperspace.yml",
    "startup": "inventory/paperspace.yml",
}


@dataclass(frozen=True)
class Project:
    """A project directory: where ansible-playbook runs and its ansible.cfg."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "ansible.cfg"

    def secret_options(self) -> set[str]:
        """Names of the role options that the roles' argument specs mark `no_log: true`."""
        # Imported when a run is prepared, not at the top: help stays fast.
        import yaml  # pylint: disable=import-outside-toplevel

        names: set[str] = set()
        for spec_file in sorted(self.root.glob("roles/*/meta/argument_specs.yml")):
            try:
                data = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue
            specs = data.get("argument_specs") if isinstance(data, dict) else None
            for entry in (specs or {}).values():
                if isinstance(entry, dict):
                    names |= _no_log_options(entry.get("options"))
        return names

    def playbook(self, command: str) -> Path:
        """The playbook of a subcommand; a missing file is a usage error."""
        relative = COMMANDS[command][0]
        path = self.root / relative
        if not path.is_file():
            raise UsageError(f"reforge {command}: {relative} does not exist in {self.root}")
        return path


def _no_log_options(options: Any) -> set[str]:
    """no_log option names in an argument spec's options, suboptions included."""
    names: set[str] = set()
    if not isinstance(options, dict):
        return names
    for name, spec in options.items():
        if isinstance(spec, dict):
            if spec.get("no_log") is True:
                names.add(str(name))
            names |= _no_log_options(spec.get("options"))
    return names


def is_project(path: Path) -> bool:
    return (path / "ansible.cfg").is_file() and (path / "playbooks").is_dir()


def _ancestors(start: Path) -> Iterator[Path]:
    start = start.resolve()
    yield start
    yield from start.parents


def _search_up(start: Path) -> Path | None:
    return next((path for path in _ancestors(start) if is_project(path)), None)


def _explicit(value: str, origin: str) -> Project:
    path = Path(value).expanduser().resolve()
    if not is_project(path):
        raise UsageError(f"{origin} {value}: not a reforge project (it needs ansible.cfg and playbooks/)")
    return Project(path)


def find_project(option: str | None, environ: Mapping[str, str], cwd: Path) -> Project:
    """--project, then $REFORGE_PROJECT, then the checkout this package was
    installed from (editable install), then the current directory's ancestors."""
    if option:
        return _explicit(option, "--project")
    if environ.get(PROJECT_ENV):
        return _explicit(environ[PROJECT_ENV], PROJECT_ENV)
    found = _search_up(Path(__file__).parent) or _search_up(cwd)
    if found is None:
        raise UsageError(
            "cannot find the reforge project (a directory with ansible.cfg and playbooks/): "
            f"use --project DIR or set {PROJECT_ENV}"
        )
    return Project(found)
