"""Render the prerun role's templates the way Ansible does, without running Ansible.

The role's defaults, and the storage_links role's that it reads (the link
entries and the storage paths), are read from defaults/main.yml and resolved
against each other (and against overrides) with Jinja2, so a test sees the same
values a play would. The Ansible filters the templates use are provided here with
Ansible's semantics; the collection's link_entries filter is the real one.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import jinja2
import jinja2.nativetypes
import pytest
import yaml
from ansible_collections.reforge.workstation.plugins.filter.link_entries import link_entries

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "prerun"
# The prerun role imports the storage_links role's defaults and vars: the link entries' one definition.
DEFAULTS = (REPO / "roles" / "storage_links" / "defaults" / "main.yml", ROLE / "defaults" / "main.yml",
            REPO / "roles" / "storage_links" / "vars" / "main.yml")
ANSIBLE_MANAGED = "Ansible managed: do not edit, changes are overwritten"


def ansible_quote(value: Any) -> str:
    return shlex.quote("" if value is None else str(value))


def ansible_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("yes", "on", "1", "true", "y", "t")


def _environment(native: bool) -> jinja2.Environment:
    cls = jinja2.nativetypes.NativeEnvironment if native else jinja2.Environment
    env = cls(undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True)
    env.filters["quote"] = ansible_quote
    env.filters["bool"] = ansible_bool
    env.filters["to_json"] = json.dumps
    env.filters["zip"] = lambda first, *others: list(zip(first, *others))
    env.filters["reforge.workstation.link_entries"] = link_entries
    return env


def resolve_defaults(overrides: dict[str, Any], facts_home: str) -> dict[str, Any]:
    """The role defaults with overrides applied, every template expression resolved."""
    defaults: dict[str, Any] = {}
    for path in DEFAULTS:
        defaults.update(yaml.safe_load(path.read_text()))
    context: dict[str, Any] = {
        **defaults,
        **overrides,
        "ansible_facts": {"user_dir": facts_home},
        "ansible_managed": ANSIBLE_MANAGED,
        # roles/prerun/vars/main.yml reads it with the file lookup; the same file here.
        "__prerun_engine_source": (REPO / "plugins" / "module_utils" / "storage_engine.py").read_text().rstrip(),
    }
    native = _environment(native=True)
    for _ in range(10):
        changed = False
        for key, value in list(context.items()):
            if isinstance(value, str) and "{{" in value:
                try:
                    rendered = native.from_string(value).render(context)
                except jinja2.UndefinedError:
                    continue
                if rendered != value:
                    context[key] = rendered
                    changed = True
        if not changed:
            break
    unresolved = [k for k, v in context.items() if isinstance(v, str) and "{{" in v]
    assert not unresolved, f"defaults that do not resolve: {unresolved}"
    return context


def render(template: str, overrides: dict[str, Any] | None = None, facts_home: str = "/root") -> str:
    """Render roles/prerun/templates/<template> with the role defaults plus overrides."""
    context = resolve_defaults(overrides or {}, facts_home)
    source = (ROLE / "templates" / template).read_text()
    return _environment(native=False).from_string(source).render(context)


@pytest.fixture
def render_template() -> Callable[..., str]:
    return render


# Running the rendered script ---------------------------------------------------
class Workspace:
    """A temp tree standing in for a Paperspace notebook: home, /storage and /notebooks."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.storage = root / "storage"
        self.notebooks = root / "notebooks"
        for folder in (self.home, self.storage, self.notebooks):
            folder.mkdir(parents=True, exist_ok=True)
        self.script = root / "pre-run.sh"

    @property
    def state(self) -> Path:
        return self.storage / ".reforge"

    @property
    def log(self) -> Path:
        return self.state / "pre-run.log"

    def overrides(self, **extra: Any) -> dict[str, Any]:
        return {
            "storage_links_storage_dir": str(self.storage),
            "storage_links_home_dir": str(self.home),
            "storage_links_notebooks_dir": str(self.notebooks),
            **extra,
        }

    def render(self, **extra: Any) -> Path:
        self.script.write_text(render("storage/pre-run.sh.j2", self.overrides(**extra)))
        return self.script

    def render_bash_local(self, **extra: Any) -> Path:
        path = self.root / "bash.local"
        path.write_text(render("storage/bash.local.j2", self.overrides(**extra)))
        return path


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


@pytest.fixture(scope="session")
def make_workspace() -> type[Workspace]:
    """The Workspace class, for tests that place a workspace themselves."""
    return Workspace


@pytest.fixture(scope="session")
def ansible_managed() -> str:
    return ANSIBLE_MANAGED


@pytest.fixture
def nonroot_user() -> Iterator[tuple[int, int]]:
    """A uid/gid to run as when the tests run as root (setpriv drops to it); the current ids otherwise."""
    if os.geteuid() != 0:
        yield os.getuid(), os.getgid()
        return
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot act as a non-root user")
    nobody = pwd.getpwnam("nobody")
    yield nobody.pw_uid, nobody.pw_gid
