"""Transactions: venvs, linking and unlinking packages, conda-meta records.
"""

import datetime
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from typing import Any

from . import common
from .common import CHANNEL, CHANNEL_ALIAS, fail
from .specs import Spec, parse_spec
from .prefix import read_records, site_packages_of
from .index import Package, _dist_info_version


def now_stamp() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def make_venv(prefix: str) -> None:
    """A real interpreter with a real pip: the environment's python is a venv of the host's.

    pip (and setuptools) are linked from the root prefix's copy, the way conda
    links packages from its cache, which is much faster than running ensurepip
    again; ensurepip is the fallback when the root has no pip.
    """
    base = getattr(sys, "_base_executable", sys.executable) or sys.executable
    result = subprocess.run([base, "-m", "venv", "--without-pip", prefix], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        fail("CondaError", f"could not create the Python of {prefix}:\n{result.stderr.strip()}")
    if not _clone_from_root(prefix, "pip"):
        subprocess.run(
            [os.path.join(prefix, "bin", "python"), "-m", "ensurepip", "--default-pip"],
            capture_output=True,
            check=False,
        )
        return
    _clone_from_root(prefix, "setuptools")


def _clone_from_root(prefix: str, project: str) -> bool:
    """Copy PROJECT's installed files (from its RECORD) from the root prefix into PREFIX."""
    root_files = _dist_info_files(common.ROOT_PREFIX, project)
    root_sp, env_sp = site_packages_of(common.ROOT_PREFIX), site_packages_of(prefix)
    if not root_files or not root_sp or not env_sp:
        return False
    if os.path.basename(os.path.dirname(root_sp)) != os.path.basename(os.path.dirname(env_sp)):
        return False
    python = os.path.join(prefix, "bin", "python")
    for relative in root_files:
        source = os.path.join(common.ROOT_PREFIX, relative)
        target = os.path.join(prefix, relative)
        if relative.endswith(".pyc") or not os.path.isfile(source):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if relative.startswith("bin/"):
            with open(source, encoding="utf-8") as handle:
                lines = handle.read().split("\n", 1)
            if lines[0].startswith("#!"):
                lines[0] = f"#!{python}"
            _write(target, "\n".join(lines), 0o755)
        else:
            shutil.copy2(source, target)
    return True


def _dist_info_files(prefix: str, project: str) -> list[str]:
    site_packages = site_packages_of(prefix)
    if not site_packages:
        return []
    relative_sp = os.path.relpath(site_packages, prefix)
    for entry in os.listdir(site_packages):
        if entry.lower().startswith(project + "-") and entry.endswith(".dist-info"):
            record_file = os.path.join(site_packages, entry, "RECORD")
            files = [f"{relative_sp}/{entry}/RECORD"]
            if os.path.isfile(record_file):
                with open(record_file, encoding="utf-8") as handle:
                    for line in handle:
                        path = line.rsplit(",", 2)[0] if line.strip() else ""
                        if path:
                            files.append(os.path.normpath(os.path.join(relative_sp, path)))
            return sorted(set(files))
    return []


def _write(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)


def _pip_name_requirement(dep: Spec) -> str:
    return dep.name + (dep.version if dep.version and dep.version[0] in "<>=!~" else "")


def install_module_files(prefix: str, pkg: Package) -> list[str]:
    """An importable stand-in module plus the dist-info pip sees, as conda packages ship."""
    site_packages = site_packages_of(prefix)
    if not pkg.module or not site_packages:
        return []
    relative_sp = os.path.relpath(site_packages, prefix)
    files = {
        f"{pkg.module}/__init__.py": f'"""Stand-in for {pkg.name} {pkg.version} (reforge test resource)."""\n\n'
        f'__version__ = "{pkg.version}"\n',
        f"{pkg.name}-{pkg.version}.dist-info/INSTALLER": "conda\n",
    }
    requires = [_pip_name_requirement(dep) for dep in map(parse_spec, pkg.depends) if dep.name != "python"]
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {pkg.name}",
        f"Version: {pkg.version}",
        f"Summary: Stand-in for {pkg.name}",
        f"License: {pkg.license}",
    ]
    metadata += [f"Requires-Dist: {req}" for req in requires]
    files[f"{pkg.name}-{pkg.version}.dist-info/METADATA"] = "\n".join(metadata) + "\n"
    record_lines = [f"{path},," for path in files] + [f"{pkg.name}-{pkg.version}.dist-info/RECORD,,"]
    files[f"{pkg.name}-{pkg.version}.dist-info/RECORD"] = "\n".join(record_lines) + "\n"
    for path, text in files.items():
        _write(os.path.join(site_packages, path), text)
    return sorted(f"{relative_sp}/{path}" for path in files)


def write_record(prefix: str, pkg: Package, files: list[str], requested_spec: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "arch": None if pkg.subdir == "noarch" else platform.machine(),
        "base_url": f"{CHANNEL_ALIAS}/{CHANNEL}",
        "build": pkg.build,
        "build_number": 0,
        "channel": f"{CHANNEL_ALIAS}/{CHANNEL}/{pkg.subdir}",
        "constrains": [],
        "depends": list(pkg.depends),
        "extracted_package_dir": os.path.join(common.ROOT_PREFIX, "pkgs", pkg.dist),
        "files": files,
        "fn": f"{pkg.dist}.conda",
        "license": pkg.license,
        "link": {"source": os.path.join(common.ROOT_PREFIX, "pkgs", pkg.dist), "type": 1},
        "md5": hashlib.md5(pkg.dist.encode()).hexdigest(),
        "name": pkg.name,
        "platform": None if pkg.subdir == "noarch" else "linux",
        "requested_spec": requested_spec,
        "schannel": CHANNEL,
        "size": 0,
        "subdir": pkg.subdir,
        "timestamp": 0,
        "url": f"{CHANNEL_ALIAS}/{CHANNEL}/{pkg.subdir}/{pkg.dist}.conda",
        "version": pkg.version,
    }
    meta = os.path.join(prefix, "conda-meta")
    os.makedirs(meta, exist_ok=True)
    for stale in read_records(prefix).values():
        if stale["name"] == pkg.name:
            os.remove(os.path.join(meta, stale["_file"]))
    _write(os.path.join(meta, f"{pkg.dist}.json"), json.dumps(record, indent=2, sort_keys=True) + "\n")
    record["_file"] = f"{pkg.dist}.json"
    return record


def link_package(prefix: str, pkg: Package, requested_spec: str) -> dict[str, Any]:
    if pkg.name == "python":
        if not os.path.exists(os.path.join(prefix, "bin", "python")):
            make_venv(prefix)
        files = ["bin/python", "bin/python3"]
    elif pkg.name in ("pip", "setuptools"):
        if not _dist_info_files(prefix, pkg.name) and pkg.name == "pip":
            subprocess.run(
                [os.path.join(prefix, "bin", "python"), "-m", "ensurepip", "--default-pip"],
                capture_output=True,
                check=False,
            )
        files = _dist_info_files(prefix, pkg.name)
        # The record carries the version pip really has in this environment.
        actual = _dist_info_version(site_packages_of(prefix), pkg.name)
        if actual and actual != pkg.version:
            pkg = Package(pkg.name, actual, pkg.build, pkg.subdir, pkg.depends, pkg.module, pkg.license)
    elif pkg.name == "conda":
        files = ["bin/conda", "condabin/conda", "etc/profile.d/conda.sh"] if prefix == common.ROOT_PREFIX else []
    elif pkg.name == "mamba":
        files = ["bin/mamba", "etc/profile.d/mamba.sh"] if prefix == common.ROOT_PREFIX else []
    else:
        files = install_module_files(prefix, pkg)
    return write_record(prefix, pkg, files, requested_spec)


def unlink_record(prefix: str, record: dict[str, Any]) -> None:
    if record["name"] not in ("python", "conda", "mamba"):
        parents: set[str] = set()
        for path in record.get("files", []):
            full = os.path.join(prefix, path)
            if os.path.isfile(full) or os.path.islink(full):
                os.remove(full)
                parents.add(os.path.dirname(full))
        for parent in sorted(parents, key=len, reverse=True):
            cache = os.path.join(parent, "__pycache__")
            if os.path.isdir(cache):
                shutil.rmtree(cache, ignore_errors=True)
            while parent.startswith(prefix + os.sep) and os.path.isdir(parent) and not os.listdir(parent):
                os.rmdir(parent)
                parent = os.path.dirname(parent)
    path = os.path.join(prefix, "conda-meta", record["_file"])
    if os.path.exists(path):
        os.remove(path)
