"""Measuring trees for the no-data-lost tests of storage_link and pre-run.sh."""

from __future__ import annotations

import collections
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def data_items(root: Path) -> Iterator[tuple[str, str, str]]:
    """(path inside the entry, type, sha256 or link target) for every byte-holding item under root."""
    if root.is_symlink() or not root.exists():
        return  # a top-level link holds no data
    if root.is_file():
        if root.stat().st_size:
            yield ("", "file", hashlib.sha256(root.read_bytes()).hexdigest())
        return
    for folder, dirs, files in os.walk(root):
        for item in sorted(dirs + files):
            full = Path(folder) / item
            relative = str(full.relative_to(root))
            if full.is_symlink():
                yield (relative, "link", os.readlink(full))
            elif full.is_file() and full.stat().st_size:
                yield (relative, "file", hashlib.sha256(full.read_bytes()).hexdigest())


def data_checksum(roots: list[Path]) -> tuple[str, collections.Counter[tuple[str, str, str]]]:
    """One digest over every byte-holding item of the roots, and the items themselves."""
    items = collections.Counter(item for root in roots for item in data_items(root))
    digest = hashlib.sha256()
    for item in sorted(items.elements()):
        digest.update("\0".join(item).encode() + b"\n")
    return digest.hexdigest(), items


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[Any, ...]]:
    """Every path under root (but those starting with a `skip` prefix) with its type, mode and content or target."""
    result: dict[str, tuple[Any, ...]] = {}
    for folder, dirs, files in os.walk(root):
        for item in dirs + files:
            full = Path(folder) / item
            key = str(full.relative_to(root))
            if any(key.startswith(prefix) for prefix in skip):
                continue
            info = full.lstat()
            if stat.S_ISLNK(info.st_mode):
                result[key] = ("link", os.readlink(full))
            elif stat.S_ISDIR(info.st_mode):
                result[key] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                result[key] = ("file", stat.S_IMODE(info.st_mode), full.read_bytes())
    return result
