"""Unit tests of plugins/module_utils/pip_dists.py: metadata, markers and extras, on site-packages trees in tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import pytest

from ansible_collections.reforge.workstation.plugins.module_utils import pip_dists

SITE = "lib/python3.12/site-packages"
LINUX_312 = dict(pip_dists.marker_environment("3.12"), sys_platform="linux", platform_system="Linux",
                 platform_machine="x86_64", os_name="posix")


def wheel_dist(prefix: Path, folder: str, name: str, version: str, requires: Sequence[str] = ()) -> None:
    path = prefix / SITE / folder
    path.mkdir(parents=True)
    body = ["Metadata-Version: 2.3", "Name: %s" % name, "Version: %s" % version]
    body += ["Requires-Dist: %s" % line for line in requires]
    (path / "METADATA").write_text("\n".join(body) + "\nDescription-Content-Type: text/markdown\n\n# Readme\n")


@pytest.mark.parametrize("marker, expected", [
    ('python_version < "3.11"', False),
    ('python_version >= "3.8"', True),
    ('python_version == "3.12.*"', True),
    ('python_version ~= "3.10"', True),
    ('python_version ~= "3.13"', False),
    ('python_full_version >= "3.12.0" and python_version < "4"', True),
    ('sys_platform == "win32" or (platform_system == "Linux" and platform_machine in "x86_64 aarch64")', True),
    ("platform_machine not in 'arm64 aarch64'", True),
    ('extra == "Standard"', False),
    ('implementation_name == "cpython" and os_name == "posix"', True),
    ('nonsense_var == "1"', None),
    ('python_version <', None),
    ('(python_version > "3"', None),
])
def test_markers(marker: str, expected: Optional[bool]) -> None:
    assert pip_dists.marker_holds(marker, dict(LINUX_312)) is expected


def test_extra_names_compare_normalised() -> None:
    assert pip_dists.marker_holds('extra == "Dev_Tools"', dict(LINUX_312, extra="dev-tools")) is True


def test_requirement_forms() -> None:
    parsed = pip_dists.parse_requirement("Uvicorn[Standard, dev_x] (>=0.30) ; extra == 'all'")
    assert parsed is not None
    assert (parsed.name, parsed.extras, parsed.marker) == ("Uvicorn", {"standard", "dev-x"}, "extra == 'all'")
    url = pip_dists.parse_requirement("tool @ https://example.invalid/tool-1.0.tar.gz ; os_name == 'posix'")
    assert url is not None and url.name == "tool" and url.marker == "os_name == 'posix'"
    assert pip_dists.parse_requirement("  ; nothing") is None


def test_extras_are_followed_through_a_package_s_own_extras(tmp_path: Path) -> None:
    """app needs lib[all]; lib's 'all' asks for lib[fast]; 'fast' needs speedup. 'docs' is nobody's."""
    wheel_dist(tmp_path, "app-1.0.dist-info", "app", "1.0", ["lib[all]>=2"])
    wheel_dist(tmp_path, "lib-2.0.dist-info", "lib", "2.0", [
        'lib[fast]; extra == "all"', 'speedup>=1; extra == "fast"', 'sphinx; extra == "docs"'])
    wheel_dist(tmp_path, "speedup-1.1.dist-info", "speedup", "1.1")
    wheel_dist(tmp_path, "sphinx-8.0.dist-info", "Sphinx", "8.0")
    required, unreadable = pip_dists.required_names(pip_dists.installed_dists(str(tmp_path)))
    assert required == {"lib", "speedup"}
    assert unreadable == []


def test_an_egg_info_s_requires_txt_and_a_bare_pkg_info_file(tmp_path: Path) -> None:
    egg = tmp_path / SITE / "Legacy_Pkg-0.9-py3.12.egg-info"
    egg.mkdir(parents=True)
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: Legacy-Pkg\nVersion: 0.9\n")
    (egg / "requires.txt").write_text("six>=1.0\n\n[socks]\nPySocks\n\n[:sys_platform == \"win32\"]\npywin32\n")
    (tmp_path / SITE / "oldstyle-1.2-py3.12.egg-info").write_text("Metadata-Version: 1.0\nName: oldstyle\n"
                                                                  "Version: 1.2\n")
    wheel_dist(tmp_path, "six-1.17.0.dist-info", "six", "1.17.0")
    wheel_dist(tmp_path, "PySocks-1.7.1.dist-info", "PySocks", "1.7.1")
    dists = pip_dists.installed_dists(str(tmp_path))
    assert sorted((dist.name, dist.version) for dist, _python in dists) == [
        ("Legacy-Pkg", "0.9"), ("PySocks", "1.7.1"), ("oldstyle", "1.2"), ("six", "1.17.0")]
    assert all(python == "3.12" for _dist, python in dists)
    required, _unreadable = pip_dists.required_names(dists)
    assert required == {"six"}


def test_a_dist_info_without_metadata_is_named_after_its_folder(tmp_path: Path) -> None:
    (tmp_path / SITE / "broken_thing-3.1.dist-info").mkdir(parents=True)
    ((dist, python),) = pip_dists.installed_dists(str(tmp_path))
    assert (dist.name, dist.version, dist.key, python) == ("broken_thing", "3.1", "broken-thing", "3.12")


def test_the_prefix_s_full_python_version_reaches_the_markers(tmp_path: Path) -> None:
    wheel_dist(tmp_path, "app-1.0.dist-info", "app", "1.0", ['new-only; python_full_version >= "3.12.4"',
                                                             'old-only; python_full_version < "3.12.4"'])
    dists = pip_dists.installed_dists(str(tmp_path), "3.12.7")
    assert dists[0][1] == "3.12.7"
    assert pip_dists.required_names(dists)[0] == {"new-only"}
    assert pip_dists.installed_dists(str(tmp_path), "3.11.2")[0][1] == "3.12"
