"""The solver: picks versions from the embedded index for install, update and remove.
"""

from .common import SolveError
from .specs import Spec, parse_spec
from .index import _index, _root_python_version, index_package, index_versions


class Solver:
    """Backtracking search over the tiny index: newest first, keep what is installed."""

    def __init__(
        self, installed: dict[str, str], mode: str, requested: set[str], update: frozenset[str] = frozenset()
    ) -> None:
        self.installed = installed
        self.mode = mode
        self.requested = requested
        # Installed packages moved to their newest fitting version: conda's UPDATE jobs
        # (a requested installed package, aggressive updates, auto_update_conda).
        self.update = set(update)
        self.index = _index()
        # conda-libmamba-solver pins the installed Python only when Python is not requested;
        # a requested python<3.10 downgrades the environment (solver.py, _specs_to_tasks_add).
        self.pinned = {"python": installed["python"]} if "python" in installed and "python" not in requested else {}

    def candidates(self, name: str, constraints: list[Spec]) -> list[str]:
        versions = index_versions(name)
        if name in self.pinned:
            versions = [self.pinned[name]]
        versions = [v for v in versions if all(spec.matches(v) for spec in constraints)]
        preferred: str | None = None
        if name in self.installed and not (
            name in self.update or (self.mode == "update" and name in self.requested)
        ):
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
            missing = [
                spec.canonical() for spec in specs if not any(spec.matches(v) for v in index_versions(spec.name))
            ]
            raise SolveError(self.explain(specs), missing)
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
