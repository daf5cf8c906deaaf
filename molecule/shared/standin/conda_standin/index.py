"""The embedded package index (the only packages the stand-in knows).
"""

import hashlib
import os
import sys
from dataclasses import dataclass

from . import common
from .common import CONDA_VERSION, MAMBA_VERSION, PLATFORM
from .specs import version_key
from .prefix import site_packages_of


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


# The newer conda the index offers, so conda's auto_update_conda has something to update to.
NEWER_CONDA_VERSION = ".".join(CONDA_VERSION.split(".")[:-1] + [str(int(CONDA_VERSION.split(".")[-1]) + 1)])
# What the installer links into base: Miniforge ships openssl and ca-certificates, and the
# channel soon has newer ones (conda's aggressive_update_packages then wants to update them).
SHIPPED_VERSIONS = {"conda": CONDA_VERSION, "mamba": MAMBA_VERSION, "openssl": "3.4.0", "ca-certificates": "2024.8.30"}


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
    root_sp = site_packages_of(common.ROOT_PREFIX)
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
        *(
            Package(
                "conda",
                version,
                f"py{''.join(host.split('.')[:2])}h8cc9a2d_0",
                PLATFORM,
                ("python", "openssl"),
                None,
                "BSD-3-Clause",
            )
            for version in (CONDA_VERSION, NEWER_CONDA_VERSION)
        ),
        Package("openssl", "3.4.0", "h7b32b05_0", PLATFORM, ("ca-certificates",), None, "Apache-2.0"),
        Package("openssl", "3.4.1", "h7b32b05_1", PLATFORM, ("ca-certificates",), None, "Apache-2.0"),
        Package("ca-certificates", "2024.8.30", "hbcca054_0", PLATFORM, (), None, "ISC"),
        Package("ca-certificates", "2025.1.31", "hbcca054_0", PLATFORM, (), None, "ISC"),
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
