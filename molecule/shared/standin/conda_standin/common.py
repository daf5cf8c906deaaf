"""Constants, the per-run state and conda's error types.

The state (``PROG``, ``JSON_ERRORS``, ``ROOT_PREFIX``) is read as ``common.NAME`` by the
other modules, because the front end sets it at start-up (see ``cli.main`` and the
launcher the installer writes into ``bin/conda``).
"""

import os
import platform
import sys
from typing import Any, NoReturn


# What Miniforge 26.3.2-3 ships (construct.yaml): conda 26.3.2, mamba 2.5.0, Python 3.13.
# The interpreter is still the host's (see README "What it does not cover").
CONDA_VERSION = "26.3.2"
MAMBA_VERSION = "2.5.0"
SHIPPED_PYTHON = "3.13"
CHANNEL = "conda-forge"
# Placeholder hosts (".invalid" never resolves): nothing is ever downloaded.
CHANNEL_ALIAS = "https://conda.standin.invalid"
PYPI_URL = "https://pypi.standin.invalid/simple"
CONDA_BLOCK = ("# >>> conda initialize >>>", "# <<< conda initialize <<<")
MAMBA_BLOCK = ("# >>> mamba initialize >>>", "# <<< mamba initialize <<<")
SHELLS = ("bash", "zsh")

JSON_ERRORS = False
PROG = "conda"
# The root prefix this front end belongs to: the launcher in bin/conda sets it, as real
# conda embeds its prefix. The fallback is the prefix of the program being run.
ROOT_PREFIX: str = os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[0])))


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

    def __init__(self, problems: list[str], missing: list[str] | None = None) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        # The specs no package in the index matches (conda: PackagesNotFoundError).
        self.missing = missing or []

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

    def conda_json(self) -> dict[str, Any]:
        """conda's --json error object (printed on stdout): conda-libmamba-solver raises
        PackagesNotFoundError when every problem is a missing package, else
        LibMambaUnsatisfiableError with the problem tree as its message."""
        if self.missing and len(self.missing) == len(self.problems):
            urls = [f"{CHANNEL_ALIAS}/{CHANNEL}/{PLATFORM}", f"{CHANNEL_ALIAS}/{CHANNEL}/noarch"]
            name = "PackagesNotFoundError"
            message = (
                "The following packages are not available from current channels:\n\n"
                + "".join(f"  - {spec}\n" for spec in self.missing)
                + "\nCurrent channels:\n\n"
                + "".join(f"  - {url}\n" for url in urls)
            )
            extra: dict[str, Any] = {"packages": self.missing, "channel_urls": urls}
        else:
            name = "LibMambaUnsatisfiableError"
            tree = self.render().splitlines()[1:-1]
            message = "Could not solve for environment specs\n" + "\n".join(line[4:] for line in tree)
            extra = {}
        return {
            "caused_by": "None",
            "error": f"{name}: {message}",
            "exception_name": name,
            "exception_type": f"<class 'conda.exceptions.{name}'>",
            "message": message,
            **extra,
        }


def fail(name: str, message: str, **extra: Any) -> NoReturn:
    raise CondaError(name, message, **extra)
