"""Versions and match specs: the subset of conda's MatchSpec the roles use.
"""

import re
from dataclasses import dataclass

from .common import fail


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    key: list[tuple[int, int, str]] = []
    for part in re.split(r"[.\-_+]", version):
        match = re.match(r"^(\d+)(.*)$", part)
        if match:
            key.append((1, int(match.group(1)), match.group(2)))
        else:
            key.append((0, 0, part))
    while key and key[-1] == (1, 0, ""):
        key.pop()
    return tuple(key)


def _prefix_match(version: str, base: str) -> bool:
    wanted = [p for p in base.split(".") if p]
    have = version.split(".")
    return have[: len(wanted)] == wanted or version_key(".".join(have[: len(wanted)])) == version_key(base)


def _match_constraint(version: str, constraint: str) -> bool:
    text = constraint.strip()
    if text in ("", "*"):
        return True
    operator = ""
    for candidate in ("==", "!=", ">=", "<=", "~=", ">", "<", "="):
        if text.startswith(candidate):
            operator = candidate
            text = text[len(candidate) :].strip()
            break
    glob = text.endswith("*")
    base = text.rstrip("*").rstrip(".")
    have, want = version_key(version), version_key(base)
    if operator in ("", "=="):
        return _prefix_match(version, base) if glob else have == want
    if operator == "=":
        return _prefix_match(version, base)
    if operator == "!=":
        return not _prefix_match(version, base) if glob else have != want
    if operator == "~=":
        head = base.rsplit(".", 1)[0]
        return have >= want and _prefix_match(version, head)
    return {">=": have >= want, "<=": have <= want, ">": have > want, "<": have < want}[operator]


def version_matches(version: str, spec: str | None) -> bool:
    if not spec:
        return True
    return any(
        all(_match_constraint(version, part) for part in alternative.split(",")) for alternative in spec.split("|")
    )


@dataclass(frozen=True)
class Spec:
    """A parsed match spec: name plus optional conda version / build patterns."""

    name: str
    version: str | None = None
    build: str | None = None
    channel: str | None = None

    def matches(self, version: str) -> bool:
        return version_matches(version, self.version)

    def canonical(self) -> str:
        """The spec as conda's ``str(MatchSpec(...))`` writes it into the history."""
        text = f"{self.channel}::{self.name}" if self.channel else self.name
        brackets: list[str] = []
        version = self.version
        if version:
            if any(char in version for char in "><$^|,") or version.startswith(("!=", "~=")):
                brackets.append(f"version='{version}'")
            elif version.endswith(".*"):
                text += "=" + version[:-2]
            elif version.endswith("*"):
                text += "=" + version[:-1]
            elif version.startswith("=="):
                text += version
            else:
                text += "==" + version
        if self.build:
            brackets.append(f"build='{self.build}'")
        if brackets:
            text += "[" + ",".join(brackets) + "]"
        return text

    def mamba_display(self) -> str:
        return f"{self.name} {self.version or '=*'} {self.build or '*'}"


def parse_spec(text: str) -> Spec:
    raw = text.strip()
    body = raw
    channel = None
    if "::" in body:
        channel, body = body.split("::", 1)
        channel = channel.split("/")[0] or None
    brackets: dict[str, str] = {}
    bracket_match = re.match(r"^(.*?)\[(.*)\]\s*$", body)
    if bracket_match:
        body = bracket_match.group(1)
        for key, quoted1, quoted2, bare in re.findall(
            r"(\w+)\s*=\s*(?:'([^']*)'|\"([^\"]*)\"|([^,\]]*))", bracket_match.group(2)
        ):
            brackets[key] = quoted1 or quoted2 or bare.strip()
    name_match = re.match(r"^([A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*(.*)$", body.strip())
    if not name_match:
        fail("InvalidMatchSpec", f"Invalid spec '{raw}'")
    name = name_match.group(1).lower()
    rest = name_match.group(2).strip()
    version: str | None = None
    build: str | None = None
    if rest.startswith("=") and not rest.startswith("=="):
        parts = rest[1:].split("=", 1)
        version = parts[0]
        if len(parts) > 1:
            build = parts[1]
        elif not version.endswith("*"):
            version += ".*"
    elif rest:
        tokens = rest.split()
        version = tokens[0]
        build = tokens[1] if len(tokens) > 1 else None
    version = brackets.get("version", version)
    build = brackets.get("build", build)
    return Spec(name, version if version not in ("", "*") else None, build if build not in ("", "*") else None, channel)
