"""Secondary indexes: record IDs by the (case-folded) value of selected fields, per sObject.

Lookups by external ID, unique and duplicate-rule checks, and SOQL equality filters use them so a
busy emulator does not scan whole tables on every write (which would make load tests quadratic).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

Record = dict[str, Any]


def _key(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class FieldIndex:
    def __init__(self, fields: dict[str, tuple[str, ...]]) -> None:
        self.fields = fields
        self._maps: dict[tuple[str, str], defaultdict[Any, set[str]]] = {
            (sobject, name): defaultdict(set) for sobject, names in fields.items() for name in names
        }

    def covers(self, sobject: str, field: str) -> bool:
        return (sobject, field) in self._maps

    def replace(self, sobject: str, record_id: str, old: Record | None, new: Record | None) -> None:
        """Move ``record_id`` from ``old``'s values to ``new``'s (either may be None)."""
        for name in self.fields.get(sobject, ()):
            entries = self._maps[(sobject, name)]
            if old is not None and old.get(name) is not None:
                bucket = entries.get(_key(old[name]))
                if bucket is not None:
                    bucket.discard(record_id)
                    if not bucket:
                        del entries[_key(old[name])]
            if new is not None and new.get(name) is not None:
                entries[_key(new[name])].add(record_id)

    def ids(self, sobject: str, field: str, value: Any) -> set[str]:
        """IDs whose ``field`` equals ``value`` case-insensitively (a superset for exact)."""
        bucket = self._maps[(sobject, field)].get(_key(value))
        return set(bucket) if bucket else set()
