"""Keep secret values from extra vars out of everything reforge prints."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# An extra var whose key contains one of these words holds a secret.
SECRET_WORDS = ("key", "password", "secret", "token")
MASK = "********"
# Replacing one- or two-character values would garble every count and time in
# the output while hiding nothing a reader could not guess.
MIN_SECRET_LENGTH = 3


def is_secret_key(key: object) -> bool:
    name = str(key).lower()
    return any(word in name for word in SECRET_WORDS)


def _scalars(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _scalars(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def secret_values(data: Any) -> set[str]:
    """Every scalar found under a secret-looking key, at any depth."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            found |= set(_scalars(value)) if is_secret_key(key) else secret_values(value)
    elif isinstance(data, (list, tuple)):
        for item in data:
            found |= secret_values(item)
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
