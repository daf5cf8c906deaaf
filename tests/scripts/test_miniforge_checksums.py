"""Tests of scripts/miniforge-checksums against a local stand-in for the release downloads.

A real HTTP server (`python3 -m http.server` on 127.0.0.1) serves a temporary
directory laid out like the release downloads, <version>/<installer>.sha256;
the script is run as users run it, with --base-url pointing at that server.
The digests served are made up: only their shape matters here.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "miniforge-checksums"
CHECKSUMS = REPO / "roles" / "miniforge" / "vars" / "checksums.yml"
PLATFORMS = ["Linux-x86_64", "Linux-aarch64", "MacOSX-x86_64", "MacOSX-arm64"]
VARIABLE = "__miniforge_installer_checksums"


def fake_digest(version: str, platform: str) -> str:
    return hashlib.sha256(f"{version}/{platform}".encode()).hexdigest()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def release_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("releases")


@pytest.fixture(scope="module")
def base_url(release_root: Path) -> Iterator[str]:
    """A local web server over release_root; yields its base URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(release_root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the test web server did not start on port {port}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def publish(root: Path, version: str, platforms: List[str], content: str = "") -> Dict[str, str]:
    """Write <version>/<installer>.sha256 files as a release publishes them; return the digests."""
    folder = root / version
    folder.mkdir(parents=True, exist_ok=True)
    digests = {}
    for platform in platforms:
        name = f"Miniforge3-{version}-{platform}.sh"
        digests[platform] = fake_digest(version, platform)
        # Miniforge's build.sh runs `sha256sum ./<name>`, so the line names `./<name>`.
        (folder / f"{name}.sha256").write_text(content or f"{digests[platform]}  ./{name}\n", encoding="utf-8")
    return digests


def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    # The stand-in server is local: keep any proxy set in the environment out of the way.
    env = dict(os.environ, no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
    return subprocess.run([str(SCRIPT), *arguments], capture_output=True, text=True, env=env, timeout=60, check=False)


def load_mapping(text: str) -> Dict[str, Dict[str, str]]:
    data = yaml.safe_load(text)
    assert list(data) == [VARIABLE]
    mapping: Dict[str, Dict[str, str]] = data[VARIABLE]
    return mapping


def test_prints_an_entry_with_the_published_sums_of_all_platforms(release_root: Path, base_url: str) -> None:
    digests = publish(release_root, "31.1.0-0", PLATFORMS)

    result = run("31.1.0-0", "--base-url", base_url)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("  # 31.1.0-0: the release's own .sha256 files under http://127.0.0.1:")
    assert lines[1:] == ['  "31.1.0-0":'] + [f'    {p}: "{digests[p]}"' for p in PLATFORMS]
    assert load_mapping(f"{VARIABLE}:\n{result.stdout}") == {"31.1.0-0": digests}


def test_skips_a_platform_whose_asset_is_missing(release_root: Path, base_url: str) -> None:
    digests = publish(release_root, "31.2.0-0", ["Linux-x86_64", "MacOSX-arm64"])

    result = run("31.2.0-0", "--base-url", base_url)

    assert result.returncode == 0, result.stderr
    assert load_mapping(f"{VARIABLE}:\n{result.stdout}") == {"31.2.0-0": digests}
    for missing in ("Linux-aarch64", "MacOSX-x86_64"):
        assert f"Miniforge3-31.2.0-0-{missing}.sh.sha256 is not published" in result.stderr
        assert f"skipping {missing}" in result.stderr


def test_keeps_lines_short_for_a_mirror_with_a_long_url(release_root: Path, base_url: str) -> None:
    mirror = "github-release/conda-forge/miniforge/mirror-of-the-official-release-downloads/"
    digests = publish(release_root / mirror, "31.8.0-0", PLATFORMS)

    result = run("31.8.0-0", "--base-url", f"{base_url}/{mirror}")

    assert result.returncode == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 140
    assert f"  # {base_url}/{mirror.rstrip('/')}" in result.stdout.splitlines()
    assert load_mapping(f"{VARIABLE}:\n{result.stdout}") == {"31.8.0-0": digests}


def test_fails_when_the_release_has_no_sums(base_url: str, tmp_path: Path) -> None:
    target = tmp_path / "checksums.yml"
    target.write_text(CHECKSUMS.read_text(encoding="utf-8"), encoding="utf-8")

    result = run("31.9.9-9", "--base-url", base_url, "--write", "--file", str(target))

    assert result.returncode == 1
    assert "no .sha256 file of release 31.9.9-9" in result.stderr
    assert target.read_text(encoding="utf-8") == CHECKSUMS.read_text(encoding="utf-8")


def test_refuses_a_sha256_file_that_holds_no_digest(release_root: Path, base_url: str) -> None:
    publish(release_root, "31.3.0-0", PLATFORMS, content="<html>rate limited</html>\n")

    result = run("31.3.0-0", "--base-url", base_url)

    assert result.returncode == 1
    assert "does not start with a sha256 digest" in result.stderr
    assert result.stdout == ""


def test_refuses_a_sha256_file_for_another_installer(release_root: Path, base_url: str) -> None:
    publish(release_root, "31.4.0-0", PLATFORMS, content=f"{'a' * 64}  Miniforge3-1.0.0-0-Linux-x86_64.sh\n")

    result = run("31.4.0-0", "--base-url", base_url)

    assert result.returncode == 1
    assert "names another file" in result.stderr


def test_fails_when_the_mirror_cannot_be_reached(tmp_path: Path) -> None:
    result = run("31.1.0-0", "--base-url", f"http://127.0.0.1:{free_port()}", "--timeout", "5")

    assert result.returncode == 1
    assert result.stderr.startswith("error: http://127.0.0.1:")


def test_rejects_a_version_that_is_no_release_name() -> None:
    result = run("latest")

    assert result.returncode == 2
    assert "is not a Miniforge release like 26.7.2-0" in result.stderr


def test_write_inserts_a_new_release_first_and_keeps_the_others(release_root: Path, base_url: str,
                                                                 tmp_path: Path) -> None:
    original = CHECKSUMS.read_text(encoding="utf-8")
    target = tmp_path / "checksums.yml"
    target.write_text(original, encoding="utf-8")
    target.chmod(0o640)
    digests = publish(release_root, "99.1.0-0", PLATFORMS)

    result = run("99.1.0-0", "--base-url", base_url, "--write", "--file", str(target))

    assert result.returncode == 0, result.stderr
    written = target.read_text(encoding="utf-8")
    before, after = load_mapping(original), load_mapping(written)
    assert list(after) == ["99.1.0-0", *before]
    assert after["99.1.0-0"] == digests
    assert {version: after[version] for version in before} == before
    # Everything that was there, comments included, is still there, unchanged and in order.
    old_lines = original.splitlines()
    new_lines = written.splitlines()
    added = [line for line in new_lines if line not in old_lines]
    assert len(added) == 2 + len(PLATFORMS)
    assert [line for line in new_lines if line not in added] == old_lines
    assert target.stat().st_mode & 0o777 == 0o640


def test_write_replaces_an_existing_release_in_place(release_root: Path, base_url: str, tmp_path: Path) -> None:
    target = tmp_path / "checksums.yml"
    target.write_text(
        "---\n"
        "# header comment\n"
        f"{VARIABLE}:\n"
        "  # 31.6.0-0: kept\n"
        '  "31.6.0-0":\n'
        f'    Linux-x86_64: "{"c" * 64}"\n'
        "\n"
        "  # 31.5.0-0: stale comment\n"
        '  "31.5.0-0":\n'
        f'    Linux-x86_64: "{"d" * 64}"\n'
        f'    MacOSX-arm64: "{"e" * 64}"\n'
        "  # 1.0.0-0: oldest\n"
        "  1.0.0-0:\n"
        f'    Linux-aarch64: "{"f" * 64}"\n'
        "other_variable: true\n",
        encoding="utf-8",
    )
    digests = publish(release_root, "31.5.0-0", ["Linux-x86_64", "Linux-aarch64"])

    result = run("31.5.0-0", "--base-url", base_url, "--write", "--file", str(target))

    assert result.returncode == 0, result.stderr
    written = target.read_text(encoding="utf-8")
    data = yaml.safe_load(written)
    assert list(data[VARIABLE]) == ["31.6.0-0", "31.5.0-0", "1.0.0-0"]
    assert data[VARIABLE]["31.5.0-0"] == digests
    assert data[VARIABLE]["31.6.0-0"] == {"Linux-x86_64": "c" * 64}
    assert data[VARIABLE]["1.0.0-0"] == {"Linux-aarch64": "f" * 64}
    assert data["other_variable"] is True
    assert "stale comment" not in written
    assert written.startswith("---\n# header comment\n")
    assert "  # 31.6.0-0: kept\n" in written and "  # 1.0.0-0: oldest\n" in written


def test_write_refuses_a_file_without_the_variable(release_root: Path, base_url: str, tmp_path: Path) -> None:
    publish(release_root, "31.7.0-0", PLATFORMS)
    target = tmp_path / "checksums.yml"
    target.write_text("---\nsomething_else: {}\n", encoding="utf-8")

    result = run("31.7.0-0", "--base-url", base_url, "--write", "--file", str(target))

    assert result.returncode == 1
    assert f"no top-level line '{VARIABLE}:'" in result.stderr
    assert target.read_text(encoding="utf-8") == "---\nsomething_else: {}\n"


def test_the_shipped_checksums_are_well_formed_and_newest_first() -> None:
    mapping = load_mapping(CHECKSUMS.read_text(encoding="utf-8"))

    assert mapping, "vars/checksums.yml pins no release"
    keys = [tuple(int(part) for part in version.replace("-", ".").split(".")) for version in mapping]
    assert keys == sorted(keys, reverse=True)
    for version, sums in mapping.items():
        assert set(sums) <= set(PLATFORMS), version
        for platform, digest in sums.items():
            assert len(digest) == 64 and set(digest) <= set("0123456789abcdef"), (version, platform)
    digests = [digest for sums in mapping.values() for digest in sums.values()]
    assert len(digests) == len(set(digests)), "the same digest is pinned for two installers"
