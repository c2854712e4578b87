"""Generating realistic record IDs for the emulated org.

The ID format itself (key prefixes, the 18-character checksum, parsing) is the client's
:mod:`salesforce.ids`; the emulator imports it rather than keep a second copy.
"""

from __future__ import annotations

import random
import string

from salesforce.ids import KEY_PREFIXES, OBJECT_BY_PREFIX, checksum, normalize, object_for, to18

__all__ = [
    "KEY_PREFIXES",
    "OBJECT_BY_PREFIX",
    "IdFactory",
    "checksum",
    "normalize",
    "object_for",
    "to18",
]

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


class IdFactory:
    """Seeded generator of realistic IDs: prefix, pod character, zero padding, base-62 counter."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - IDs are not secrets; determinism is the point
        self._pod = "".join(self._rng.choice(_BASE62) for _ in range(2))
        self._counter = self._rng.randrange(62**4, 62**5)

    def new(self, sobject: str) -> str:
        """A fresh 18-character ID for ``sobject`` (never repeats within this factory)."""
        prefix = KEY_PREFIXES[sobject]
        self._counter += 1 + self._rng.randrange(7)
        body = _base62(self._counter).rjust(7, "0")
        return to18(prefix + self._pod + "000" + body)

    def token(self, prefix: str, length: int) -> str:
        """A seeded base-62 string with a fixed prefix (locators, connected-app keys)."""
        return prefix + "".join(self._rng.choice(_BASE62) for _ in range(length - len(prefix)))


def _base62(n: int) -> str:
    digits = []
    while n:
        n, rem = divmod(n, 62)
        digits.append(_BASE62[rem])
    return "".join(reversed(digits)) or "0"
