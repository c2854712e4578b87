"""The aiohttp Salesforce client: one org, one integration user, one shared session.

:class:`SalesforceClient` implements :class:`pipeline.ports.SalesforceGateway` and adds batched
writes (sObject Collections), describe, limits, identity and versions. Every call has a deadline,
runs under a concurrency bound and re-authenticates at most once on INVALID_SESSION_ID. It makes
each call once: a failure is raised as a :class:`~salesforce.errors.SalesforceError` whose flags
say what a retry would mean, and the caller's policy decides (for flow steps,
:mod:`pipeline.outcome`; one attempt budget, not one here and another there):

=============================  =================================  ==========================
failure                        idempotent (GET, PATCH, DELETE,    POST create, SOAP convert
                               upsert by external id, query)
=============================  =================================  ==========================
UNABLE_TO_LOCK_ROW             retriable                          retriable (nothing applied)
connection refused             retriable                          retriable (nothing sent)
5xx, timeout, reset            retriable                          ``ambiguous=True``: not
                                                                  retried by the engine
an unreadable 2xx body         retriable                          ``ambiguous=True``
daily or concurrency limit     ``throttle``: the engine pauses    same
anything else                  permanent                          permanent
=============================  =================================  ==========================

The transport (session, token, deadlines) is :mod:`salesforce.transport`; this module is the
Salesforce resources: URLs and bodies. Their answers are read by :mod:`salesforce.responses`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime
from functools import partial
from typing import Any, TypeVar, Unpack
from urllib.parse import quote

import orjson

from pipeline.catalogue.soql import find_query
from pipeline.ports import (
    ConversionResult,
    FindQuery,
    LeadConversion,
    RecordOutcome,
    RecordWrite,
    UpsertResult,
)
from salesforce import responses, soap
from salesforce.auth import Token, TokenRequest
from salesforce.calls import CallInfo
from salesforce.errors import (
    AuthError,
    InvalidFieldError,
    MalformedIdError,
    NotFoundError,
    PreconditionFailedError,
    QueryError,
    SalesforceError,
    UnexpectedResponseError,
    error_from_response,
)
from salesforce.limits import ApiUsage
from salesforce.responses import strip_attributes
from salesforce.settings import ConnectionSettings
from salesforce.transport import Response, Transport, TransportOptions

T = TypeVar("T")

COLLECTION_SIZE = 200  # sObject Collections: at most 200 records per call
COLLECTION_TYPE_RUNS = 10  # … and at most 10 runs of one sObject type ("chunks")
LONG_QUERY_URL = 8000  # longer query URLs go in a Composite body (URI + headers ≤ 16,384 bytes)


_ID = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?")
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")


def checked_id(record_id: str) -> str:
    """A record id safe to put in a URL path: 15 or 18 letters and digits, nothing else.

    Ids often come from event data; without this check ``"../Case/500…"`` would address
    another object.
    """
    if not isinstance(record_id, str) or not _ID.fullmatch(record_id):
        raise MalformedIdError(
            f"not a Salesforce id: {str(record_id)[:40]!r}", error_code="MALFORMED_ID"
        )
    return record_id


def checked_name(name: str) -> str:
    """An sObject or field API name safe to put in a URL path (``Lead``, ``Ext_Key__c``)."""
    if not isinstance(name, str) or not _API_NAME.fullmatch(name):
        raise InvalidFieldError(f"not an API name: {str(name)[:40]!r}", error_code="INVALID_TYPE")
    return name


def read(response: Response, what: str, parse: Callable[[Any], T]) -> T:
    """``parse`` applied to the response's JSON. An answer that does not parse is an
    :class:`UnexpectedResponseError` carrying the status, ``ambiguous`` after a write (it was
    applied; what became of it is unknown)."""
    try:
        return parse(responses.json_value(response.body, what))
    except UnexpectedResponseError as error:
        error.status = response.status
        error.ambiguous = response.after_write
        raise


@dataclass(frozen=True, slots=True)
class VersionedRecord:
    """A record as read for a conditional write: its fields, when it last changed, and the
    server's clock at the read (the response's ``Date``; None if the server sent none)."""

    values: Mapping[str, Any]
    last_modified: dt.datetime
    server_time: dt.datetime | None


def salesforce_datetime(value: str) -> dt.datetime:
    """``2013-05-20T20:49:32.000+0000`` (the API's datetime format) as an aware datetime."""
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def http_date(moment: dt.datetime) -> str:
    """An HTTP date (``Tue, 10 Aug 2015 00:00:00 GMT``); it has no fraction of a second."""
    return format_datetime(moment.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)


def _server_time(header: str | None) -> dt.datetime | None:
    if not header:
        return None
    try:
        return parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None  # a clock we cannot read is no clock: the caller waits instead


class SalesforceClient:
    """A :class:`~pipeline.ports.SalesforceGateway` for one connection. Use as a context manager.

    ``clock`` is injectable so tests control time; ``session`` lets several clients share one
    aiohttp session (the caller then closes it).
    """

    def __init__(self, settings: ConnectionSettings, **options: Unpack[TransportOptions]) -> None:
        self.settings = settings
        self._transport = Transport(settings, **options)
        self._request = self._transport.request
        self._converted_status: str | None = None

    async def __aenter__(self) -> SalesforceClient:
        self._transport.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._transport.close()

    @property
    def api_usage(self) -> ApiUsage | None:
        """The latest ``Sforce-Limit-Info`` seen, or ``None`` before the first API call."""
        return self._transport.api_usage

    @property
    def api_calls(self) -> int:
        """REST and SOAP requests sent (token requests excluded)."""
        return self._transport.api_calls

    @property
    def token(self) -> Token | None:
        return self._transport.token

    @property
    def token_requests(self) -> int:
        return self._transport.token_requests

    def on_usage(self, listener: Callable[[ApiUsage], None]) -> None:
        """Call ``listener`` with each new API usage reading (for a budget governor, metrics)."""
        self._transport.on_usage(listener)

    def on_call(self, listener: Callable[[CallInfo], None]) -> None:
        """Call ``listener`` after every HTTP exchange (metrics, client spans)."""
        self._transport.on_call(listener)

    async def connect(self) -> Token:
        """Authenticate now (otherwise the first call does) and return the token."""
        return await self._transport.connect()

    # --- single records (the gateway port) ----------------------------------------------------

    async def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        response = await self._request(
            "POST", f"/sobjects/{checked_name(sobject)}/", body=orjson.dumps(dict(fields))
        )
        return read(response, "create", responses.created_id)

    async def upsert(
        self, sobject: str, external_id_field: str, external_id: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        # The body may carry neither the external id field nor Id (Salesforce rejects both).
        body = {k: v for k, v in fields.items() if k not in (external_id_field, "Id")}
        path = (
            f"/sobjects/{checked_name(sobject)}/{checked_name(external_id_field)}/"
            f"{quote(external_id, safe='')}"
        )
        response = await self._request("PATCH", path, body=orjson.dumps(body))
        if response.status == 204:  # API versions before 46.0 answer an update with no body
            record = await self._get_path(f"{path}?fields=Id")
            found = record.get("Id")
            if not isinstance(found, str) or not found:
                raise UnexpectedResponseError("upsert: the record read back has no Id")
            return UpsertResult(id=found, created=False)
        return read(response, "upsert", lambda data: responses.upsert_result(data, response.status))

    async def update(
        self,
        sobject: str,
        record_id: str,
        fields: Mapping[str, Any],
        *,
        if_unmodified_since: dt.datetime | None = None,
    ) -> None:
        """Update one record by id (an ``Id`` key in ``fields`` is dropped). Idempotent.

        With ``if_unmodified_since`` the write is conditional: Salesforce refuses it with 412
        (:class:`PreconditionFailedError`) if the record changed after that moment. The header
        is an HTTP date, so the comparison is to the second.
        """
        body = {k: v for k, v in fields.items() if k != "Id"}
        headers = (
            {"If-Unmodified-Since": http_date(if_unmodified_since)}
            if if_unmodified_since is not None
            else None
        )
        try:
            await self._request(
                "PATCH",
                f"/sobjects/{checked_name(sobject)}/{checked_id(record_id)}",
                body=orjson.dumps(body),
                headers=headers,
            )
        except SalesforceError as error:
            if error.status != 412 or isinstance(error, PreconditionFailedError):
                raise
            raise PreconditionFailedError(str(error), status=412) from error

    async def read_for_update(
        self, sobject: str, record_id: str, fields: Sequence[str]
    ) -> VersionedRecord:
        """``fields`` of one record, its ``LastModifiedDate`` and the server's clock at the read:
        what a conditional :meth:`update` needs."""
        names = list(dict.fromkeys([*fields, "LastModifiedDate"]))
        path = f"/sobjects/{checked_name(sobject)}/{checked_id(record_id)}"
        path += "?fields=" + quote(",".join(names), safe=",")
        response = await self._request("GET", path)
        values = dict(read(response, "record", responses.record))
        modified = values.pop("LastModifiedDate", None)
        if not isinstance(modified, str):
            raise UnexpectedResponseError("read_for_update: the record has no LastModifiedDate")
        try:
            last_modified = salesforce_datetime(modified)
        except ValueError as error:
            raise UnexpectedResponseError(
                f"read_for_update: not a Salesforce datetime: {modified[:40]!r}"
            ) from error
        return VersionedRecord(values, last_modified, _server_time(response.date))

    async def delete(self, sobject: str, record_id: str) -> None:
        """Delete one record. A record already in the recycle bin counts as deleted."""
        try:
            path = f"/sobjects/{checked_name(sobject)}/{checked_id(record_id)}"
            await self._request("DELETE", path)
        except NotFoundError as exc:
            if exc.error_code != "ENTITY_IS_DELETED":
                raise

    async def get(self, sobject: str, record_id: str, fields: Sequence[str]) -> dict[str, Any]:
        path = f"/sobjects/{checked_name(sobject)}/{checked_id(record_id)}"
        if fields:
            path += "?fields=" + quote(",".join(fields), safe=",")
        return await self._get_path(path)

    async def _get_path(self, path: str) -> dict[str, Any]:
        return read(await self._request("GET", path), "get", responses.record)

    async def query(self, soql: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every record of a SOQL query, following ``nextRecordsUrl``, without ``attributes``."""
        return [record async for record in self.iter_query(soql, include_deleted=include_deleted)]

    async def find(self, query: FindQuery) -> list[dict[str, Any]]:
        """One find as its own SOQL query (:class:`~salesforce.batching.BatchingGateway`
        coalesces concurrent finds into one)."""
        return await self.query(find_query(query))

    async def iter_query(
        self, soql: str, *, include_deleted: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """Records one page at a time, so a large result never sits in memory whole."""
        resource = "queryAll" if include_deleted else "query"
        path: str | None = f"/{resource}?q={quote(soql, safe='')}"
        first = True
        while path is not None:
            if first and len(path) > LONG_QUERY_URL:
                records, path = responses.query_page(await self._query_in_body(path))
            else:
                target = path if first else _on_instance(path)
                records, path = read(
                    await self._request("GET", target), "query", responses.query_page
                )
            first = False
            for record in records:
                yield record

    async def _query_in_body(self, path: str) -> Any:
        """The first page of a query too long for a URL, as a Composite subrequest (one call).

        URI plus headers may not exceed 16 KB; a Composite body carries the same URL freely.
        """
        version = self.settings.api_version
        body = orjson.dumps(
            {
                "allOrNone": False,
                "compositeRequest": [
                    {"method": "GET", "url": f"/services/data/v{version}{path}", "referenceId": "q"}
                ],
            }
        )
        response = await self._request("POST", "/composite", body=body)
        return read(response, "composite", responses.composite_single)

    async def count(self, soql: str) -> int:
        """``totalSize`` of a ``SELECT COUNT() …`` query."""
        response = await self._request("GET", f"/query?q={quote(soql, safe='')}")
        return read(response, "count", responses.total_size)

    # --- lead conversion (SOAP) ---------------------------------------------------------------

    async def default_converted_status(self) -> str:
        """The org's first converted LeadStatus (statuses are org-configurable), cached."""
        if self._converted_status is None:
            rows = await self.query(
                "SELECT MasterLabel FROM LeadStatus WHERE IsConverted = true "
                "ORDER BY SortOrder LIMIT 1"
            )
            label = rows[0].get("MasterLabel") if rows else None
            if not isinstance(label, str) or not label:
                raise QueryError("the org has no LeadStatus with IsConverted = true")
            self._converted_status = label
        return self._converted_status

    async def convert_lead(self, conversion: LeadConversion) -> ConversionResult:
        [result] = await self.convert_leads([conversion])
        if isinstance(result, SalesforceError):
            raise result
        return result

    async def convert_leads(
        self, conversions: Sequence[LeadConversion]
    ) -> list[ConversionResult | SalesforceError]:
        """Convert up to 200 leads in one SOAP call; one result or error per lead, in order."""
        if not 0 < len(conversions) <= COLLECTION_SIZE:
            raise ValueError(f"convert_leads takes 1 to {COLLECTION_SIZE} conversions")
        pairs = []
        for conversion in conversions:
            status = conversion.converted_status or await self.default_converted_status()
            pairs.append((conversion, status))
        version = self.settings.api_version
        response = await self._request(
            "POST",
            lambda token: token.instance_url + soap.SOAP_PATH.format(version=version),
            body=lambda token: soap.convert_lead_envelope(
                token.access_token.get_secret_value(), pairs
            ),
            headers=soap.SOAP_HEADERS,
        )
        usage = soap.parse_limit_info_header(response.body)
        if usage is not None:
            self._transport.record_usage(ApiUsage(usage.api, observed_at=self._transport.now()))
        results = soap.parse_convert_lead_response(response.body)
        if len(results) != len(conversions):
            raise UnexpectedResponseError(
                f"convertLead returned {len(results)} results for {len(conversions)} leads",
                status=response.status,
                ambiguous=True,
            )
        return results

    # --- batched writes (sObject Collections) -------------------------------------------------

    async def create_many(
        self, records: Sequence[RecordWrite], *, all_or_none: bool = False
    ) -> list[RecordOutcome]:
        """Create records, 200 per call; one outcome per record, in order. Not idempotent."""
        payloads = [{"attributes": {"type": r.sobject}, **r.fields} for r in records]
        return await self._collections(
            "POST", "/composite/sobjects", payloads, all_or_none, created=True
        )

    async def update_many(
        self, records: Sequence[RecordWrite], *, all_or_none: bool = False
    ) -> list[RecordOutcome]:
        """Update records by id, 200 per call; one outcome per record, in order."""
        if any(r.id is None for r in records):
            raise ValueError("update_many needs an id on every RecordWrite")
        payloads = [{"attributes": {"type": r.sobject}, **r.fields, "id": r.id} for r in records]
        return await self._collections(
            "PATCH", "/composite/sobjects", payloads, all_or_none, created=False
        )

    async def upsert_many(
        self,
        sobject: str,
        external_id_field: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
    ) -> list[RecordOutcome]:
        """Upsert by external id (each record carries the field), 200 per call; idempotent."""
        if any(not r.get(external_id_field) for r in records):
            raise ValueError(f"upsert_many needs {external_id_field} on every record")
        payloads = [{"attributes": {"type": sobject}, **r} for r in records]
        path = f"/composite/sobjects/{checked_name(sobject)}/{checked_name(external_id_field)}"
        return await self._collections("PATCH", path, payloads, all_or_none, created=None)

    async def delete_many(
        self, record_ids: Sequence[str], *, all_or_none: bool = False
    ) -> list[RecordOutcome]:
        """Delete by id (any mix of types), 200 per call; one outcome per id, in order.

        As with :meth:`delete`, a record already in the recycle bin counts as deleted.
        """
        outcomes: list[RecordOutcome | None] = [None] * len(record_ids)
        valid: list[int] = []
        for index, record_id in enumerate(record_ids):
            try:
                checked_id(record_id)
                valid.append(index)
            except MalformedIdError as exc:  # one bad id fails only its own record
                outcomes[index] = RecordOutcome(None, exc)
        for start in range(0, len(valid), COLLECTION_SIZE):
            chunk = valid[start : start + COLLECTION_SIZE]
            ids = ",".join(record_ids[i] for i in chunk)
            path = f"/composite/sobjects?ids={ids}&allOrNone={str(all_or_none).lower()}"
            try:
                response = await self._request("DELETE", path)
                results = read(
                    response, "delete", partial(responses.collection_results, count=len(chunk))
                )
            except SalesforceError as exc:
                for i in chunk:
                    outcomes[i] = RecordOutcome(None, exc)
                continue
            for i, result in zip(chunk, results, strict=True):
                outcome = responses.record_outcome(result, created=False)
                if isinstance(outcome.error, NotFoundError) and (
                    outcome.error.error_code == "ENTITY_IS_DELETED"
                ):
                    outcome = RecordOutcome(record_ids[i], None)
                outcomes[i] = outcome
        return [
            o if o is not None else RecordOutcome(None, SalesforceError("no result"))
            for o in outcomes
        ]

    async def _collections(
        self,
        method: str,
        path: str,
        payloads: list[dict[str, Any]],
        all_or_none: bool,
        *,
        created: bool | None,
    ) -> list[RecordOutcome]:
        """One call per chunk of ≤200 records; one outcome per record, in order. A failure of
        a whole call becomes each of its records' error. Nothing is resent here: a record that
        failed on a row lock reports a retriable RowLockError for its caller's policy."""
        outcomes: list[RecordOutcome] = []
        for chunk in chunk_indices(payloads):
            body = orjson.dumps({"allOrNone": all_or_none, "records": [payloads[i] for i in chunk]})
            try:
                response = await self._request(method, path, body=body)
                results = read(
                    response,
                    "sObject Collections",
                    partial(responses.collection_results, count=len(chunk)),
                )
            except SalesforceError as exc:
                outcomes.extend(RecordOutcome(None, exc) for _ in chunk)
                continue
            outcomes.extend(responses.record_outcome(result, created) for result in results)
        return outcomes

    # --- OAuth housekeeping ------------------------------------------------------------------

    def _client_form(self) -> dict[str, str]:
        if self.settings.client_secret is None:
            raise AuthError("introspection and revocation need the connection's client_secret")
        return {
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.get_secret_value(),
        }

    async def introspect(self) -> dict[str, Any]:
        """``/services/oauth2/introspect`` for the current token: active, scope, exp (the only
        place Salesforce reveals an expiry). Needs the client secret."""
        token = await self._transport.tokens.get()
        form = {
            "token": token.access_token.get_secret_value(),
            "token_type_hint": "access_token",
            **self._client_form(),
        }
        request = TokenRequest(f"{self.settings.login_url}/services/oauth2/introspect", form)
        status, body, content_type = await self._transport.send_token_request(request)
        if status != 200:
            raise error_from_response(status, body, content_type)
        return responses.json_object(responses.json_value(body, "introspect"), "introspect")

    async def revoke(self) -> None:
        """Revoke the current access token at ``/services/oauth2/revoke`` and forget it."""
        token = self._transport.tokens.token
        if token is None:
            return
        form = {"token": token.access_token.get_secret_value()}
        request = TokenRequest(f"{self.settings.login_url}/services/oauth2/revoke", form)
        status, body, content_type = await self._transport.send_token_request(request)
        self._transport.tokens.clear()
        if status != 200:
            raise error_from_response(status, body, content_type)

    # --- metadata and org information ---------------------------------------------------------

    async def describe(self, sobject: str) -> dict[str, Any]:
        path = f"/sobjects/{checked_name(sobject)}/describe"
        return read(await self._request("GET", path), "describe", _object("describe"))

    async def describe_global(self) -> dict[str, Any]:
        response = await self._request("GET", "/sobjects/")
        return read(response, "describe", _object("describe"))

    async def limits(self) -> dict[str, Any]:
        """``/limits`` (needs "View Setup and Configuration"); accurate to about 5 minutes."""
        return read(await self._request("GET", "/limits"), "limits", _object("limits"))

    async def identity(self) -> dict[str, Any]:
        """The identity URL from the token response: org, user, username, display name, urls."""
        response = await self._request("GET", lambda token: token.id_url)
        return read(response, "identity", _object("identity"))

    async def versions(self) -> list[dict[str, Any]]:
        """``GET /services/data/``: the API versions the org serves. Needs no token, costs no call."""
        token = self._transport.tokens.token
        base = token.instance_url if token is not None else self.settings.login_url
        url = f"{base}/services/data/"
        response = await self._transport.send(
            "GET", url, body=None, headers={"Accept": "application/json"}
        )
        if response.status != 200:
            raise error_from_response(response.status, response.body, response.content_type)
        return read(response, "versions", _list_of_objects)


def _on_instance(path: str) -> Callable[[Token], str]:
    """A target for a path Salesforce gave us relative to the instance (``nextRecordsUrl``)."""
    return lambda token: token.instance_url + path


def _object(what: str) -> Callable[[Any], dict[str, Any]]:
    return lambda data: responses.json_object(data, what)


def _list_of_objects(data: Any) -> list[dict[str, Any]]:
    items = responses.json_list(data, "versions")
    return [responses.json_object(item, "versions") for item in items]


def chunk_indices(payloads: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    """Indices split into calls of ≤200 records and ≤10 runs of one sObject type each."""
    chunks: list[list[int]] = []
    current: list[int] = []
    runs = 0
    previous: str | None = None
    for index, payload in enumerate(payloads):
        kind = str(payload["attributes"]["type"])
        new_run = kind != previous
        if current and (
            len(current) == COLLECTION_SIZE or (new_run and runs == COLLECTION_TYPE_RUNS)
        ):
            chunks.append(current)
            current, runs, new_run = [], 0, True
        current.append(index)
        runs += new_run
        previous = kind
    if current:
        chunks.append(current)
    return chunks


__all__ = [
    "SalesforceClient",
    "VersionedRecord",
    "chunk_indices",
    "http_date",
    "salesforce_datetime",
    "strip_attributes",
]
