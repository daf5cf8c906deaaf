"""Shared fixtures for the unit tests of the collection's modules and module_utils.

The tests import the collection's code by its real name,
``ansible_collections.reforge.workstation.plugins.…``: under ``ansible-test units``
its collection loader finds it; under plain pytest, pytest.ini puts the checkout's
collections/ (a link to the repository root under that name) on sys.path.

``AnsibleModule.run_command`` is replaced by :class:`FakeRunner`, which answers
with output in the formats real conda/mamba print (see
molecule/shared/standin/README.md). Host names in ``base_url`` are
placeholders.
"""

from __future__ import annotations

import json
import os
import types
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


CHANNEL_URL = "https://channels.invalid/conda-forge"
PYPI_URL = "https://pypi.invalid/"


# Output builders in conda's formats ------------------------------------------
def record(name: str, version: str, build: str = "pyhd8ed1ab_0", platform: str = "noarch",
           channel: str = "conda-forge") -> Dict[str, Any]:
    """One `conda list --json` entry (also the shape of LINK/UNLINK entries)."""
    if channel == "pypi":
        return {
            "base_url": PYPI_URL,
            "build_number": 0,
            "build_string": "pypi_0",
            "channel": "pypi",
            "dist_name": "%s-%s-pypi_0" % (name, version),
            "name": name,
            "platform": "pypi",
            "version": version,
        }
    return {
        "base_url": CHANNEL_URL,
        "build_number": 0,
        "build_string": build,
        "channel": channel,
        "dist_name": "%s-%s-%s" % (name, version, build),
        "name": name,
        "platform": platform,
        "version": version,
    }


def base_records() -> List[Dict[str, Any]]:
    """A Miniforge root prefix with fastcore from conda and fastbook from pip."""
    return [
        record("conda", "24.11.3", "py312h7900ff3_0", "linux-64"),
        record("fastbook", "0.0.29", channel="pypi"),
        record("fastcore", "1.5.29"),
        record("mamba", "2.0.5", "h7e4ac8a_0", "linux-64"),
        record("pip", "24.3.1"),
        record("python", "3.12.7", "hc5c86c4_0_cpython", "linux-64"),
    ]


def list_json(records: Sequence[Dict[str, Any]]) -> str:
    return json.dumps(list(records), indent=2, sort_keys=True)


def dry_run_json(prefix: str, link: Sequence[Dict[str, Any]] = (),
                 unlink: Sequence[Dict[str, Any]] = (), fetch: Optional[Sequence[Dict[str, Any]]] = None) -> str:
    """conda's --dry-run --json transaction report."""
    return json.dumps({
        "actions": {
            "FETCH": list(link if fetch is None else fetch),
            "LINK": list(link),
            "PREFIX": prefix,
            "UNLINK": list(unlink),
        },
        "dry_run": True,
        "prefix": prefix,
        "success": True,
    }, indent=2, sort_keys=True)


def real_run_json(prefix: str, link: Sequence[Dict[str, Any]] = (), unlink: Sequence[Dict[str, Any]] = ()) -> str:
    return json.dumps({
        "actions": {"FETCH": list(link), "LINK": list(link), "PREFIX": prefix, "UNLINK": list(unlink)},
        "prefix": prefix,
        "success": True,
    }, indent=2, sort_keys=True)


NOTHING_TO_DO_JSON = json.dumps({"message": "All requested packages already installed.", "success": True},
                                indent=2, sort_keys=True)


def mamba_not_found(*names: str) -> str:
    """mamba/libmamba's plain-text report for specs that match no package."""
    if len(names) == 1:
        lines = ["    The following package could not be installed",
                 "    └─ %s =* * does not exist (perhaps a typo or a missing channel)." % names[0]]
    else:
        lines = ["    The following packages are incompatible"]
        for index, name in enumerate(names):
            last = index == len(names) - 1
            lines.append("    %s─ %s =* * does not exist (perhaps a typo or a missing channel)%s"
                         % ("└" if last else "├", name, "." if last else ";"))
    return "\n".join(["error    libmamba Could not solve for environment specs"] + lines
                     + ["critical libmamba Could not solve for environment specs", ""])


def mamba_not_installable(name: str, constraint: str) -> str:
    """libmamba's report when a version constraint conflicts."""
    return "\n".join([
        "error    libmamba Could not solve for environment specs",
        "    The following packages are incompatible",
        "    ├─ fastai =* * is installable and it requires",
        "    │  └─ %s >=3.10 *, which can be installed;" % name,
        "    └─ %s %s * is not installable because it conflicts with any installable versions "
        "previously reported." % (name, constraint),
        "critical libmamba Could not solve for environment specs",
        "",
    ])


def info_json(root: str, envs: Sequence[str] = (), envs_dirs: Optional[Sequence[str]] = None) -> str:
    """`conda info --json`, trimmed to the keys that matter plus a few real ones."""
    return json.dumps({
        "active_prefix": None,
        "channels": [CHANNEL_URL + "/linux-64", CHANNEL_URL + "/noarch"],
        "conda_version": "24.11.3",
        "envs": [root] + list(envs),
        "envs_dirs": list(envs_dirs) if envs_dirs is not None else [os.path.join(root, "envs")],
        "pkgs_dirs": [os.path.join(root, "pkgs")],
        "platform": "linux-64",
        "root_prefix": root,
    }, indent=2, sort_keys=True)


HELPERS = types.SimpleNamespace(
    record=record,
    base_records=base_records,
    list_json=list_json,
    dry_run_json=dry_run_json,
    real_run_json=real_run_json,
    nothing_to_do_json=NOTHING_TO_DO_JSON,
    mamba_not_found=mamba_not_found,
    mamba_not_installable=mamba_not_installable,
    info_json=info_json,
)


@pytest.fixture
def cj() -> types.SimpleNamespace:
    """Builders of conda's JSON and error output."""
    return HELPERS


# The fake run_command ---------------------------------------------------------
class Rule:
    def __init__(self, tokens: Sequence[str], rc: int, out: str, err: str, exe: Optional[str],
                 without: Sequence[str], ending: Optional[Sequence[str]], times: Optional[int],
                 effect: Optional[Callable[[], None]]) -> None:
        self.tokens = list(tokens)
        self.rc, self.out, self.err = rc, out, err
        self.exe = exe
        self.without = list(without)
        self.ending = list(ending) if ending is not None else None
        self.times = times
        self.effect = effect

    def matches(self, args: List[str]) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.exe is not None and os.path.basename(args[0]) != self.exe:
            return False
        if any(token not in args[1:] for token in self.tokens):
            return False
        if any(token in args[1:] for token in self.without):
            return False
        if self.ending is not None and args[len(args) - len(self.ending):] != self.ending:
            return False
        return True


class FakeRunner:
    """Answers run_command calls from rules; the first matching rule wins.

    Any command no rule expects fails the test, so a test also proves that
    nothing else (a real transaction in check mode, say) was run.
    """

    def __init__(self) -> None:
        self.rules: List[Rule] = []
        self.calls: List[List[str]] = []
        self.kwargs: List[Dict[str, Any]] = []

    def on(self, *tokens: str, rc: int = 0, out: str = "", err: str = "", exe: Optional[str] = None,
           without: Sequence[str] = (), ending: Optional[Sequence[str]] = None, times: Optional[int] = None,
           effect: Optional[Callable[[], None]] = None) -> "FakeRunner":
        self.rules.append(Rule(tokens, rc, out, err, exe, without, ending, times, effect))
        return self

    def __call__(self, _module: Any, args: Any, **kwargs: Any) -> Tuple[int, str, str]:
        assert isinstance(args, list), "run_command must get an argument list, got %r" % (args,)
        self.calls.append(list(args))
        self.kwargs.append(kwargs)
        for rule in self.rules:
            if rule.matches(list(args)):
                if rule.times is not None:
                    rule.times -= 1
                if rule.effect is not None:
                    rule.effect()
                return rule.rc, rule.out, rule.err
        raise AssertionError("unexpected command: %r" % (args,))

    def find(self, *tokens: str, without: Sequence[str] = ()) -> List[List[str]]:
        """The calls that contain all tokens and none of `without`."""
        return [call for call in self.calls
                if all(t in call[1:] for t in tokens) and not any(t in call[1:] for t in without)]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    runner = FakeRunner()

    def run_command(self: Any, args: Any, **kwargs: Any) -> Tuple[int, str, str]:
        return runner(self, args, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return runner


# Running a module -------------------------------------------------------------
class ModuleExit(Exception):
    def __init__(self, failed: bool, result: Dict[str, Any]) -> None:
        super().__init__(result.get("msg", ""))
        self.failed = failed
        self.result = result


@pytest.fixture
def raised(monkeypatch: pytest.MonkeyPatch) -> Dict[str, List[str]]:
    """The warnings and deprecations a module raises through AnsibleModule.warn/deprecate.

    Collected here, per test, rather than read from ansible-core's process-wide
    store: that store is bypassed once any controller part of Ansible is imported
    into the process (tests/cli does, in the same pytest run; warnings then go to
    the controller's Display), and it would carry one test's warnings into the next.
    """
    collected: Dict[str, List[str]] = {"warnings": [], "deprecations": []}

    def warn(_self: Any, warning: str, *args: Any, **kwargs: Any) -> None:
        collected["warnings"].append(warning)

    def deprecate(_self: Any, msg: str, *args: Any, **kwargs: Any) -> None:
        collected["deprecations"].append(msg)

    monkeypatch.setattr(basic.AnsibleModule, "warn", warn)
    monkeypatch.setattr(basic.AnsibleModule, "deprecate", deprecate)
    return collected


@pytest.fixture
def run_module(monkeypatch: pytest.MonkeyPatch,
               raised: Dict[str, List[str]]) -> Callable[..., Tuple[bool, Dict[str, Any]]]:
    """run_module(module, args, check_mode=False, diff=False) -> (failed, result).

    The result is what the module passed to exit_json/fail_json, plus the
    ``warnings`` and ``deprecations`` it raised during this run, as Ansible
    would add them.
    """
    def finish(failed: bool, result: Dict[str, Any]) -> None:
        for key, values in raised.items():
            if values:
                result[key] = list(values)
        raise ModuleExit(failed, result)

    def exit_json(_self: Any, **kwargs: Any) -> None:
        finish(False, kwargs)

    def fail_json(_self: Any, msg: str = "", **kwargs: Any) -> None:
        kwargs["msg"] = msg
        finish(True, kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def run(module: Any, args: Dict[str, Any], check_mode: bool = False,
            diff: bool = False) -> Tuple[bool, Dict[str, Any]]:
        full = dict(args)
        full["_ansible_check_mode"] = check_mode
        full["_ansible_diff"] = diff
        for values in raised.values():
            values.clear()
        with patch_module_args(full):
            with pytest.raises(ModuleExit) as exited:
                module.main()
        return exited.value.failed, exited.value.result

    return run


def make_executable(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 99\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def root_prefix(tmp_path: Path) -> Iterator[Path]:
    """An installed root prefix on disk: conda-meta/, bin/conda, bin/mamba, bin/python."""
    root = tmp_path / "miniforge3"
    (root / "conda-meta").mkdir(parents=True)
    (root / "conda-meta" / "history").write_text("")
    for tool in ("conda", "mamba", "python"):
        make_executable(root / "bin" / tool)
    (root / "envs").mkdir()
    yield root


@pytest.fixture
def make_env() -> Callable[[Path], Path]:
    """Turn a directory into a conda environment (what conda create leaves)."""
    def make(path: Path) -> Path:
        (path / "conda-meta").mkdir(parents=True, exist_ok=True)
        (path / "conda-meta" / "history").write_text("")
        return path
    return make


# The modules' documentation (the rest is tests/unit/plugins/doc_fragments) --------
def undocumented_keys(module: Any, result: Dict[str, Any]) -> List[str]:
    """Result keys missing from RETURN (Ansible's own keys aside)."""
    import yaml

    documented = set(yaml.safe_load(module.RETURN))
    ansible_keys = {"diff", "invocation", "warnings", "deprecations", "failed", "msg"}
    return sorted(set(result) - documented - ansible_keys)


HELPERS.undocumented_keys = undocumented_keys
