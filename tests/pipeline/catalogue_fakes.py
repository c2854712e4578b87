"""A small in-memory Salesforce for catalogue tests: records in dicts, every call recorded.

It understands just the SOQL the catalogue writes (``SELECT … FROM … WHERE f = '…' AND …
ORDER BY CreatedDate ASC, Id ASC LIMIT n``, and ``… LIMIT n`` without the ORDER BY), compares
strings case-insensitively as Salesforce's ``=`` does, rejects creates that miss a field a real
org requires or repeat a unique external id, and answers conditional updates. Put
:class:`~salesforce.consistency.ConsistentGateway` in front of it (:func:`flow_gateway`) for
flows that append or create by a business key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.catalogue.soql import find_query
from pipeline.ports import (
    ConversionResult,
    FindQuery,
    GatewayError,
    LeadConversion,
    UpsertResult,
)
from salesforce.client import VersionedRecord, salesforce_datetime
from salesforce.consistency import ConsistentGateway
from salesforce.errors import PreconditionFailedError

PREFIXES = {
    "Lead": "00Q",
    "Contact": "003",
    "Account": "001",
    "Opportunity": "006",
    "Case": "500",
    "Campaign": "701",
}
REQUIRED = {
    "Lead": ("LastName", "Company"),
    "Contact": ("LastName",),
    "Account": ("Name",),
    "Opportunity": ("Name", "StageName", "CloseDate"),
    "Case": (),
    "Campaign": ("Name",),
}


class FakeRejected(GatewayError):
    """A permanent failure, as a real org reports a validation error."""


class FakeNotFound(GatewayError):
    """The record does not exist (NOT_FOUND / ENTITY_IS_DELETED)."""


class FakeUnavailable(GatewayError):
    """A transient failure (SERVER_UNAVAILABLE)."""

    retriable = True


_UNESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "n": "\n",
    "N": "\n",
    "r": "\r",
    "R": "\r",
    "t": "\t",
    "T": "\t",
    "f": "\f",
    "F": "\f",
    "b": "\b",
    "B": "\b",
}


def read_literal(text: str, start: int) -> tuple[str, int]:
    """Unescape the SOQL literal whose opening quote is at ``start``; return it and the end.

    Raises ValueError for an unterminated literal or a backslash Salesforce would reject.
    """
    if text[start : start + 1] != "'":
        raise ValueError(f"no literal at {start}: {text[start : start + 20]!r}")
    out: list[str] = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == "'":
            return "".join(out), pos + 1
        if char != "\\":
            out.append(char)
            pos += 1
            continue
        code = text[pos + 1 : pos + 2]
        if code == "u":
            digits = text[pos + 2 : pos + 6]
            if not re.fullmatch(r"[0-9a-fA-F]{4}", digits):
                raise ValueError(f"bad \\u escape at {pos}")
            out.append(chr(int(digits, 16)))
            pos += 6
        elif code in _UNESCAPES:
            out.append(_UNESCAPES[code])
            pos += 2
        else:
            raise ValueError(f"invalid escape \\{code} at {pos}")
    raise ValueError("unterminated literal")


def parse_literal(literal: str) -> str:
    """The value of a whole SOQL literal; ValueError if anything follows its closing quote."""
    value, end = read_literal(literal, 0)
    if end != len(literal):
        raise ValueError(f"text after the literal: {literal[end:]!r}")
    return value


_SELECT = re.compile(r"SELECT (?P<fields>\w+(?:, \w+)*) FROM (?P<sobject>\w+)")
_CONDITION = re.compile(r"(?P<field>\w+) = ")
_TAIL = re.compile(r"(?: ORDER BY CreatedDate ASC, Id ASC)? LIMIT (?P<limit>\d+)\Z")
UNIQUE_FIELDS = ("Actionflows_Key__c",)  # external ids, unique in the org


@dataclass(frozen=True)
class ParsedQuery:
    fields: tuple[str, ...]
    sobject: str
    where: tuple[tuple[str, str], ...]
    limit: int


def parse_query(soql: str) -> ParsedQuery:
    """Parse the catalogue's one query shape; anything else is a ValueError."""
    head = _SELECT.match(soql)
    if head is None:
        raise ValueError(f"not a catalogue query: {soql!r}")
    pos = head.end()
    where: list[tuple[str, str]] = []
    if soql.startswith(" WHERE ", pos):
        pos += len(" WHERE ")
        while True:
            condition = _CONDITION.match(soql, pos)
            if condition is None:
                raise ValueError(f"bad condition at {pos}: {soql!r}")
            value, pos = read_literal(soql, condition.end())
            where.append((condition["field"], value))
            if not soql.startswith(" AND ", pos):
                break
            pos += len(" AND ")
    tail = _TAIL.match(soql, pos)
    if tail is None:
        raise ValueError(f"bad tail at {pos}: {soql!r}")
    return ParsedQuery(
        tuple(head["fields"].split(", ")), head["sobject"], tuple(where), int(tail["limit"])
    )


def _equal(stored: Any, wanted: str) -> bool:
    if isinstance(stored, str):
        return stored.casefold() == wanted.casefold()
    return False


@dataclass
class FakeSalesforce:
    """The gateway port over dicts. ``calls`` lists (method, args…); ``failures`` injects errors."""

    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    failures: dict[str, GatewayError] = field(default_factory=dict)  # method -> raise once
    _sequence: int = 0

    # -- test helpers ---------------------------------------------------------------------
    def add(self, sobject: str, **fields: Any) -> str:
        """Store a record directly (no call recorded) and return its id."""
        return self._insert(sobject, fields)

    def record(self, sobject: str, record_id: str) -> dict[str, Any]:
        return self.records[sobject][record_id]

    def only(self, sobject: str) -> dict[str, Any]:
        """The one record of ``sobject``; fails the test if there are none or several."""
        (record,) = self.records.get(sobject, {}).values()
        return record

    def methods(self) -> list[str]:
        return [call[0] for call in self.calls]

    def _stamp(self) -> str:
        """A new second for each write: 2026-01-01T00:00:01.000+0000, …"""
        self._sequence += 1
        return f"2026-01-01T00:{self._sequence // 60:02d}:{self._sequence % 60:02d}.000+0000"

    def _insert(self, sobject: str, fields: Mapping[str, Any]) -> str:
        stamp = self._stamp()
        record_id = f"{PREFIXES[sobject]}{self._sequence:012d}AAA"
        record = {"Id": record_id, "CreatedDate": stamp, "LastModifiedDate": stamp, **fields}
        self.records.setdefault(sobject, {})[record_id] = record
        return record_id

    def _enter(self, method: str, *args: Any) -> None:
        self.calls.append((method, *args))
        failure = self.failures.pop(method, None)
        if failure is not None:
            raise failure

    def _existing(self, sobject: str, record_id: str) -> dict[str, Any]:
        record = self.records.get(sobject, {}).get(record_id)
        if record is None:
            raise FakeNotFound("The requested resource does not exist", error_code="NOT_FOUND")
        return record

    def _check_create(self, sobject: str, fields: Mapping[str, Any]) -> None:
        missing = [f for f in REQUIRED[sobject] if fields.get(f) in (None, "")]
        if missing:
            raise FakeRejected(
                f"Required fields are missing: [{', '.join(missing)}]",
                error_code="REQUIRED_FIELD_MISSING",
                fields=missing,
            )
        for name in UNIQUE_FIELDS:
            value = fields.get(name)
            taken = [r for r in self.records.get(sobject, {}).values() if r.get(name) == value]
            if value is not None and taken:
                raise FakeRejected(
                    f"duplicate value found: {name} duplicates value on record with id: "
                    f"{taken[0]['Id']}",
                    error_code="DUPLICATE_VALUE",
                )

    # -- the port ---------------------------------------------------------------------------
    async def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        self._enter("create", sobject, dict(fields))
        self._check_create(sobject, fields)
        return self._insert(sobject, fields)

    async def upsert(
        self, sobject: str, external_id_field: str, external_id: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        self._enter("upsert", sobject, external_id_field, external_id, dict(fields))
        if external_id_field in fields:
            raise FakeRejected("external id field in body", error_code="INVALID_FIELD")
        for record in self.records.get(sobject, {}).values():
            if record.get(external_id_field) == external_id:
                record.update(fields)
                return UpsertResult(id=record["Id"], created=False)
        self._check_create(sobject, fields)
        return UpsertResult(
            id=self._insert(sobject, {**fields, external_id_field: external_id}), created=True
        )

    async def update(
        self,
        sobject: str,
        record_id: str,
        fields: Mapping[str, Any],
        *,
        if_unmodified_since: Any = None,
    ) -> None:
        self._enter("update", sobject, record_id, dict(fields))
        record = self._existing(sobject, record_id)
        changed = salesforce_datetime(record["LastModifiedDate"])
        if if_unmodified_since is not None and changed > if_unmodified_since:
            raise PreconditionFailedError("changed since", status=412)
        record.update(fields, LastModifiedDate=self._stamp())

    async def read_for_update(
        self, sobject: str, record_id: str, fields: Sequence[str]
    ) -> VersionedRecord:
        """The record, when it changed, and a server clock well past every change."""
        self._enter("read_for_update", sobject, record_id, tuple(fields))
        record = self._existing(sobject, record_id)
        changed = salesforce_datetime(record["LastModifiedDate"])
        return VersionedRecord(
            {f: record.get(f) for f in fields}, changed, changed.replace(year=2027)
        )

    async def delete(self, sobject: str, record_id: str) -> None:
        self._enter("delete", sobject, record_id)
        self._existing(sobject, record_id)
        del self.records[sobject][record_id]

    async def get(self, sobject: str, record_id: str, fields: Sequence[str]) -> dict[str, Any]:
        self._enter("get", sobject, record_id, tuple(fields))
        record = self._existing(sobject, record_id)
        return {f: record.get(f) for f in fields}

    async def query(self, soql: str) -> list[dict[str, Any]]:
        self._enter("query", soql)
        parsed = parse_query(soql)
        matching = [
            record
            for record in self.records.get(parsed.sobject, {}).values()
            if all(_equal(record.get(f), v) for f, v in parsed.where)
        ]
        matching.sort(key=lambda r: (r["CreatedDate"], r["Id"]))
        return [
            {
                "attributes": {
                    "type": parsed.sobject,
                    "url": f"/sobjects/{parsed.sobject}/{r['Id']}",
                },
                **{f: r.get(f) for f in parsed.fields},
            }
            for r in matching[: parsed.limit]
        ]

    async def find(self, query: FindQuery) -> list[dict[str, Any]]:
        """Through the SOQL a real client sends, so tests read the query it would be."""
        return await self.query(find_query(query))

    async def convert_lead(self, conversion: LeadConversion) -> ConversionResult:
        self._enter("convert_lead", conversion)
        lead = self._existing("Lead", conversion.lead_id)
        if lead.get("IsConverted"):
            raise FakeRejected(
                "cannot reference converted lead", error_code="CANNOT_UPDATE_CONVERTED_LEAD"
            )
        account_id = conversion.account_id
        if account_id is None:
            account_id = self._insert("Account", {"Name": lead["Company"]})
        else:
            self._existing("Account", account_id)
        contact_id = self._insert(
            "Contact",
            {
                "FirstName": lead.get("FirstName"),
                "LastName": lead["LastName"],
                "Email": lead.get("Email"),
                "AccountId": account_id,
            },
        )
        opportunity_id = self._insert(
            "Opportunity",
            {
                "Name": conversion.opportunity_name or f"{lead['Company']}-",
                "AccountId": account_id,
                "StageName": "Prospecting",
            },
        )
        lead.update(
            IsConverted=True,
            Status=conversion.converted_status or "Closed - Converted",
            ConvertedAccountId=account_id,
            ConvertedContactId=contact_id,
            ConvertedOpportunityId=opportunity_id,
        )
        return ConversionResult(conversion.lead_id, account_id, contact_id, opportunity_id)


def flow_gateway(org: FakeSalesforce) -> ConsistentGateway:
    """The gateway flows run against, over the fake (as the service puts it over the client)."""
    return ConsistentGateway(org, org)
