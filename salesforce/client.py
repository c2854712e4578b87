"""The aiohttp Salesforce client: one org, one integration user, one shared session.

:class:`SalesforceClient` implements :class:`pipeline.ports.SalesforceGateway` and adds batched
writes (sObject Collections), describe, limits, identity and versions. Every call has a deadline,
runs under a concurrency bound, re-authenticates at most once on INVALID_SESSION_ID, and retries
only what is safe to repeat:

=============================  =================================  ==========================
failure                        idempotent (GET, PATCH, DELETE,    POST create, SOAP convert
                               upsert by external id, query)
=============================  =================================  ==========================
UNABLE_TO_LOCK_ROW             retry                              retry (nothing was applied)
concurrent-request limit       retry                              retry (nothing was applied)
connection refused             retry                              retry (nothing was sent)
5xx, timeout, reset            retry                              raise, ``ambiguous=True``
daily API limit                raise (``throttle``: pause)        raise
anything else                  raise                              raise
=============================  =================================  ==========================

The transport (session, token, deadlines, retries) is :mod:`salesforce.transport`; this module
is the Salesforce resources: URLs, bodies and the parsing of their answers (with orjson).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Unpack
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
from salesforce import soap
from salesforce.auth import Token, TokenRequest
from salesforce.errors import (
    AuthError,
    InvalidFieldError,
    MalformedIdError,
    NotFoundError,
    QueryError,
    SalesforceError,
    error_from_record,
    error_from_response,
)
from salesforce.limits import ApiUsage
from salesforce.settings import ConnectionSettings
from salesforce.transport import Transport, TransportOptions

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


def strip_attributes(value: Any) -> Any:
    """A record without Salesforce's ``attributes`` blocks, at every level of nesting."""
    if isinstance(value, dict):
        return {k: strip_attributes(v) for k, v in value.items() if k != "attributes"}
    if isinstance(value, list):
        return [strip_attributes(v) for v in value]
    return value


class SalesforceClient:
    """A :class:`~pipeline.ports.SalesforceGateway` for one connection. Use as a context manager.

    ``clock``, ``sleep`` and ``rng`` are injectable so tests control time and jitter;
    ``session`` lets several clients share one aiohttp session (the caller then closes it).
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

    async def connect(self) -> Token:
        """Authenticate now (otherwise the first call does) and return the token."""
        return await self._transport.connect()

    # --- single records (the gateway port) ----------------------------------------------------

    async def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        response = await self._request(
            "POST",
            f"/sobjects/{checked_name(sobject)}/",
            body=orjson.dumps(dict(fields)),
            idempotent=False,
        )
        return str(response.json()["id"])

    async def upsert(
        self, sobject: str, external_id_field: str, external_id: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        # The body may carry neither the external id field nor Id (Salesforce rejects both).
        body = {k: v for k, v in fields.items() if k not in (external_id_field, "Id")}
        path = (
            f"/sobjects/{checked_name(sobject)}/{checked_name(external_id_field)}/"
            f"{quote(external_id, safe='')}"
        )
        response = await self._request("PATCH", path, body=orjson.dumps(body), idempotent=True)
        if response.status == 204:  # API versions before 46.0 answer an update with no body
            record = await self._get_path(f"{path}?fields=Id")
            return UpsertResult(id=str(record["Id"]), created=False)
        data = response.json()
        return UpsertResult(
            id=str(data["id"]), created=bool(data.get("created", response.status == 201))
        )

    async def update(self, sobject: str, record_id: str, fields: Mapping[str, Any]) -> None:
        """Update one record by id (an ``Id`` key in ``fields`` is dropped). Idempotent."""
        body = {k: v for k, v in fields.items() if k != "Id"}
        await self._request(
            "PATCH",
            f"/sobjects/{checked_name(sobject)}/{checked_id(record_id)}",
            body=orjson.dumps(body),
            idempotent=True,
        )

    async def delete(self, sobject: str, record_id: str) -> None:
        """Delete one record. A record already in the recycle bin counts as deleted."""
        try:
            path = f"/sobjects/{checked_name(sobject)}/{checked_id(record_id)}"
            await self._request("DELETE", path, idempotent=True)
        except NotFoundError as exc:
            if exc.error_code != "ENTITY_IS_DELETED":
                raise

    async def get(self, sobject: str, record_id: str, fields: Sequence[str]) -> dict[str, Any]:
        path = f"/sobjects/{checked_name(sobject)}/{checked_id(record_id)}"
        if fields:
            path += "?fields=" + quote(",".join(fields), safe=",")
        return await self._get_path(path)

    async def _get_path(self, path: str) -> dict[str, Any]:
        response = await self._request("GET", path, idempotent=True)
        return dict(strip_attributes(response.json()))

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
                page = await self._query_in_body(path)
            else:
                target = path if first else _on_instance(path)
                page = (await self._request("GET", target, idempotent=True)).json()
            first = False
            for record in page.get("records") or ():
                yield strip_attributes(record)
            path = None if page.get("done", True) else page.get("nextRecordsUrl")
            if path is None and not page.get("done", True):
                raise QueryError("query page is not done but has no nextRecordsUrl")

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
        response = await self._request("POST", "/composite", body=body, idempotent=True)
        [sub] = response.json()["compositeResponse"]
        status = int(sub.get("httpStatusCode", 500))
        if status >= 300:
            raise error_from_response(status, orjson.dumps(sub.get("body")), "application/json")
        return sub["body"]

    async def count(self, soql: str) -> int:
        """``totalSize`` of a ``SELECT COUNT() …`` query."""
        response = await self._request("GET", f"/query?q={quote(soql, safe='')}", idempotent=True)
        return int(response.json()["totalSize"])

    # --- lead conversion (SOAP) ---------------------------------------------------------------

    async def default_converted_status(self) -> str:
        """The org's first converted LeadStatus (statuses are org-configurable), cached."""
        if self._converted_status is None:
            rows = await self.query(
                "SELECT MasterLabel FROM LeadStatus WHERE IsConverted = true "
                "ORDER BY SortOrder LIMIT 1"
            )
            if not rows:
                raise QueryError("the org has no LeadStatus with IsConverted = true")
            self._converted_status = str(rows[0]["MasterLabel"])
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
            idempotent=False,
        )
        usage = soap.parse_limit_info_header(response.body)
        if usage is not None:
            self._transport.record_usage(ApiUsage(usage.api, observed_at=self._transport.now()))
        results = soap.parse_convert_lead_response(response.body)
        if len(results) != len(conversions):
            raise SalesforceError(
                f"convertLead returned {len(results)} results for {len(conversions)} leads"
            )
        return results

    # --- batched writes (sObject Collections) -------------------------------------------------

    async def create_many(
        self, records: Sequence[RecordWrite], *, all_or_none: bool = False
    ) -> list[RecordOutcome]:
        """Create records, 200 per call; one outcome per record, in order. Not idempotent."""
        payloads = [{"attributes": {"type": r.sobject}, **r.fields} for r in records]
        return await self._collections(
            "POST", "/composite/sobjects", payloads, all_or_none, idempotent=False, created=True
        )

    async def update_many(
        self, records: Sequence[RecordWrite], *, all_or_none: bool = False
    ) -> list[RecordOutcome]:
        """Update records by id, 200 per call; one outcome per record, in order."""
        if any(r.id is None for r in records):
            raise ValueError("update_many needs an id on every RecordWrite")
        payloads = [{"attributes": {"type": r.sobject}, **r.fields, "id": r.id} for r in records]
        return await self._collections(
            "PATCH", "/composite/sobjects", payloads, all_or_none, idempotent=True, created=False
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
        return await self._collections(
            "PATCH", path, payloads, all_or_none, idempotent=True, created=None
        )

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
                response = await self._request("DELETE", path, idempotent=True)
                results = response.json()
                if not isinstance(results, list) or len(results) != len(chunk):
                    raise SalesforceError("sObject Collections returned a mismatched result list")
            except SalesforceError as exc:
                for i in chunk:
                    outcomes[i] = RecordOutcome(None, exc)
                continue
            for i, result in zip(chunk, results, strict=True):
                outcome = _outcome(result, created=False)
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
        idempotent: bool,
        created: bool | None,
    ) -> list[RecordOutcome]:
        outcomes: list[RecordOutcome | None] = [None] * len(payloads)
        for chunk in chunk_indices(payloads):
            await self._collection_chunk(
                method, path, payloads, chunk, outcomes, all_or_none, idempotent, created
            )
        return [
            o if o is not None else RecordOutcome(None, SalesforceError("no result"))
            for o in outcomes
        ]

    async def _collection_chunk(
        self,
        method: str,
        path: str,
        payloads: list[dict[str, Any]],
        chunk: list[int],
        outcomes: list[RecordOutcome | None],
        all_or_none: bool,
        idempotent: bool,
        created: bool | None,
    ) -> None:
        """One ≤200-record call, then again for the records that failed only on a row lock.

        With allOrNone false, a record failing with UNABLE_TO_LOCK_ROW was not written, so it
        may be sent again even by a create. A failure of the whole call fails each record.
        """
        pending = chunk
        for attempt in range(1, self.settings.max_attempts + 1):
            body = orjson.dumps(
                {"allOrNone": all_or_none, "records": [payloads[i] for i in pending]}
            )
            try:
                response = await self._request(method, path, body=body, idempotent=idempotent)
                results = response.json()
                if not isinstance(results, list) or len(results) != len(pending):
                    raise SalesforceError("sObject Collections returned a mismatched result list")
            except SalesforceError as exc:
                for i in pending:
                    outcomes[i] = RecordOutcome(None, exc)
                return
            retry: list[int] = []
            for i, result in zip(pending, results, strict=True):
                outcome = _outcome(result, created)
                last = attempt == self.settings.max_attempts
                if (
                    outcome.error is not None
                    and outcome.error.retriable
                    and not outcome.error.throttle
                    and not all_or_none
                    and not last
                ):
                    retry.append(i)
                outcomes[i] = outcome
            if not retry:
                return
            pending = retry
            await self._transport.pause(attempt)

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
        return dict(orjson.loads(body))

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
        response = await self._request("GET", path, idempotent=True)
        return dict(response.json())

    async def describe_global(self) -> dict[str, Any]:
        response = await self._request("GET", "/sobjects/", idempotent=True)
        return dict(response.json())

    async def limits(self) -> dict[str, Any]:
        """``/limits`` (needs "View Setup and Configuration"); accurate to about 5 minutes."""
        response = await self._request("GET", "/limits", idempotent=True)
        return dict(response.json())

    async def identity(self) -> dict[str, Any]:
        """The identity URL from the token response: org, user, username, display name, urls."""
        response = await self._request("GET", lambda token: token.id_url, idempotent=True)
        return dict(response.json())

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
        return list(response.json())


def _on_instance(path: str) -> Callable[[Token], str]:
    """A target for a path Salesforce gave us relative to the instance (``nextRecordsUrl``)."""
    return lambda token: token.instance_url + path


def _outcome(result: Mapping[str, Any], created: bool | None) -> RecordOutcome:
    record_id = result.get("id")
    if result.get("success"):
        was_created = bool(result.get("created")) if created is None else created
        return RecordOutcome(str(record_id), None, created=was_created)
    errors = result.get("errors") or [{"message": "record failed without an error"}]
    return RecordOutcome(str(record_id) if record_id else None, error_from_record(errors[0]))


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


__all__ = ["SalesforceClient", "chunk_indices", "strip_attributes"]
