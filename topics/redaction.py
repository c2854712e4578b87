"""Keeping secrets and personal data out of what the service publishes and logs.

The rules are key names: the value of every key named like a secret (:data:`SECRET_KEYS`) or a
configured personal-data field (:data:`DEFAULT_PII_KEYS`) is replaced by ``"***"``, at any
depth, matching key names case-insensitively. A :class:`Redactor` applies them everywhere a
value can leave the worker:

- :meth:`Redactor.data` on structured data (step inputs and outputs, published values, error
  details): masked keys, and masked text inside every remaining string (below);
- :meth:`Redactor.text` on free text (exception messages in headers, step errors, log lines):
  credentials (bearer tokens, ``Authorization:`` values, ``access_token=…`` pairs), JSON pairs of
  masked keys (``"phone": "…"``), email addresses (when ``email`` is a masked key), international
  phone numbers (``+1 415 555 0100``, when ``phone`` is), and the *known values*: whatever the event being processed carries under a masked key
  (:meth:`Redactor.learning`). Salesforce echoes what it was sent (``Email: invalid email
  address: jane@@example``), so knowing the event's values is what catches them in a message.

Every walk is iterative, so data of any depth is handled without recursion. :func:`redact` and
:func:`scrub` are the two common cases (a mapping by key; credentials in text).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MASK = "***"

SECRET_KEYS = frozenset(
    {
        "password",
        "token",
        "secret",
        "authorization",
        "private_key",
        "client_secret",
        "access_token",
        "refresh_token",
        "api_key",
        "session_id",
    }
)
#: Personal data redacted from published records by default; a deployment that must publish
#: an email passes a smaller set.
DEFAULT_PII_KEYS = frozenset({"email", "phone", "mobilephone"})
DEFAULT_REDACT_KEYS = SECRET_KEYS | DEFAULT_PII_KEYS

#: Known values shorter than this are not masked inside text: a one-digit "phone" would
#: otherwise mask every digit of every message.
MIN_KNOWN_VALUE = 5

# Key names whose values are credentials (words, not credentials), and them as a pattern.
_CREDENTIAL_WORDS = (
    "access_token", "refresh_token", "id_token", "client_secret", "password", "api_key",
    "token", "secret", "sessionid", "session_id",
)  # fmt: skip
_CREDENTIAL_KEYS = "(?:" + "|".join(_CREDENTIAL_WORDS) + ")"
_CREDENTIALS = (
    # "Authorization: Bearer abc", "authorization=Basic abc", JSON "Authorization": "…" — the
    # whole value, up to the end of the line or the next separator.
    (re.compile(r"(?i)(authorization\"?\s*[:=]\s*)[^\r\n,;}]+"), r"\1" + MASK),
    # a bare "Bearer eyJ..." anywhere else
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/!]+=*"), r"\1" + MASK),
    # access_token=..., "client_secret": "...", password: ...
    (re.compile(rf"(?i)(\"?\b{_CREDENTIAL_KEYS}\"?\s*[:=]\s*\"?)[^\"&\s,;}}]+"), r"\1" + MASK),
)
# For each credential pattern, lower-case words one of which an ASCII text must hold for it to
# match: most strings hold none, and a substring test is far cheaper than the pattern. The
# patterns match case-insensitively, which for ASCII text is exactly what ``lower()`` gives;
# other text always goes through every pattern.
_CREDENTIAL_HINTS = (("authorization",), ("bearer",), _CREDENTIAL_WORDS)
# An address: the lookbehind makes a match start only where a run of address characters
# starts, and every part is bounded, so a megabyte of text is scanned in linear time.
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]{1,256}@[\w-]{1,253}(?:\.[\w-]{1,63})+")
# A number in international form ("+" and 8 to 22 digits and separators). Local forms are too
# like ids and dates to guess at; the known values catch the event's own phone in any form.
_PHONE = re.compile(r"(?<![\w+])\+[0-9][0-9 ().-]{6,20}[0-9]")


def scrub(text: str) -> str:
    """``text`` with credentials removed; safe to put in a header or a log line."""
    lowered = text.lower() if text.isascii() else None
    for (pattern, replacement), hints in zip(_CREDENTIALS, _CREDENTIAL_HINTS, strict=True):
        if lowered is None or any(hint in lowered for hint in hints):
            text = pattern.sub(replacement, text)
    return text


@functools.lru_cache(maxsize=64)
def _compiled_pairs(keys: frozenset[str]) -> re.Pattern[str]:
    """:func:`_json_pairs`, compiled once per set of keys (a redactor is made per event)."""
    return _json_pairs(keys)


def _json_pairs(keys: Iterable[str]) -> re.Pattern[str]:
    """``"<key>": "<any JSON string>"`` for the given keys, in any case (none: never matches)."""
    names = "|".join(sorted(re.escape(key) for key in keys))
    if not names:
        return re.compile(r"(?!)()")  # never matches; one group, like the real pattern
    return re.compile(rf'(?i)("(?:{names})"\s*:\s*)"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True, slots=True)
class Redactor:
    """The redaction rules of a deployment (``keys``), plus the values known to be sensitive.

    Immutable: :meth:`learning` returns a new redactor that also masks what the given data
    holds under the masked keys (the event being processed, a step's inputs).
    """

    keys: frozenset[str] = DEFAULT_REDACT_KEYS
    values: frozenset[str] = frozenset()
    _pairs: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _known: tuple[str, ...] = field(init=False, repr=False, compare=False)  # longest first

    def __post_init__(self) -> None:
        lowered = frozenset(key.lower() for key in self.keys)
        object.__setattr__(self, "keys", lowered)
        object.__setattr__(self, "_pairs", _compiled_pairs(lowered))
        object.__setattr__(self, "_known", _longest_first(self.values))

    def learning(self, *sources: object) -> Redactor:
        """This redactor, also masking every string or number found under a masked key."""
        found = set(self.values)
        for key, value in _items(sources):
            if key.lower() in self.keys and isinstance(value, str | int | float):
                text = value if isinstance(value, str) else str(value)
                if len(text) >= MIN_KNOWN_VALUE and not isinstance(value, bool):
                    found.add(text)
        if len(found) == len(self.values):
            return self  # nothing new (found holds self.values)
        return self._knowing(frozenset(found))

    def _knowing(self, values: frozenset[str]) -> Redactor:
        """This redactor with ``values`` as its known values: its keys are lowered and their
        pattern compiled already, so neither is done again (learning runs per record)."""
        derived = object.__new__(Redactor)
        for name, value in (
            ("keys", self.keys),
            ("values", values),
            ("_pairs", self._pairs),
            ("_known", _longest_first(values)),
        ):
            object.__setattr__(derived, name, value)
        return derived

    def text(self, text: str) -> str:
        """Free text with credentials, masked JSON pairs, emails and known values masked."""
        text = scrub(text)
        if '"' in text:  # each pattern below needs its one literal character
            text = self._pairs.sub(rf'\1"{MASK}"', text)
        for value in self._known:
            if value in text:
                text = text.replace(value, MASK)
        if "@" in text and "email" in self.keys:
            text = _EMAIL.sub(MASK, text)
        if "+" in text and "phone" in self.keys:
            text = _PHONE.sub(MASK, text)
        return text

    def mapping(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        """A redacted copy of ``mapping`` (see :meth:`data`)."""
        copied = self.data(mapping)
        assert isinstance(copied, dict)  # a Mapping always becomes a dict
        return copied

    def data(self, value: Any) -> Any:
        """A copy of any JSON-like value: masked keys become ``"***"`` (unless null), and
        every other string goes through :meth:`text`. Mappings become dicts, sequences lists."""
        root: list[Any] = [None]
        stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
        while stack:
            node, parent, slot = stack.pop()
            if type(node) in _SCALARS:  # most values; isinstance against an ABC is slow
                parent[slot] = self.text(node) if type(node) is str else node
            elif isinstance(node, Mapping):
                copy: dict[Any, Any] = {}
                parent[slot] = copy
                for key, item in node.items():
                    if isinstance(key, str) and key.lower() in self.keys and item is not None:
                        copy[key] = MASK
                    else:
                        copy[key] = None  # keeps the key order; filled in below
                        stack.append((item, copy, key))
            elif isinstance(node, list | tuple):
                items: list[Any] = [None] * len(node)
                parent[slot] = items
                stack.extend((item, items, index) for index, item in enumerate(node))
            elif isinstance(node, str):
                parent[slot] = self.text(node)
            else:
                parent[slot] = node
        return root[0]


#: Exact types that hold no mapping or sequence (a str subclass still goes the long way).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _longest_first(values: frozenset[str]) -> tuple[str, ...]:
    """Known values in the order they are masked: a value inside a longer one goes after it."""
    return tuple(sorted(values, key=len, reverse=True))


def _items(sources: Iterable[object]) -> Iterable[tuple[str, object]]:
    """Every ``(key, value)`` pair of every mapping inside ``sources``, without recursion."""
    stack = list(sources)
    while stack:
        node = stack.pop()
        if type(node) in _SCALARS:
            continue  # most values; checked first, as isinstance against an ABC is slow
        if isinstance(node, Mapping):
            for key, value in node.items():
                if isinstance(key, str):
                    yield key, value
                stack.append(value)
        elif isinstance(node, list | tuple):
            stack.extend(node)


def redact(
    mapping: Mapping[str, Any], keys: frozenset[str] = DEFAULT_REDACT_KEYS
) -> dict[str, Any]:
    """A copy of ``mapping`` with the values of ``keys`` (any case, any depth) masked."""
    return Redactor(keys).mapping(mapping)
