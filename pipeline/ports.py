"""The ports the runner works through. Adapters live outside ``pipeline``.

``SalesforceGateway`` is implemented by :mod:`salesforce` (the aiohttp client, real org or
emulator) and by small hand-written fakes in unit tests. Every failure a gateway reports is a
:class:`GatewayError`; its class attributes decide what the engine does with it:

GatewayError                 retriable?  meaning
├── (permanent subclasses)   no          validation, duplicates, not found … → dead letter
├── (transient subclasses)   yes         5xx, timeouts, UNABLE_TO_LOCK_ROW … → retry
└── (budget subclasses)      yes, and ``throttle`` → pause consumption, do not burn attempts

``ambiguous`` marks a failure after which the write may or may not have happened (a timeout on
a POST): only idempotent writes (upserts by external id) may be retried after one.

``FlowGateway`` is what the runner hands to the catalogue: the port plus the two writes whose
result must not depend on how concurrent runs interleave (``append`` and ``find_or_create``,
implemented by :mod:`salesforce.consistency` over any ``SalesforceGateway``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol


class GatewayError(Exception):
    """A Salesforce call failed. Subclasses set the class flags; instances carry the details."""

    retriable: ClassVar[bool] = False
    throttle: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        status: int | None = None,
        fields: Sequence[str] = (),
        ambiguous: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.status = status
        self.fields = tuple(fields)
        self.ambiguous = ambiguous
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class UpsertResult:
    id: str
    created: bool


@dataclass(frozen=True, slots=True)
class LeadConversion:
    """One lead to convert. ``converted_status`` must be a LeadStatus with IsConverted=true."""

    lead_id: str
    account_id: str | None = None
    contact_id: str | None = None
    converted_status: str | None = None  # None: the gateway uses the org's default converted status
    opportunity_name: str | None = None
    do_not_create_opportunity: bool = False


@dataclass(frozen=True, slots=True)
class ConversionResult:
    lead_id: str
    account_id: str | None
    contact_id: str | None
    opportunity_id: str | None


@dataclass(frozen=True, slots=True)
class RecordWrite:
    """One record of a batched write (sObject Collections). ``id`` is set for updates."""

    sobject: str
    fields: Mapping[str, Any]
    id: str | None = None


@dataclass(frozen=True, slots=True)
class FindQuery:
    """One find: the ``fields`` of the ``sobject`` records whose ``where`` fields all equal
    their values (text compares case-insensitively, as SOQL's ``=`` does), oldest first
    (``CreatedDate``, then ``Id``), at most ``limit`` of them.

    Names come from the catalogue's tables, never from a flow or an event; values are quoted
    by the gateway. Structured rather than SOQL text, so a gateway can answer many concurrent
    finds with one query without parsing any.
    """

    sobject: str
    fields: tuple[str, ...]
    where: tuple[tuple[str, str], ...]
    limit: int


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """Per-record result of a batched write: an id, or the error that failed only this record."""

    id: str | None
    error: GatewayError | None = None
    created: bool = field(default=False)


@dataclass(frozen=True, slots=True)
class AppendWrite:
    """Text added at the end of text fields of one record, and fields set in the same write.

    ``appends`` maps a field to the text to add (on a line of its own when the field already
    holds text). ``marker`` is part of every such text and names the event that adds it: a field
    that already holds the marker already has the text, so the text is not added twice.
    """

    sobject: str
    record_id: str
    appends: Mapping[str, str]
    marker: str
    fields: Mapping[str, Any] = field(default_factory=dict)


def appended(current: str | None, text: str) -> str:
    """``current`` with ``text`` on a line of its own at the end."""
    return f"{current}\n{text}" if current else text


class SalesforceGateway(Protocol):
    """What a flow step may ask of Salesforce. One connection (org) per gateway instance."""

    async def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        """Create one record and return its 18-character id. Not idempotent."""
        ...

    async def upsert(
        self, sobject: str, external_id_field: str, external_id: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        """Create or update the record whose external id field equals ``external_id``."""
        ...

    async def update(self, sobject: str, record_id: str, fields: Mapping[str, Any]) -> None: ...

    async def delete(self, sobject: str, record_id: str) -> None: ...

    async def get(self, sobject: str, record_id: str, fields: Sequence[str]) -> dict[str, Any]: ...

    async def query(self, soql: str) -> list[dict[str, Any]]:
        """Run SOQL and return every record, following ``nextRecordsUrl``."""
        ...

    async def find(self, query: FindQuery) -> list[dict[str, Any]]:
        """The records ``query`` selects, in its order, without ``attributes``. A gateway may
        answer concurrent finds with one query; each caller still gets exactly the records its
        own query would have returned."""
        ...

    async def convert_lead(self, conversion: LeadConversion) -> ConversionResult: ...


class FlowGateway(SalesforceGateway, Protocol):
    """What a flow step may ask of Salesforce: the port, plus two writes that stay right when
    other runs (in this worker or another) write the same record at the same time."""

    async def append(self, write: AppendWrite) -> None:
        """Add ``write.appends`` to the record without losing a change someone else made
        meanwhile; once per marker, however often it is called."""
        ...

    async def find_or_create(
        self, sobject: str, key_field: str, key: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        """The one record whose ``key_field`` holds ``key``: created from ``fields`` when there
        is none (``created=True``), else returned as it is, unchanged (``created=False``)."""
        ...
