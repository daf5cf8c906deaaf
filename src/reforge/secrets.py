"""Keep secret values from extra vars out of everything reforge prints."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from fnmatch import fnmatchcase
from typing import Any

# An extra var holds a secret when the roles' argument specs mark its name
# `no_log: true`, or when its name (lower-cased) matches one of these patterns.
# Patterns, not words: `ssh_keys_source=generate` is no secret, `github_pat` is.
SECRET_PATTERNS = ("*password*", "*passphrase*", "*passwd*", "*secret*", "*token*", "*credential*",
                   "*_pat", "*_key", "*apikey*", "*private_key*")
MASK = "********"
# Replacing one- or two-character values would garble every count and time in
# the output while hiding nothing a reader could not guess.
MIN_SECRET_LENGTH = 3


def is_secret_key(key: object, names: Collection[str] = ()) -> bool:
    """Whether a variable of this name holds a secret; `names` are those the specs mark no_log."""
    name = str(key)
    return name in names or any(fnmatchcase(name.lower(), pattern) for pattern in SECRET_PATTERNS)


def _scalars(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _scalars(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def secret_values(data: Any, names: Collection[str] = ()) -> set[str]:
    """Every scalar found under a secret key, at any depth."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            found |= set(_scalars(value)) if is_secret_key(key, names) else secret_values(value, names)
    elif isinstance(data, (list, tuple)):
        for item in data:
            found |= secret_values(item, names)
    return found


def _variants(value: str) -> set[str]:
    """The value, and each line of a multi-line value (a key file, say)."""
    parts = {value.strip(), *(line.strip() for line in value.splitlines())}
    return {part for part in parts if len(part) >= MIN_SECRET_LENGTH}


class Scrubber:
    """Replace secret values in text, and in every string of a JSON-like value."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        variants: set[str] = set()
        for secret in secrets:
            variants |= _variants(secret)
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted(variants, key=len, reverse=True)

    def text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.data(key): self.data(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(item) for item in value]
        return value
