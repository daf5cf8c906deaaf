# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which Python each command on a PATH runs, and the mismatches between them: the doctor's interpreter
checks, shared by its modules."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule

MARKER = "__REFORGE_PYTHON_PROBE__"

# Runs under any Python from 2.7 on, so it must not use newer syntax.
PROBE = r"""
import json, os, site, sys, sysconfig
user_site = site.getusersitepackages() if hasattr(site, 'getusersitepackages') else None
base_prefix = getattr(sys, 'base_prefix', getattr(sys, 'real_prefix', sys.prefix))
stdlib = sysconfig.get_path('stdlib') or ''
print('%s' + json.dumps({
    'executable': sys.executable,
    'realpath': os.path.realpath(sys.executable),
    'version': '.'.join(str(n) for n in sys.version_info[:3]),
    'prefix': sys.prefix,
    'base_prefix': base_prefix,
    'in_virtualenv': sys.prefix != base_prefix,
    'user_site_enabled': getattr(site, 'ENABLE_USER_SITE', False),
    'user_site': user_site,
    'user_site_exists': bool(user_site) and os.path.isdir(user_site),
    'user_site_on_path': bool(user_site) and user_site in sys.path,
    'purelib': sysconfig.get_paths().get('purelib'),
    'externally_managed': sys.prefix == base_prefix and os.path.isfile(os.path.join(stdlib, 'EXTERNALLY-MANAGED')),
}))
""" % MARKER

PYTHON_NAME = re.compile(r"^(python|pypy)[0-9.]*$")
PYENV_SHIM = re.compile(r'exec "([^"]*/pyenv)" exec ')
LONG_PATH_EXEC = re.compile(r"""^'''exec' (?:"([^"]+)"|(\S+))""")


def split_path(path: str) -> list[str]:
    """The PATH's directories, skipping empty entries (the shell's 'current directory')."""
    return [entry for entry in path.split(os.pathsep) if entry]


def which_all(name: str, dirs: list[str]) -> list[str]:
    """Every executable file called `name` in `dirs`, in order, as the shell searches."""
    if os.sep in name:
        return [name] if os.path.isfile(name) and os.access(name, os.X_OK) else []
    found: list[str] = []
    seen: set[str] = set()
    for directory in dirs:
        # /bin and /usr/bin are often the same directory: list each real directory once.
        real = os.path.realpath(directory)
        if real in seen:
            continue
        seen.add(real)
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            found.append(candidate)
    return found


def read_head(path: str) -> tuple[Optional[str], Optional[str], str]:
    """A script's shebang (first line without '#!'), its second line and its start; (None, None, '') for a binary."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None, None, ""
    if not head.startswith(b"#!"):
        return None, None, ""
    text = head[2:].decode("utf-8", "replace")
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    second = lines[1].strip() if len(lines) > 1 else None
    return first, second, text


def env_program(argument: str) -> Optional[str]:
    """The program `/usr/bin/env [-S] [-i] [NAME=value …] program …` runs."""
    for token in shlex.split(argument):
        if token.startswith("-") or "=" in token:
            continue
        return token
    return None


def shebang_interpreter(shebang: str, second_line: Optional[str], dirs: list[str]) -> tuple[Optional[str], str]:
    """The interpreter a shebang runs, and an error sentence when it cannot be found."""
    parts = shebang.split(None, 1)
    if not parts:
        return None, "its shebang line is empty"
    program, argument = parts[0], parts[1] if len(parts) > 1 else ""
    if os.path.basename(program) == "env":
        name = env_program(argument)
        if not name:
            return None, "its shebang '#!%s' names no program" % shebang
        matches = which_all(name, dirs)
        if not matches:
            return None, "its shebang '#!%s' runs %s, which is not on PATH" % (shebang, name)
        return matches[0], ""
    if os.path.basename(program) in ("sh", "bash") and second_line:
        # pip and distlib write this when the interpreter's path is too long for a shebang.
        match = LONG_PATH_EXEC.match(second_line)
        if match:
            program = match.group(1) or match.group(2)
    if not (os.path.isfile(program) and os.access(program, os.X_OK)):
        return program, "its shebang names %s, which does not exist or is not executable" % program
    return program, ""


def is_python_name(path: str) -> bool:
    return bool(PYTHON_NAME.match(os.path.basename(path)))


def parse_probe(stdout: str) -> Optional[dict[str, Any]]:
    """The probe's JSON, found after its marker so that other output is ignored."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            try:
                data = json.loads(line[len(MARKER):])
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
    return None


class Prober:
    """Runs each interpreter once and remembers what it said."""

    def __init__(self, module: AnsibleModule, path: str) -> None:
        self.module = module
        self.path = path
        self.cache: dict[str, tuple[Optional[dict[str, Any]], str]] = {}

    def probe(self, interpreter: str) -> tuple[Optional[dict[str, Any]], str]:
        if interpreter not in self.cache:
            rc, out, err = self.module.run_command(
                [interpreter, "-c", PROBE], environ_update={"PATH": self.path}, check_rc=False
            )
            facts = parse_probe(out) if rc == 0 else None
            if facts is None:
                reason = (err or out).strip().splitlines()
                error = "%s -c failed (rc=%s): %s" % (interpreter, rc, reason[-1] if reason else "no output")
            else:
                error = ""
            self.cache[interpreter] = (facts, error)
        return self.cache[interpreter]


def pyenv_target(text: str, name: str, prober: Prober) -> Optional[str]:
    """The executable a pyenv shim runs, from `pyenv which NAME`; None when `text` is not a pyenv shim."""
    match = PYENV_SHIM.search(text)
    if not match:
        return None
    rc, out, _err = prober.module.run_command(
        [match.group(1), "which", name], environ_update={"PATH": prober.path}, check_rc=False
    )
    lines = out.strip().splitlines()
    target = lines[-1].strip() if rc == 0 and lines else ""
    return target if os.path.isfile(target) else None


def describe_command(name: str, dirs: list[str], prober: Prober) -> dict[str, Any]:
    """Resolve one command and identify the Python behind it."""
    matches = which_all(name, dirs)
    info: dict[str, Any] = {
        "name": name, "found": bool(matches), "path": None, "realpath": None, "all_paths": matches,
        "kind": "missing", "shebang": None, "shim_target": None, "interpreter": None, "python": None,
        "error": None, "same_interpreter_as_reference": False,
    }
    if not matches:
        return info
    path = matches[0]
    info.update(path=path, realpath=os.path.realpath(path))
    executable = path
    shebang, second, text = read_head(info["realpath"])
    if shebang is not None and not is_python_name(shebang.split(None, 1)[0] if shebang else ""):
        target = pyenv_target(text, name, prober)
        if target is not None:
            info["shim_target"] = executable = target
            shebang, second, text = read_head(os.path.realpath(target))
    info["shebang"] = shebang
    if shebang is None:
        info.update(kind="binary", interpreter=executable)
    else:
        interpreter, error = shebang_interpreter(shebang, second, dirs)
        info["interpreter"] = interpreter
        if error:
            info.update(kind="script", error=error)
            return info
        if interpreter is not None and is_python_name(interpreter):
            info["kind"] = "script"
        elif is_python_name(name):
            # A wrapper called python runs Python itself, whatever the shebang says: ask it.
            info.update(kind="wrapper", interpreter=path)
        else:
            info.update(kind="wrapper", error="it runs %s, not a Python interpreter" % interpreter)
            return info
    facts, error = prober.probe(info["interpreter"])
    info["python"] = facts
    info["error"] = error or None
    return info


def identity(info: dict[str, Any]) -> Optional[tuple[str, str]]:
    python = info.get("python")
    if not python:
        return None
    return python["realpath"], python["prefix"]


def short_version(python: dict[str, Any]) -> str:
    return ".".join(python["version"].split(".")[:2])


def describe_python(python: dict[str, Any]) -> str:
    return "%s (Python %s, prefix %s)" % (python["executable"], python["version"], python["prefix"])


def runs(info: dict[str, Any]) -> str:
    """'<path> runs <interpreter>', or '<path> is Python …' when the command is the interpreter itself."""
    python = info["python"]
    via = " (a pyenv shim for %s)" % info["shim_target"] if info["shim_target"] else ""
    if python["executable"] == info["path"]:
        return "%s is Python %s (prefix %s)" % (info["path"], python["version"], python["prefix"])
    return "%s%s runs %s" % (info["path"], via, describe_python(python))


def user_site_state(python: dict[str, Any]) -> str:
    if not python["user_site_enabled"]:
        if python["in_virtualenv"]:
            return "user site disabled (a virtual environment; pip refuses --user here)"
        return "user site disabled"
    if python["user_site_on_path"]:
        return "user site %s on sys.path" % python["user_site"]
    return "user site %s (not created yet)" % python["user_site"]


def shares_user_site(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether both interpreters import what `pip install --user` installs for either."""
    return bool(one["user_site_enabled"]) and bool(other["user_site_enabled"]) and one["user_site"] == other["user_site"]


def install_target(installer: dict[str, Any], pip: str) -> tuple[str, str]:
    """How the user installs for `installer` with the `pip` command line, and where that lands."""
    if installer["user_site_enabled"]:
        return "`%s install --user X`" % pip, installer["user_site"]
    return "`%s install X`" % pip, installer["purelib"]


def why_not_read(reader: dict[str, Any], installer: dict[str, Any]) -> str:
    if not installer["user_site_enabled"]:
        return "it is another environment"
    if not reader["user_site_enabled"]:
        return "its user site is disabled"
    return "it reads %s instead" % reader["user_site"]


def finding(check: str, status: str, detail: str, cause: str = "", fix: str = "") -> dict[str, str]:
    return {"check": check, "status": status, "detail": detail, "cause": cause, "fix": fix}


def reference_finding(info: dict[str, Any]) -> dict[str, str]:
    """The reference interpreter's own health: it must see what `pip install --user` installs for it."""
    name, python = info["name"], info["python"]
    detail = "%s; %s" % (runs(info), user_site_state(python))
    if not python["user_site_enabled"] and not python["in_virtualenv"]:
        return finding(
            name, "WARN", detail,
            "%s ignores the user site directory (PYTHONNOUSERSITE is set, or Python runs with -s), "
            "but pip still installs there with --user, so %s cannot import what `pip install --user` installs."
            % (name, name),
            "Unset PYTHONNOUSERSITE, or install into the environment with `%s -m pip install X`." % name,
        )
    if python["user_site_enabled"] and python["user_site_exists"] and not python["user_site_on_path"]:
        return finding(
            name, "WARN", detail,
            "%s exists but is not on %s's sys.path, so packages installed there with `pip install --user` "
            "cannot be imported." % (python["user_site"], name),
            "Look for a sitecustomize.py, a .pth file or a PYTHONSTARTUP that removes it from sys.path.",
        )
    return finding(name, "OK", detail)


def compare_finding(info: dict[str, Any], reference: dict[str, Any]) -> dict[str, str]:
    """A command compared with the reference interpreter: can each import what the user installs for the other?"""
    name, python = info["name"], info["python"]
    ref_name, ref_python = reference["name"], reference["python"]
    if info["same_interpreter_as_reference"]:
        return finding(name, "OK", "%s, the same interpreter as %s" % (runs(info), ref_name))
    detail = "%s, but %s runs %s" % (runs(info), ref_name, describe_python(ref_python))
    is_pip = name.startswith("pip")
    if shares_user_site(python, ref_python):
        return finding(
            name, "WARN", detail,
            "Both read the user site %s, but what is installed into either environment without --user is "
            "invisible to the other, so %s and %s can import different packages."
            % (python["user_site"], name, ref_name),
            "Use `%s -m pip install X`, which always installs for %s." % (ref_name, ref_name) if is_pip else
            "Install %s for %s (`%s -m pip install %s`) so that both run the same interpreter."
            % (name, ref_name, ref_name, name),
        )
    # Who installs, and who then cannot import: pip installs for its own interpreter, which python may not
    # read; python's pip installs for python, which the command's interpreter may not read.
    installer, reader, reader_name = (python, ref_python, ref_name) if is_pip else (ref_python, python, name)
    how, where = install_target(installer, name if is_pip else "%s -m pip" % ref_name)
    cause = "%s installs for %s (%s) into %s, which %s does not read (%s), so %s cannot import X." % (
        how, installer["executable"], short_version(installer), where, reader["executable"],
        why_not_read(reader, installer), reader_name)
    if is_pip:
        fix = ("Use `%s -m pip install X`, which always installs for %s, or put %s before %s on PATH."
               % (ref_name, ref_name, os.path.dirname(ref_python["executable"]), os.path.dirname(info["path"])))
    else:
        fix = ("Install %s for %s (`%s -m pip install %s`) or take %s off PATH, so that %s and %s run the same "
               "interpreter." % (name, ref_name, ref_name, name, os.path.dirname(info["path"]), name, ref_name))
    return finding(name, "FAIL", detail, cause, fix)


def command_finding(info: dict[str, Any], reference: Optional[dict[str, Any]]) -> dict[str, str]:
    name = info["name"]
    if not info["found"]:
        return finding(name, "SKIP", "not on PATH")
    if info["error"]:
        stale = info["kind"] == "script" and "does not exist" in info["error"]
        if info["kind"] == "wrapper" and not info["python"]:
            return finding(
                name, "WARN", "%s: %s" % (info["path"], info["error"]),
                "The Python it ends up running cannot be read from the script.",
                "Check by hand with `%s --version` and `head -1 %s`." % (name, info["path"]),
            )
        return finding(
            name, "FAIL", "%s: %s" % (info["path"], info["error"]),
            "%s cannot start%s." % (
                name, ": its environment was removed or rebuilt after it was installed" if stale else ""),
            "Reinstall %s in the current environment (`python -m pip install --force-reinstall %s`) or delete %s."
            % (name, name, info["path"]),
        )
    if reference is None:
        return finding(name, "OK", "%s; no reference interpreter to compare with" % runs(info))
    if info is reference:
        return reference_finding(info)
    return compare_finding(info, reference)


def gather(commands: list[str], path: str, references: list[str], prober: Prober) -> dict[str, Any]:
    dirs = split_path(path)
    infos = {name: describe_command(name, dirs, prober) for name in commands}
    reference: Optional[dict[str, Any]] = None
    for name in references:
        candidate = infos.get(name) or describe_command(name, dirs, prober)
        if candidate["python"]:
            reference = candidate
            break
    for info in infos.values():
        if reference is not None and info["python"]:
            info["same_interpreter_as_reference"] = identity(info) == identity(reference)
        if info["name"].startswith("pip") and info["python"]:
            info["pip_user_site"] = info["python"]["user_site"]
    if reference is not None and reference["name"] not in infos:
        infos[reference["name"]] = reference
        commands = commands + [reference["name"]]
    findings = [command_finding(infos[name], reference) for name in commands]
    return {
        "path": path,
        "reference": reference["name"] if reference else None,
        "reference_interpreter": reference["python"]["executable"] if reference else None,
        "commands": infos,
        "findings": findings,
    }


PATH_MARKER = "__REFORGE_PATH__="
# $PATH is for the shell to expand, after its profile files ran; the marker lets whatever they print be ignored.
PATH_SCRIPT = "printf '\\n%s%%s\\n' \"$PATH\"" % PATH_MARKER


def login_path(shell: list[str], timeout: float = 120) -> tuple[str, str]:
    """The PATH a new terminal gets: start the shell as `shell` says and read what it prints after the marker.

    Returns (path, error); path is empty when the shell did not print one, and error says why.
    """
    try:
        done = subprocess.run(shell + ["-c", PATH_SCRIPT], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        return "", str(error)
    out = done.stdout.decode("utf-8", "replace")
    found = [line[len(PATH_MARKER):] for line in out.splitlines() if line.startswith(PATH_MARKER)]
    if found and found[-1]:
        return found[-1], ""
    if done.returncode != 0:
        return "", "non-zero return code"
    return "", done.stderr.decode("utf-8", "replace").strip()


NVIDIA_SMI_QUERY = ["--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]


def nvidia_smi(path: str, timeout: float = 60) -> dict[str, Any]:
    """What nvidia-smi, found on `path`, says about the GPUs; rc 127 when it is not there (as env says)."""
    found = which_all("nvidia-smi", split_path(path))
    if not found:
        return {"rc": 127, "stdout": "", "stderr": "nvidia-smi: not found on PATH", "stdout_lines": []}
    env = dict(os.environ, PATH=path)
    try:
        done = subprocess.run([found[0]] + NVIDIA_SMI_QUERY, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, check=False, env=env)
    except (OSError, subprocess.SubprocessError) as error:
        return {"rc": 126, "stdout": "", "stderr": str(error), "stdout_lines": []}
    out = done.stdout.decode("utf-8", "replace").rstrip("\n")
    return {"rc": done.returncode, "stdout": out, "stderr": done.stderr.decode("utf-8", "replace").rstrip("\n"),
            "stdout_lines": out.splitlines()}
