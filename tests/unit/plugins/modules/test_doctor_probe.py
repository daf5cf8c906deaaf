"""Unit tests of plugins/modules/doctor_probe.py and the module_utils it runs
(plugins/module_utils/doctor_interpreters.py and doctor_files.py).

Commands, scripts and shebangs are real files in a temporary tree; only running an
interpreter (`run_command`) is replaced, by answers in the probe's own output format.
The probe itself is run for real once, with the Python running the tests, and the
login shell is a real script that prints noise, as profile files do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from ansible.module_utils import basic
from ansible_collections.reforge.workstation.plugins.module_utils import doctor_files as ff
from ansible_collections.reforge.workstation.plugins.module_utils import doctor_interpreters as pi
from ansible_collections.reforge.workstation.plugins.modules import doctor_probe as dp

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56


# A fake machine ------------------------------------------------------------------
def facts(executable: str, version: str = "3.11.2", prefix: str = "/usr", user_site_enabled: Optional[bool] = True,
          home: str = "/home/me", in_virtualenv: bool = False, user_site_on_path: bool = True,
          realpath: Optional[str] = None, externally_managed: bool = False) -> dict[str, Any]:
    """What the probe prints about an interpreter."""
    short = ".".join(version.split(".")[:2])
    return {
        "executable": executable,
        "realpath": realpath or executable,
        "version": version,
        "prefix": prefix,
        "base_prefix": "/usr" if in_virtualenv else prefix,
        "in_virtualenv": in_virtualenv,
        "user_site_enabled": user_site_enabled,
        "user_site": "%s/.local/lib/python%s/site-packages" % (home, short),
        "user_site_exists": user_site_on_path,
        "user_site_on_path": bool(user_site_enabled) and user_site_on_path,
        "purelib": "%s/lib/python%s/site-packages" % (prefix, short),
        "externally_managed": externally_managed,
    }


class Machine:
    """A temporary tree of bin directories, and the interpreters' answers to the probe."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.answers: dict[str, tuple[int, str, str]] = {}
        self.calls: list[list[str]] = []
        self.environ: list[Optional[dict[str, str]]] = []

    def path(self, *dirs: str) -> str:
        return os.pathsep.join(str(self.root / d.lstrip("/")) for d in dirs)

    def p(self, path: str) -> str:
        """A path inside the tree."""
        return str(self.root / path.lstrip("/"))

    def binary(self, path: str, probe: Optional[dict[str, Any]] = None, **kwargs: Any) -> str:
        """An ELF executable; an interpreter when it answers the probe."""
        full = Path(self.p(path))
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(ELF)
        full.chmod(0o755)
        if probe is not None or kwargs or pi.is_python_name(path):
            self.answer(str(full), probe or facts(str(full), **kwargs))
        return str(full)

    def script(self, path: str, shebang: str, body: str = "") -> str:
        full = Path(self.p(path))
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text("#!%s\n%s" % (shebang, body))
        full.chmod(0o755)
        return str(full)

    def link(self, path: str, target: str) -> str:
        full = Path(self.p(path))
        full.parent.mkdir(parents=True, exist_ok=True)
        full.symlink_to(target)
        if target in self.answers:
            # An interpreter run through a link reports the link as sys.executable.
            probe = self.probe_of(target)
            self.answer(str(full), dict(probe, executable=str(full), realpath=probe["realpath"]))
        return str(full)

    def probe_of(self, interpreter: str) -> dict[str, Any]:
        probe = pi.parse_probe(self.answers[interpreter][1])
        assert probe is not None
        return probe

    def answer(self, interpreter: str, probe: dict[str, Any], noise: str = "") -> None:
        self.answers[interpreter] = (0, noise + pi.MARKER + json.dumps(probe) + "\n", "")

    def fail(self, interpreter: str, rc: int, err: str) -> None:
        self.answers[interpreter] = (rc, "", err)

    def run_command(self, _module: Any, args: Any, **kwargs: Any) -> tuple[int, str, str]:
        assert isinstance(args, list), "run_command must get an argument list, got %r" % (args,)
        self.calls.append(list(args))
        self.environ.append(kwargs.get("environ_update"))
        if args[1:] == ["-c", pi.PROBE]:
            if args[0] in self.answers:
                return self.answers[args[0]]
            raise AssertionError("no interpreter at %s" % args[0])
        if os.path.basename(args[0]) == "pyenv" and args[1] == "which":
            return self.answers.get("pyenv which " + args[2], (127, "", "pyenv: %s: command not found" % args[2]))
        raise AssertionError("unexpected command: %r" % (args,))

    def probes(self) -> list[str]:
        return [call[0] for call in self.calls if call[1:] == ["-c", pi.PROBE]]


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Machine:
    fake = Machine(tmp_path)

    def run_command(self: Any, args: Any, **kwargs: Any) -> tuple[int, str, str]:
        return fake.run_command(self, args, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return fake


@pytest.fixture
def gather(machine: Machine, run_module: Callable[..., tuple[bool, dict[str, Any]]]) -> Callable[..., dict[str, Any]]:
    """Run the module on the fake machine; return its result (it must not fail or change)."""

    def run(path: str, check_mode: bool = False, **args: Any) -> dict[str, Any]:
        failed, result = run_module(dp, dict(args, path=path), check_mode=check_mode)
        assert not failed, result
        assert result["changed"] is False
        return result

    return run


def by_check(result: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {entry["check"]: entry for entry in result["findings"]}


# The module's interface -------------------------------------------------------------
def test_every_returned_key_is_documented(machine: Machine, gather: Callable[..., dict[str, Any]], cj: Any) -> None:
    machine.binary("/usr/bin/python3", prefix="/usr")
    result = gather(machine.path("/usr/bin"))
    assert cj.undocumented_keys(dp, result) == []
    import yaml

    documented = yaml.safe_load(dp.RETURN)["commands"]["contains"]
    for info in result["commands"].values():
        assert sorted(set(info) - set(documented)) == []
        if info["python"]:
            assert sorted(set(info["python"]) ^ set(documented["python"]["contains"])) == []


def test_an_empty_path_is_refused(machine: Machine, run_module: Callable[..., Any]) -> None:
    failed, result = run_module(dp, {"path": ":"})
    assert failed
    assert "PATH to search is empty" in result["msg"]
    assert machine.calls == []


# Resolving commands -------------------------------------------------------------------
def test_the_first_executable_on_path_wins_and_the_shadowed_ones_are_listed(machine: Machine) -> None:
    first = machine.binary("/a/tool")
    (machine.root / "b").mkdir()
    (machine.root / "b" / "tool").write_text("not executable")
    third = machine.binary("/c/tool")
    dirs = ["", machine.p("/a"), machine.p("/b"), machine.p("/c")]
    assert pi.which_all("tool", dirs) == [first, third]
    assert pi.split_path(os.pathsep.join(dirs)) == dirs[1:]


def test_a_directory_reached_twice_through_a_link_is_searched_once(machine: Machine) -> None:
    real = machine.binary("/usr/bin/tool")
    machine.link("/bin", machine.p("/usr/bin"))
    assert pi.which_all("tool", [machine.p("/usr/bin"), machine.p("/bin")]) == [real]


@pytest.mark.parametrize(
    ("shebang", "expected"),
    [
        ("{root}/opt/py37/bin/python3.7", "{root}/opt/py37/bin/python3.7"),
        ("{root}/opt/py37/bin/python3.7 -E", "{root}/opt/py37/bin/python3.7"),
        ("/usr/bin/env python3", "{root}/usr/local/bin/python3"),
        ("/usr/bin/env -S python3 -u", "{root}/usr/local/bin/python3"),
        ("/usr/bin/env PYTHONNOUSERSITE=1 python3", "{root}/usr/local/bin/python3"),
    ],
)
def test_the_shebang_names_the_interpreter(machine: Machine, shebang: str, expected: str) -> None:
    machine.binary("/opt/py37/bin/python3.7")
    machine.binary("/usr/local/bin/python3")
    machine.binary("/usr/bin/python3")
    dirs = [machine.p("/usr/local/bin"), machine.p("/usr/bin")]
    root = str(machine.root)
    assert pi.shebang_interpreter(shebang.format(root=root), None, dirs) == (expected.format(root=root), "")


def test_pips_exec_trick_for_long_paths_is_followed(machine: Machine) -> None:
    interpreter = machine.binary("/opt/a very long prefix/bin/python3")
    script = machine.script("/opt/a very long prefix/bin/pip", "/bin/sh",
                            "'''exec' \"%s\" \"$0\" \"$@\"\n' '''\nimport pip\n" % interpreter)
    shebang, second, _text = pi.read_head(script)
    assert pi.shebang_interpreter(shebang, second, []) == (interpreter, "")


def test_a_shebang_through_env_to_a_missing_program_is_an_error(machine: Machine) -> None:
    interpreter, error = pi.shebang_interpreter("/usr/bin/env python3.7", None, [machine.p("/usr/bin")])
    assert interpreter is None
    assert error == "its shebang '#!/usr/bin/env python3.7' runs python3.7, which is not on PATH"


def test_the_probe_output_is_found_among_other_lines() -> None:
    probe = facts("/usr/bin/python3")
    assert pi.parse_probe("hello from sitecustomize\n" + pi.MARKER + json.dumps(probe) + "\n") == probe
    assert pi.parse_probe("no marker here\n") is None
    assert pi.parse_probe(pi.MARKER + "{not json\n") is None


def test_the_probe_runs_for_real_and_reports_this_interpreter() -> None:
    result = subprocess.run([sys.executable, "-c", pi.PROBE], capture_output=True, text=True, check=True)
    probe = pi.parse_probe(result.stdout)
    assert probe is not None
    assert probe["executable"] == sys.executable
    assert probe["prefix"] == sys.prefix
    assert probe["version"] == "%d.%d.%d" % sys.version_info[:3]
    assert probe["in_virtualenv"] == (sys.prefix != sys.base_prefix)
    import site

    assert probe["user_site"] == site.getusersitepackages()
    assert probe["user_site_enabled"] == site.ENABLE_USER_SITE
    assert probe["user_site_on_path"] == (site.getusersitepackages() in sys.path)


# Findings ----------------------------------------------------------------------------------
def test_the_classic_mismatch_names_both_interpreters(machine: Machine, gather: Callable[..., dict[str, Any]]) -> None:
    """ipython first on PATH runs another environment's Python, whose user site is disabled."""
    python3 = machine.binary("/usr/bin/python3", prefix="/usr", home="/root")
    other = machine.binary("/opt/py-other/bin/python3")
    machine.answer(other, facts(other, prefix="/opt/py-other", in_virtualenv=True, user_site_enabled=False,
                                home="/root", realpath=machine.p("/usr/bin/python3.11")))
    ipython = machine.script("/opt/py-other-tools/bin/ipython", other)
    result = gather(machine.path("/opt/py-other-tools/bin", "/usr/bin"))

    assert result["reference"] == "python3"
    assert result["reference_interpreter"] == python3
    info = result["commands"]["ipython"]
    assert (info["path"], info["kind"], info["interpreter"]) == (ipython, "script", other)
    assert info["same_interpreter_as_reference"] is False
    found = by_check(result)
    assert found["python"]["status"] == "SKIP"
    assert found["python3"]["status"] == "OK"
    assert found["ipython"] == {
        "check": "ipython",
        "status": "FAIL",
        "detail": "%s runs %s (Python 3.11.2, prefix /opt/py-other), but python3 runs %s (Python 3.11.2, prefix /usr)"
                  % (ipython, other, python3),
        "cause": "`python3 -m pip install --user X` installs for %s (3.11) into /root/.local/lib/python3.11/site-packages, "
                 "which %s does not read (its user site is disabled), so ipython cannot import X." % (python3, other),
        "fix": "Install ipython for python3 (`python3 -m pip install ipython`) or take %s off PATH, so that ipython "
               "and python3 run the same interpreter." % machine.p("/opt/py-other-tools/bin"),
    }


def test_an_ipython_on_another_python_version_cannot_import_what_python_installs(
        machine: Machine, gather: Callable[..., dict[str, Any]]) -> None:
    py37 = machine.binary("/opt/py37/bin/python3.7", version="3.7.12", prefix="/opt/py37")
    py311 = machine.binary("/usr/bin/python3.11", version="3.11.2", prefix="/usr")
    python = machine.link("/usr/bin/python", py311)
    machine.script("/opt/py37/bin/ipython", py37)
    found = by_check(gather(machine.path("/usr/bin", "/opt/py37/bin"), commands=["python", "ipython"]))
    assert found["ipython"]["status"] == "FAIL"
    assert "runs %s (Python 3.7.12, prefix /opt/py37), but python runs %s (Python 3.11.2" % (py37, python) in (
        found["ipython"]["detail"])
    assert found["ipython"]["cause"] == (
        "`python -m pip install --user X` installs for %s (3.11) into /home/me/.local/lib/python3.11/site-packages, "
        "which %s does not read (it reads /home/me/.local/lib/python3.7/site-packages instead), so ipython cannot "
        "import X." % (python, py37))


def test_the_same_user_site_in_two_environments_is_a_warning(machine: Machine,
                                                             gather: Callable[..., dict[str, Any]]) -> None:
    machine.binary("/usr/bin/python3", prefix="/usr")
    conda = machine.binary("/home/me/miniforge3/bin/python3.11", prefix="/home/me/miniforge3")
    machine.script("/home/me/miniforge3/bin/jupyter", conda)
    found = by_check(gather(machine.path("/usr/bin", "/home/me/miniforge3/bin"), commands=["python3", "jupyter"]))
    assert found["jupyter"]["status"] == "WARN"
    assert found["jupyter"]["cause"].startswith("Both read the user site /home/me/.local/lib/python3.11/site-packages")


def test_a_pip_for_another_python_installs_where_python_does_not_look(
        machine: Machine, gather: Callable[..., dict[str, Any]]) -> None:
    python = machine.binary("/usr/bin/python", version="3.11.2", prefix="/usr")
    py39 = machine.binary("/opt/py39/bin/python3.9", version="3.9.18", prefix="/opt/py39")
    pip = machine.script("/usr/local/bin/pip", py39)
    result = gather(machine.path("/usr/local/bin", "/usr/bin"), commands=["python", "pip"])
    info = result["commands"]["pip"]
    assert info["pip_user_site"] == "/home/me/.local/lib/python3.9/site-packages"
    assert info["same_interpreter_as_reference"] is False
    found = by_check(result)
    assert found["pip"]["status"] == "FAIL"
    assert found["pip"]["detail"].startswith("%s runs %s (Python 3.9.18" % (pip, py39))
    assert found["pip"]["cause"] == (
        "`pip install --user X` installs for %s (3.9) into /home/me/.local/lib/python3.9/site-packages, which %s "
        "does not read (it reads /home/me/.local/lib/python3.11/site-packages instead), so python cannot import X."
        % (py39, python))
    assert found["pip"]["fix"].startswith("Use `python -m pip install X`, which always installs for python")


def test_a_healthy_setup_is_all_ok_and_each_interpreter_runs_once(
        machine: Machine, gather: Callable[..., dict[str, Any]]) -> None:
    python3 = machine.binary("/usr/bin/python3.11", prefix="/usr")
    machine.link("/usr/bin/python3", python3)
    machine.link("/usr/local/bin/python", python3)
    machine.script("/usr/local/bin/ipython", "/usr/bin/env python3")
    machine.script("/usr/bin/pip", python3)
    machine.script("/usr/bin/pip3", python3)
    machine.answer(machine.p("/usr/local/bin/python"), facts(machine.p("/usr/local/bin/python"), realpath=python3))
    machine.answer(machine.p("/usr/bin/python3"), facts(machine.p("/usr/bin/python3"), realpath=python3))
    path = machine.path("/usr/local/bin", "/usr/bin")
    result = gather(path, check_mode=True)
    statuses = {entry["check"]: entry["status"] for entry in result["findings"]}
    assert statuses == {"python": "OK", "python3": "OK", "ipython": "OK", "jupyter": "SKIP", "pip": "OK",
                        "pip3": "OK"}
    assert [entry["check"] for entry in result["findings"]] == ["python", "python3", "ipython", "jupyter", "pip", "pip3"]
    assert result["commands"]["ipython"]["interpreter"] == machine.p("/usr/bin/python3")
    assert "the same interpreter as python" in by_check(result)["ipython"]["detail"]
    assert sorted(machine.probes()) == sorted({machine.p("/usr/local/bin/python"), machine.p("/usr/bin/python3"),
                                               python3})
    assert all(env == {"PATH": path} for env in machine.environ)


def test_python3_is_the_reference_when_there_is_no_python(machine: Machine,
                                                          gather: Callable[..., dict[str, Any]]) -> None:
    python3 = machine.binary("/usr/bin/python3")
    result = gather(machine.path("/usr/bin"), commands=["python", "python3"])
    assert result["reference"] == "python3"
    assert result["reference_interpreter"] == python3
    assert by_check(result)["python"] == {"check": "python", "status": "SKIP", "detail": "not on PATH",
                                          "cause": "", "fix": ""}


def test_a_reference_outside_the_commands_is_added_to_the_report(machine: Machine,
                                                                 gather: Callable[..., dict[str, Any]]) -> None:
    python3 = machine.binary("/usr/bin/python3")
    machine.script("/usr/bin/pip3", python3)
    result = gather(machine.path("/usr/bin"), commands=["pip3"], reference=["python3"])
    assert [entry["check"] for entry in result["findings"]] == ["pip3", "python3"]
    assert by_check(result)["pip3"]["status"] == "OK"


def test_pythonnousersite_on_the_reference_is_a_warning_but_a_virtualenv_is_not(
        machine: Machine, gather: Callable[..., dict[str, Any]]) -> None:
    machine.binary("/usr/bin/python3", user_site_enabled=False)
    found = by_check(gather(machine.path("/usr/bin"), commands=["python3"]))
    assert found["python3"]["status"] == "WARN"
    assert "PYTHONNOUSERSITE" in found["python3"]["cause"]

    machine.binary("/venv/bin/python3", prefix="/venv", in_virtualenv=True, user_site_enabled=False)
    found = by_check(gather(machine.path("/venv/bin"), commands=["python3"]))
    assert found["python3"]["status"] == "OK"
    assert "a virtual environment; pip refuses --user here" in found["python3"]["detail"]


def test_a_user_site_that_exists_but_is_not_on_sys_path_is_a_warning(
        machine: Machine, gather: Callable[..., dict[str, Any]]) -> None:
    python3 = machine.binary("/usr/bin/python3")
    probe = facts(python3)
    probe.update(user_site_exists=True, user_site_on_path=False)
    machine.answer(python3, probe)
    found = by_check(gather(machine.path("/usr/bin"), commands=["python3"]))
    assert found["python3"]["status"] == "WARN"
    assert "is not on python3's sys.path" in found["python3"]["cause"]


def test_a_script_whose_interpreter_was_removed_is_a_failure(machine: Machine,
                                                             gather: Callable[..., dict[str, Any]]) -> None:
    machine.binary("/usr/bin/python3")
    gone = machine.p("/home/me/mambaforge/bin/python3.10")
    ipython = machine.script("/home/me/.local/bin/ipython", gone)
    result = gather(machine.path("/home/me/.local/bin", "/usr/bin"), commands=["python3", "ipython"])
    found = by_check(result)
    assert found["ipython"]["status"] == "FAIL"
    assert found["ipython"]["detail"] == "%s: its shebang names %s, which does not exist or is not executable" % (
        ipython, gone)
    assert "its environment was removed or rebuilt" in found["ipython"]["cause"]
    assert gone not in machine.probes()


def test_an_interpreter_that_does_not_start_is_a_failure(machine: Machine,
                                                         gather: Callable[..., dict[str, Any]]) -> None:
    machine.binary("/usr/bin/python3")
    broken = machine.binary("/opt/broken/bin/python3")
    machine.fail(broken, 1, "Fatal Python error: init_fs_encoding: failed to get the Python codec\n")
    machine.script("/opt/broken/bin/jupyter", broken)
    found = by_check(gather(machine.path("/usr/bin", "/opt/broken/bin"), commands=["python3", "jupyter"]))
    assert found["jupyter"]["status"] == "FAIL"
    assert found["jupyter"]["detail"].endswith("-c failed (rc=1): Fatal Python error: init_fs_encoding: "
                                               "failed to get the Python codec")


def test_a_shell_wrapper_is_a_warning_naming_what_it_runs(machine: Machine,
                                                          gather: Callable[..., dict[str, Any]]) -> None:
    machine.binary("/usr/bin/python3")
    machine.binary("/usr/bin/bash")
    machine.script("/usr/local/bin/jupyter", machine.p("/usr/bin/bash"), "exec /somewhere/jupyter \"$@\"\n")
    found = by_check(gather(machine.path("/usr/local/bin", "/usr/bin"), commands=["python3", "jupyter"]))
    assert found["jupyter"]["status"] == "WARN"
    assert found["jupyter"]["detail"].endswith("it runs %s, not a Python interpreter" % machine.p("/usr/bin/bash"))


def test_a_pyenv_shim_is_followed_to_the_real_script(machine: Machine,
                                                     gather: Callable[..., dict[str, Any]]) -> None:
    machine.binary("/usr/bin/python3")
    machine.binary("/usr/bin/bash")
    pyenv = machine.binary("/home/me/.pyenv/libexec/pyenv")
    shim = machine.script("/home/me/.pyenv/shims/ipython", "/usr/bin/env bash",
                          'program="${0##*/}"\nexec "%s" exec "$program" "$@"\n' % pyenv)
    py310 = machine.binary("/home/me/.pyenv/versions/3.10.13/bin/python3.10", version="3.10.13",
                           prefix="/home/me/.pyenv/versions/3.10.13")
    real = machine.script("/home/me/.pyenv/versions/3.10.13/bin/ipython", py310)
    machine.answers["pyenv which ipython"] = (0, real + "\n", "")
    result = gather(machine.path("/home/me/.pyenv/shims", "/usr/bin"), commands=["python3", "ipython"])
    info = result["commands"]["ipython"]
    assert (info["path"], info["shim_target"], info["interpreter"]) == (shim, real, py310)
    found = by_check(result)
    assert found["ipython"]["status"] == "FAIL"
    assert found["ipython"]["detail"].startswith("%s (a pyenv shim for %s) runs %s (Python 3.10.13" % (shim, real, py310))
    assert [pyenv, "which", "ipython"] in machine.calls


def test_the_module_reads_the_remote_path_when_none_is_given(machine: Machine, run_module: Callable[..., Any],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    python3 = machine.binary("/usr/bin/python3")
    monkeypatch.setenv("PATH", machine.path("/usr/bin"))
    failed, result = run_module(dp, {"commands": ["python3"]})
    assert not failed
    assert result["path"] == machine.path("/usr/bin")
    assert result["reference_interpreter"] == python3


def login_shell(machine: Machine, body: str) -> str:
    """A shell wrapper as a login shell behaves: its profile prints noise and changes PATH, then it runs -c."""
    return machine.script("/bin/fakeshell", "/bin/sh", body + 'exec /bin/sh "$@"\n')


def test_the_path_comes_from_the_login_shell_and_its_noise_is_ignored(
        machine: Machine, run_module: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    python3 = machine.binary("/usr/bin/python3")
    other = machine.binary("/opt/other/bin/python3", prefix="/opt/other")
    shell = login_shell(machine, 'echo "Welcome to the machine"\necho "__REFORGE_PATH__=/not/this" >&2\n'
                                 'PATH=%s; export PATH\n' % machine.path("/opt/other/bin", "/usr/bin"))
    monkeypatch.setenv("PATH", machine.path("/usr/bin") + ":/usr/bin:/bin")
    failed, result = run_module(dp, {"commands": ["python3"], "login_shell": [shell], "path": ""})
    assert not failed, result
    assert (result["path_source"], result["login_shell_error"]) == ("login_shell", "")
    assert result["path"] == machine.path("/opt/other/bin", "/usr/bin")
    assert result["reference_interpreter"] == other != python3


def test_a_given_path_does_not_start_the_login_shell(machine: Machine, run_module: Callable[..., Any],
                                                     tmp_path: Path) -> None:
    machine.binary("/usr/bin/python3")
    shell = login_shell(machine, "touch %s\n" % (tmp_path / "shell-ran"))
    failed, result = run_module(dp, {"commands": ["python3"], "login_shell": [shell], "path": machine.path("/usr/bin")})
    assert not failed
    assert (result["path_source"], result["path"]) == ("given", machine.path("/usr/bin"))
    assert not (tmp_path / "shell-ran").exists()


@pytest.mark.parametrize("case", ["fails", "missing"])
def test_a_login_shell_without_a_path_falls_back_to_the_remote_path_and_says_why(
        machine: Machine, run_module: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    machine.binary("/usr/bin/python3")
    monkeypatch.setenv("PATH", machine.path("/usr/bin") + ":/usr/bin:/bin")
    shell = login_shell(machine, "echo broken profile >&2; exit 3\n") if case == "fails" else machine.p("/bin/nosh")
    failed, result = run_module(dp, {"commands": ["python3"], "login_shell": [shell, "-l"]})
    assert not failed, result
    assert result["path_source"] == "remote"
    assert result["path"] == machine.path("/usr/bin") + ":/usr/bin:/bin"
    if case == "fails":
        assert result["login_shell_error"] == "non-zero return code"
    else:
        assert "No such file or directory" in result["login_shell_error"]


def test_the_backups_are_listed_without_following_a_link(tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    (backup / "20260101T000000Z" / "root" / ".local" / "bin").mkdir(parents=True)
    (backup / "20260101T000000Z" / "root" / ".local" / "bin" / "tool").write_text("x")
    (backup / "20260101T000000Z" / "root" / ".bash_history").write_text("x")
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "secret").write_text("x")
    (backup / "20260101T000000Z" / "root" / ".config").symlink_to(outside)
    result = ff.backup_facts(str(backup))
    assert result["isdir"] is True
    root = backup / "20260101T000000Z" / "root"
    assert result["files"] == [str(root / ".bash_history"), str(root / ".config"), str(root / ".local/bin/tool")]
    alias = tmp_path / "backup-alias"
    alias.symlink_to(backup)
    assert ff.backup_facts(str(alias)) == {"path": str(alias), "isdir": False, "files": []}
    assert ff.backup_facts(str(tmp_path / "absent")) == {"path": str(tmp_path / "absent"), "isdir": False,
                                                         "files": []}


def test_one_run_reads_the_path_interpreters_links_and_backups(
        machine: Machine, run_module: Callable[..., Any], tmp_path: Path, cj: Any) -> None:
    python3 = machine.binary("/usr/bin/python3")
    shell = login_shell(machine, "PATH=%s; export PATH\n" % machine.path("/usr/bin"))
    home, storage = tmp_path / "home", tmp_path / "storage"
    (storage / ".reforge" / "backup" / "x").mkdir(parents=True)
    (storage / ".reforge" / "backup" / "x" / "old").write_text("x")
    (storage / ".local").mkdir()
    home.mkdir()
    (home / ".local").symlink_to(storage / ".local")
    failed, result = run_module(dp, {"commands": ["python3"], "login_shell": [shell], "links": [".local"],
                                     "links_from": str(home), "links_to": str(storage),
                                     "backups": str(storage / ".reforge" / "backup")}, check_mode=True)
    assert not failed and result["changed"] is False
    assert result["reference_interpreter"] == python3
    assert [(link["name"], link["state"]) for link in result["links"]] == [(".local", "linked")]
    assert result["backups"]["files"] == [str(storage / ".reforge" / "backup" / "x" / "old")]
    assert cj.undocumented_keys(dp, result) == []


@pytest.mark.parametrize("case", ["gpu", "broken_driver", "no_gpu"])
def test_nvidia_smi_runs_from_the_diagnosed_path_in_the_same_run(machine: Machine, run_module: Callable[..., Any],
                                                                 case: str) -> None:
    if case == "gpu":
        machine.script("/usr/bin/nvidia-smi", "/bin/sh",
                       'test "$*" = "--query-gpu=name,driver_version,memory.total --format=csv,noheader" || exit 2\n'
                       'echo "Tesla T4, 535.104.05, 15360 MiB"\n')
    elif case == "broken_driver":
        machine.script("/usr/bin/nvidia-smi", "/bin/sh",
                       'echo "Failed to initialize NVML: Driver/library version mismatch" >&2; exit 18\n')
    failed, result = run_module(dp, {"commands": [], "reference": [], "path": machine.path("/usr/bin"), "gpu": True})
    assert not failed, result
    gpu = result["gpu"]
    if case == "gpu":
        assert (gpu["rc"], gpu["stdout_lines"]) == (0, ["Tesla T4, 535.104.05, 15360 MiB"])
    elif case == "broken_driver":
        assert (gpu["rc"], gpu["stderr"]) == (18, "Failed to initialize NVML: Driver/library version mismatch")
    else:
        assert (gpu["rc"], gpu["stdout"]) == (127, "")


def test_nvidia_smi_is_not_run_unless_asked(machine: Machine, run_module: Callable[..., Any], tmp_path: Path) -> None:
    machine.script("/usr/bin/nvidia-smi", "/bin/sh", "touch %s\n" % (tmp_path / "ran"))
    failed, result = run_module(dp, {"commands": [], "reference": [], "path": machine.path("/usr/bin")})
    assert not failed and result["gpu"] is None
    assert not (tmp_path / "ran").exists()


# Links, key modes and free space (doctor_files) -----------------------------------------
@pytest.fixture
def home_and_storage(tmp_path: Path) -> tuple[Path, Path]:
    """Every state a home entry can be in, relative to the storage volume."""
    home, storage = tmp_path / "home", tmp_path / "storage"
    (storage / ".local").mkdir(parents=True)
    (storage / ".gitconfig").write_text("[user]\n")
    (storage / ".config").mkdir()
    home.mkdir()
    (home / ".local").symlink_to(storage / ".local")  # linked
    (home / ".gitconfig").symlink_to("../storage/.gitconfig")  # linked, relative
    (home / ".ssh").symlink_to(storage / ".ssh")  # dangling
    (home / ".config").mkdir()  # real
    (home / ".conda").symlink_to(tmp_path)  # wrong
    return home, storage


def test_each_link_gets_its_state(home_and_storage: tuple[Path, Path], run_module: Callable[..., Any]) -> None:
    home, storage = home_and_storage
    names = [".local", ".gitconfig", ".ssh", ".config", ".conda", ".kaggle"]
    failed, result = run_module(dp, {"links": names, "links_from": str(home), "links_to": str(storage),
                                     "commands": [], "reference": [], "path": "/usr/bin"},
                                check_mode=True)
    assert not failed
    assert result["changed"] is False and result["links_to_exists"] is True
    states = {entry["name"]: (entry["state"], entry["kind"]) for entry in result["links"]}
    assert states == {
        ".local": ("linked", "link"),
        ".gitconfig": ("linked", "link"),
        ".ssh": ("dangling", "link"),
        ".config": ("real", "directory"),
        ".conda": ("wrong", "link"),
        ".kaggle": ("missing", "missing"),
    }
    by_name = {entry["name"]: entry for entry in result["links"]}
    assert by_name[".gitconfig"]["link_target"] == "../storage/.gitconfig"
    assert by_name[".conda"]["realpath"] == str(home.parent)
    assert by_name[".local"]["target"] == str(storage / ".local")


def test_links_into_storage_reached_through_a_symlink_count(home_and_storage: tuple[Path, Path]) -> None:
    home, storage = home_and_storage
    alias = storage.parent / "storage-alias"
    alias.symlink_to(storage)
    result = ff.gather({"links": [".local"], "links_from": str(home), "links_to": str(alias),
                        "directories": [], "free_space": []})
    assert result["links"][0]["state"] == "linked"


def test_no_link_is_checked_without_the_storage_volume(tmp_path: Path) -> None:
    result = ff.gather({"links": [".local"], "links_from": str(tmp_path), "links_to": str(tmp_path / "storage"),
                        "directories": [], "free_space": []})
    assert result["links_to_exists"] is False
    assert result["links"] == []


def test_links_without_a_storage_directory_are_refused(run_module: Callable[..., Any]) -> None:
    failed, result = run_module(dp, {"links": [".local"], "commands": [], "reference": []})
    assert failed
    assert "links needs links_to" in result["msg"]


def test_the_modes_of_the_key_files_are_read_but_not_their_content(tmp_path: Path) -> None:
    ssh = tmp_path / ".ssh"
    ssh.mkdir(mode=0o755)
    ssh.chmod(0o755)
    for name, mode in (("id_ed25519", 0o644), ("id_ed25519.pub", 0o644), ("config", 0o600)):
        (ssh / name).write_text("secret material" if name == "id_ed25519" else "public")
        (ssh / name).chmod(mode)
    (ssh / "sockets").mkdir()
    linked = tmp_path / "ssh-link"
    linked.symlink_to(ssh)
    result = ff.gather({"links": [], "links_from": None, "links_to": None,
                        "directories": [str(linked), str(tmp_path / "absent")], "free_space": []})
    present, absent = result["directories"]
    assert (present["exists"], present["mode"]) == (True, "0755")
    assert present["files"] == [
        {"name": "config", "path": str(linked / "config"), "mode": "0600"},
        {"name": "id_ed25519", "path": str(linked / "id_ed25519"), "mode": "0644"},
        {"name": "id_ed25519.pub", "path": str(linked / "id_ed25519.pub"), "mode": "0644"},
    ]
    assert "secret" not in json.dumps(result)
    assert absent == {"path": str(tmp_path / "absent"), "exists": False, "mode": None, "files": []}


def test_free_space_is_that_of_the_paths_file_system(tmp_path: Path) -> None:
    result = ff.gather({"links": [], "links_from": None, "links_to": None, "directories": [],
                        "free_space": [str(tmp_path), str(tmp_path / "absent")]})
    present, absent = result["free_space"]
    usage = os.statvfs(tmp_path)
    assert present["exists"] is True
    assert abs(present["free_bytes"] - usage.f_bavail * usage.f_frsize) < 64 * 1024 * 1024
    assert present["total_bytes"] == usage.f_blocks * usage.f_frsize
    assert os.path.ismount(present["mount"])
    assert str(tmp_path).startswith(present["mount"])
    assert absent == {"path": str(tmp_path / "absent"), "exists": False, "mount": None, "free_bytes": None,
                      "total_bytes": None}
