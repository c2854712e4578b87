"""Salesforce record IDs: key prefixes, the 18-character checksum suffix, parsing.

A record ID is a 3-character key prefix naming the object, 12 base-62 characters, and (in the
18-character form every API returns) a 3-character suffix that makes the ID case-insensitive:
for each 5-character chunk, bit j is set when character j is an uppercase A-Z, and the 5-bit value
indexes ``"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"``.
"""

from __future__ import annotations

import re

KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "Organization": "00D",
    "Lead": "00Q",
    "CampaignMember": "00v",
    "LeadStatus": "01J",
    "Case": "500",
    "Campaign": "701",
}
OBJECT_BY_PREFIX: dict[str, str] = {prefix: name for name, prefix in KEY_PREFIXES.items()}

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SHAPE = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")


def checksum(id15: str) -> str:
    """The 3-character suffix that turns a 15-character ID into its 18-character form."""
    if len(id15) != 15:
        raise ValueError("checksum needs exactly 15 characters")
    chars = []
    for start in (0, 5, 10):
        chunk = id15[start : start + 5]
        bits = sum(1 << j for j, c in enumerate(chunk) if "A" <= c <= "Z")
        chars.append(_SUFFIX_ALPHABET[bits])
    return "".join(chars)


def to18(id15: str) -> str:
    """The 18-character, case-insensitive form of a 15-character ID."""
    return id15 + checksum(id15)


def normalize(raw: str) -> str | None:
    """The canonical 18-character ID for a 15- or 18-character input, or None if malformed.

    An 18-character ID may arrive in any letter case (that is its purpose); the suffix tells which
    letters of the first 15 were uppercase, so the original case is restored from it.
    """
    if not isinstance(raw, str) or not _SHAPE.match(raw):
        return None
    if len(raw) == 15:
        return to18(raw)
    head, suffix = raw[:15], raw[15:].upper()
    if any(c not in _SUFFIX_ALPHABET for c in suffix):
        return None
    restored = []
    for chunk_index, suffix_char in enumerate(suffix):
        bits = _SUFFIX_ALPHABET.index(suffix_char)
        for j in range(5):
            c = head[chunk_index * 5 + j]
            restored.append(c.upper() if bits & (1 << j) else c.lower())
    id15 = "".join(restored)
    # A suffix bit set over a digit cannot describe these characters: the ID is malformed.
    if to18(id15)[15:] != suffix:
        return None
    return to18(id15)


def object_for(record_id: str) -> str | None:
    """The sObject name an ID's key prefix belongs to, or None for an unknown prefix."""
    return OBJECT_BY_PREFIX.get(record_id[:3])
