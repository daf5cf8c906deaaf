"""Environments on disk: conda-meta records, site-packages and pip's own distributions.
"""

import email.parser
import json
import os
import re
from typing import Any

from .common import CHANNEL, CHANNEL_ALIAS, PYPI_URL


def site_packages_of(prefix: str) -> str | None:
    lib = os.path.join(prefix, "lib")
    if not os.path.isdir(lib):
        return None
    for entry in sorted(os.listdir(lib)):
        candidate = os.path.join(lib, entry, "site-packages")
        if entry.startswith("python3") and os.path.isdir(candidate):
            return candidate
    return None


def is_env(prefix: str) -> bool:
    return os.path.isdir(os.path.join(prefix, "conda-meta"))


def read_records(prefix: str) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    meta = os.path.join(prefix, "conda-meta")
    if not os.path.isdir(meta):
        return records
    for entry in sorted(os.listdir(meta)):
        if not entry.endswith(".json"):
            continue
        try:
            with open(os.path.join(meta, entry), encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            continue
        record["_file"] = entry
        records[record["name"]] = record
    return records


def record_python_version(records: dict[str, dict[str, Any]]) -> str | None:
    python = records.get("python")
    return python["version"] if python else None


def list_entry(record: dict[str, Any]) -> dict[str, Any]:
    """One package as ``conda list --json`` (and the actions of --json) show it."""
    channel = record.get("schannel", CHANNEL)
    return {
        "base_url": record.get("base_url", f"{CHANNEL_ALIAS}/{channel}"),
        "build_number": record.get("build_number", 0),
        "build_string": record["build"],
        "channel": channel,
        "dist_name": f"{record['name']}-{record['version']}-{record['build']}",
        "name": record["name"],
        "platform": record.get("subdir", "noarch"),
        "version": record["version"],
    }


def _metadata_headers(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            headers = email.parser.HeaderParser().parse(handle)
    except OSError:
        return {}
    return {"name": headers.get("Name", ""), "version": headers.get("Version", "")}


def pip_entries(prefix: str, records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Python distributions in PREFIX's site-packages that no conda record owns."""
    site_packages = site_packages_of(prefix)
    if not site_packages:
        return []
    owned: set[str] = set()
    for record in records.values():
        for path in record.get("files", []):
            for part in path.split("/"):
                if part.endswith((".dist-info", ".egg-info")):
                    owned.add(part)
    entries = []
    for entry in sorted(os.listdir(site_packages)):
        if not entry.endswith((".dist-info", ".egg-info")) or entry in owned:
            continue
        full = os.path.join(site_packages, entry)
        if entry.endswith(".dist-info"):
            meta = _metadata_headers(os.path.join(full, "METADATA"))
        elif os.path.isdir(full):
            meta = _metadata_headers(os.path.join(full, "PKG-INFO"))
        else:
            meta = _metadata_headers(full)
        if not meta.get("name"):
            continue
        name = re.sub(r"[-_.]+", "-", meta["name"]).lower()
        version = meta["version"]
        entries.append(
            {
                "base_url": PYPI_URL,
                "build_number": 0,
                "build_string": "pypi_0",
                "channel": "pypi",
                "dist_name": f"{name}-{version}-pypi_0",
                "name": name,
                "platform": "pypi",
                "version": version,
            }
        )
    return entries


def list_packages(prefix: str) -> list[dict[str, Any]]:
    records = read_records(prefix)
    entries = [list_entry(record) for record in records.values()] + pip_entries(prefix, records)
    return sorted(entries, key=lambda item: item["name"].lower())
