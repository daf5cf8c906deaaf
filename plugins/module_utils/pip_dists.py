# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Used by the conda_snapshot module of the base_env role. Reads the
# distributions installed in a prefix's site-packages (their METADATA, or an
# egg-info's PKG-INFO and requires.txt) without running pip, and tells which
# of them another installed distribution requires, extras included.
"""Which installed Python distributions the user asked for, read from their metadata."""

from __future__ import annotations

import os
import platform
import re
import sys
from dataclasses import dataclass, field
from email.parser import HeaderParser
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

# "name [extra1, extra2] (>=1) ; marker" or "name[extra]>=1; marker".
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_MARKER_TOKEN = re.compile(
    r"\s*(?:(?P<str>'[^']*'|\"[^\"]*\")|(?P<op>===|==|!=|<=|>=|~=|<|>|not\s+in\b|in\b)"
    r"|(?P<bool>and\b|or\b)|(?P<paren>[()])|(?P<var>[A-Za-z_][A-Za-z0-9_.]*))"
)
_VERSION_PART = re.compile(r"\d+")


def normalize_name(name: str) -> str:
    """PEP 503 normalisation (also PEP 685's for extra names)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Requirement:
    """One Requires-Dist line."""

    name: str
    extras: Set[str]
    marker: str


@dataclass
class Dist:
    """One installed distribution."""

    name: str
    version: str
    folder: str
    requires: List[Requirement] = field(default_factory=list)

    @property
    def key(self) -> str:
        return normalize_name(self.name)


def parse_requirement(line: str) -> Optional[Requirement]:
    """A Requires-Dist value; None when it names no project."""
    spec, _sep, marker = line.partition(";")
    match = _REQUIREMENT.match(spec)
    if match is None:
        return None
    extras = {normalize_name(extra.strip()) for extra in (match.group(2) or "").split(",") if extra.strip()}
    return Requirement(match.group(1), extras, marker.strip())


# Environment markers (PEP 508) ------------------------------------------------
def marker_environment(python: str) -> Dict[str, str]:
    """The marker variables of a CPython PYTHON ("3.12.7", or "3.12" when the rest is unknown) on this machine."""
    release = python.split(".")
    full = python if len(release) > 2 else python + ".0"
    return {
        "python_version": ".".join(release[:2]),
        "python_full_version": full,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "implementation_version": full,
        "os_name": os.name,
        "sys_platform": sys.platform,
        "platform_system": platform.system(),
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_version": platform.version(),
        "extra": "",
    }


def _version_key(text: str) -> Optional[Tuple[int, ...]]:
    """Release numbers of a plain dotted version ("3.12" -> (3, 12)); None when it is not one."""
    text = text.strip()
    if text.endswith(".*"):
        text = text[:-2]
    if not re.fullmatch(r"\d+(\.\d+)*", text):
        return None
    return tuple(int(part) for part in _VERSION_PART.findall(text))


def _compare_versions(left: Tuple[int, ...], op: str, right: Tuple[int, ...], wildcard: bool) -> bool:
    width = max(len(left), len(right))
    padded_left, padded_right = left + (0,) * (width - len(left)), right + (0,) * (width - len(right))
    if wildcard and op in ("==", "!="):
        same = padded_left[: len(right)] == right
        return same if op == "==" else not same
    if op == "~=":
        return padded_left >= padded_right and padded_left[: max(len(right) - 1, 1)] == right[: max(len(right) - 1, 1)]
    return {"==": padded_left == padded_right, "!=": padded_left != padded_right,
            "<": padded_left < padded_right, "<=": padded_left <= padded_right,
            ">": padded_left > padded_right, ">=": padded_left >= padded_right}.get(op, False)


def _compare(left: str, op: str, right: str) -> bool:
    op = re.sub(r"\s+", " ", op)
    if op == "in":
        return left in right
    if op == "not in":
        return left not in right
    if op == "===":
        return left == right
    left_key, right_key = _version_key(left), _version_key(right)
    if left_key is not None and right_key is not None:
        return _compare_versions(left_key, op, right_key, right.strip().endswith(".*"))
    return {"==": left == right, "!=": left != right, "<": left < right,
            "<=": left <= right, ">": left > right, ">=": left >= right}.get(op, False)


class _MarkerParser:
    """A recursive-descent reader of one marker expression."""

    def __init__(self, text: str, env: Dict[str, str]) -> None:
        self.tokens: List[Tuple[str, str]] = []
        self.env = env
        position = 0
        text = text.strip()
        while position < len(text):
            match = _MARKER_TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise ValueError("cannot read marker %r" % text)
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.index = 0

    def _peek(self) -> Tuple[str, str]:
        return self.tokens[self.index] if self.index < len(self.tokens) else ("", "")

    def _take(self) -> Tuple[str, str]:
        token = self._peek()
        if not token[0]:
            raise ValueError("marker ends early")
        self.index += 1
        return token

    def evaluate(self) -> bool:
        value = self._or()
        if self.index != len(self.tokens):
            raise ValueError("unexpected %r in marker" % (self._peek()[1],))
        return value

    def _or(self) -> bool:
        value = self._and()
        while self._peek() == ("bool", "or"):
            self._take()
            right = self._and()
            value = value or right
        return value

    def _and(self) -> bool:
        value = self._atom()
        while self._peek() == ("bool", "and"):
            self._take()
            right = self._atom()
            value = value and right
        return value

    def _atom(self) -> bool:
        if self._peek() == ("paren", "("):
            self._take()
            value = self._or()
            if self._take() != ("paren", ")"):
                raise ValueError("unbalanced parenthesis in marker")
            return value
        left_kind, left = self._operand()
        kind, op = self._take()
        if kind != "op":
            raise ValueError("expected a comparison in marker, got %r" % op)
        right_kind, right = self._operand()
        if "extra" in (left_kind, right_kind):
            left, right = normalize_name(left), normalize_name(right)
        return _compare(left, op, right)

    def _operand(self) -> Tuple[str, str]:
        kind, text = self._take()
        if kind == "str":
            return "str", text[1:-1]
        if kind == "var":
            if text not in self.env:
                raise ValueError("unknown marker variable %r" % text)
            return ("extra" if text == "extra" else "var"), self.env[text]
        raise ValueError("unexpected %r in marker" % text)


def marker_holds(marker: str, env: Dict[str, str]) -> Optional[bool]:
    """Whether MARKER holds in ENV; True when empty, None when it cannot be read."""
    if not marker:
        return True
    try:
        return _MarkerParser(marker, env).evaluate()
    except (ValueError, IndexError):
        return None


# Reading site-packages -----------------------------------------------------------
def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def _egg_requires(text: str) -> List[str]:
    """setuptools' requires.txt as Requires-Dist values ("[extra:marker]" sections)."""
    lines: List[str] = []
    marker = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            extra, _sep, condition = line[1:-1].partition(":")
            parts = []
            if extra.strip():
                parts.append('extra == "%s"' % extra.strip())
            if condition.strip():
                parts.append("(%s)" % condition.strip())
            marker = " and ".join(parts)
            continue
        lines.append("%s; %s" % (line, marker) if marker else line)
    return lines


def read_dist(site: str, entry: str) -> Dist:
    """The distribution of one *.dist-info / *.egg-info ENTRY of SITE (a file or a folder)."""
    path = os.path.join(site, entry)
    stem = entry.rsplit(".", 1)[0]
    fallback_name, _sep, rest = stem.partition("-")
    fallback_version = rest.split("-", 1)[0]
    requires: List[str] = []
    if entry.endswith(".dist-info"):
        text = _read(os.path.join(path, "METADATA"))
    elif os.path.isdir(path):
        text = _read(os.path.join(path, "PKG-INFO"))
        requires = _egg_requires(_read(os.path.join(path, "requires.txt")))
    else:
        text = _read(path)
    headers = HeaderParser().parsestr(text, headersonly=True) if text else None
    name = str(headers.get("Name", "")).strip() if headers else ""
    version = str(headers.get("Version", "")).strip() if headers else ""
    requires.extend(str(value) for value in (headers.get_all("Requires-Dist") or [] if headers else []))
    parsed = [req for req in (parse_requirement(line) for line in requires) if req is not None]
    return Dist(name or fallback_name, version or fallback_version, entry, parsed)


def site_packages(prefix: str) -> List[Tuple[str, str]]:
    """(site-packages path, its Python version) for each lib/pythonX.Y of PREFIX."""
    lib = os.path.join(prefix, "lib")
    try:
        names = sorted(os.listdir(lib))
    except OSError:
        return []
    found = []
    for name in names:
        match = re.fullmatch(r"python(\d+\.\d+)t?", name)
        site = os.path.join(lib, name, "site-packages")
        if match and os.path.isdir(site):
            found.append((site, match.group(1)))
    return found


def installed_dists(prefix: str, python: str = "") -> List[Tuple[Dist, str]]:
    """Every distribution in PREFIX's site-packages, with the Python version it belongs to.

    PYTHON is the prefix's full Python version ("3.12.7", from its conda
    record); it is used for the site-packages of the same X.Y.
    """
    found = []
    for site, version in site_packages(prefix):
        if python.startswith(version + "."):
            version = python
        try:
            entries = sorted(os.listdir(site))
        except OSError:
            continue
        for entry in entries:
            if entry.endswith((".dist-info", ".egg-info")):
                found.append((read_dist(site, entry), version))
    return found


def required_names(dists: Iterable[Tuple[Dist, str]],
                   roots: Optional[Set[str]] = None) -> Tuple[Set[str], List[str]]:
    """Normalised names that an installed distribution requires, and markers that could not be read.

    A requirement counts when its marker holds for one of the extras that is
    in use: no extra, or one that an installed distribution asks for
    (python-fasthtml's uvicorn[standard] puts uvicorn's extra "standard" in
    use, and with it httptools, uvloop, ...). Extras are followed until
    nothing new is put in use. A marker that cannot be read does not count
    (the package then stays in the snapshot: reinstalling one too many loses
    nothing). A distribution requiring itself through its own extras does not
    make itself required. With ROOTS, only the requirements of the ROOTS and
    of what they require, all the way down, count.
    """
    by_key: Dict[str, List[Tuple[Dist, str]]] = {}
    for dist, version in dists:
        by_key.setdefault(dist.key, []).append((dist, version))
    in_use: Dict[str, Set[str]] = {key: {""} for key in by_key}
    active = set(by_key) if roots is None else set(roots) & set(by_key)
    required: Set[str] = set()
    unreadable: List[str] = []
    changed = True
    while changed:
        changed = False
        for key in sorted(active):
            for dist, version in by_key[key]:
                env = marker_environment(version)
                for req in dist.requires:
                    if not _applies(req, in_use[key], env, unreadable):
                        continue
                    target = normalize_name(req.name)
                    if target != key:
                        required.add(target)
                    extras = in_use.get(target)
                    if extras is None:
                        continue
                    if not req.extras <= extras or target not in active:
                        extras |= req.extras
                        active.add(target)
                        changed = True
    return required, sorted(set(unreadable))


def requested_dists(dists: Sequence[Tuple[Dist, str]], pip_folders: Set[str],
                    skipped: Set[str]) -> Tuple[List[Dist], List[str]]:
    """The distributions of PIP_FOLDERS the user asked for, and markers that could not be read.

    Those that no installed distribution requires; and, so that nothing is
    lost, the members of a circle (A needs B, B needs A) that nothing else
    installed leads to: pip list --not-required would leave both out. What
    only such a circle requires is not returned: reinstalling the circle
    brings it back. SKIPPED names are never returned.
    """
    required, unreadable = required_names(dists)
    pip_keys = {dist.key for dist, _python in dists if dist.folder in pip_folders}
    leaves = {key for key in pip_keys if key not in required}
    roots = ({dist.key for dist, _python in dists} - pip_keys) | leaves | (pip_keys & skipped)
    reached, _unreadable = required_names(dists, roots)
    # Every distribution left has a requirer left, so following requirers
    # back leads into a circle; a circle's members are what the user asked for.
    circles = {key for key in pip_keys - roots - reached if key in required_names(dists, {key})[0]}
    wanted = (leaves | circles) - skipped
    found: Dict[str, Dist] = {}
    for dist, _python in dists:
        if dist.key in wanted and dist.folder in pip_folders:
            found.setdefault(dist.key, dist)
    return sorted(found.values(), key=lambda dist: dist.name.lower()), unreadable


def _applies(req: Requirement, extras: Set[str], env: Dict[str, str], unreadable: List[str]) -> bool:
    for extra in sorted(extras):
        env["extra"] = extra
        holds = marker_holds(req.marker, env)
        if holds is None:
            unreadable.append(req.marker)
            return False
        if holds:
            return True
    return False
