"""The REST data API resources of one org: resources list, limits, describe, sObject CRUD,
upsert by external ID, SOQL query/queryAll with ``nextRecordsUrl`` paging, and the routes that
real orgs answer with 404 (``/actions/standard/convertLead``). Composite and Collections live in
``composite.py`` and ``collections_api.py``; they register themselves on the same router.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import conditional, soql_eval
from .api import ApiRequest, ApiResponse, Router
from .describe import describe_global, describe_object, describe_object_summary, render_record
from .errors import ApiError, not_found
from .ids import IdFactory
from .limits import ApiBudget
from .store import Store

_NAME = r"([A-Za-z][A-Za-z0-9_]*)"
_VALUE = r"([^/]+)"
DEFAULT_BATCH = 2000
STANDARD_ACTIONS = (
    "chatterPost",
    "contentWorkspaceEnableFolders",
    "emailSimple",
    "submit",
    "deactivateSessionPermSet",
    "activateSessionPermSet",
)


@dataclass
class _Cursor:
    records: list[dict[str, Any]]
    created: float
    total: int
    batch: int


def multiple_choices(err: ApiError, sobject: str, version: str) -> ApiError:
    """A store 300 turned into the body real orgs send: the matching records' URLs."""
    urls = [f"/services/data/v{version}/sobjects/{sobject}/{i}" for i in err.extra["ids"]]
    return ApiError(300, err.error_code, err.message, extra={"urls": urls})


class RestApi:
    def __init__(
        self,
        store: Store,
        budget: ApiBudget,
        ids: IdFactory,
        clock: Callable[[], float],
        locator_ttl_s: float,
        page_rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.budget = budget
        self.ids = ids
        self.clock = clock
        self.locator_ttl_s = locator_ttl_s
        self.page_rng = page_rng  # set: pages vary in size, as the real server's may
        self.cursors: dict[str, _Cursor] = {}
        self.router = Router()
        r = self.router
        r.add("", "resources", GET=self.resources)
        r.add("/limits", "limits", GET=self.limits)
        r.add("/sobjects", "sobjects", GET=self.global_describe)
        r.add(f"/sobjects/{_NAME}", "sobjects/{type}", GET=self.object_info, POST=self.create)
        r.add(f"/sobjects/{_NAME}/describe", "sobjects/{type}/describe", GET=self.describe)
        r.add(
            f"/sobjects/{_NAME}/{_VALUE}",
            "sobjects/{type}/{id}",
            GET=self.retrieve,
            PATCH=self.update,
            DELETE=self.delete,
        )
        r.add(
            f"/sobjects/{_NAME}/{_NAME}/{_VALUE}",
            "sobjects/{type}/{field}/{value}",
            GET=self.retrieve_external,
            PATCH=self.upsert,
            DELETE=self.delete_external,
        )
        r.add("/query", "query", GET=self.query)
        r.add("/queryAll", "queryAll", GET=self.query_all)
        r.add(r"/query(?:All)?/(0r8[0-9A-Za-z]+)-(\d+)", "query/{locator}", GET=self.next_batch)
        r.add("/actions/standard", "actions/standard", GET=self.standard_actions)
        r.add(
            r"/actions/standard/([A-Za-z]+)",
            "actions/standard/{action}",
            GET=self.standard_action,
            POST=self.standard_action,
        )

    # -- org ---------------------------------------------------------------------------------

    def resources(self, req: ApiRequest, _: re.Match[str]) -> ApiResponse:
        base = f"/services/data/v{req.version}"
        names = (
            "sobjects",
            "query",
            "queryAll",
            "limits",
            "composite",
            "search",
            "parameterizedSearch",
            "actions",
        )
        return ApiResponse(200, {name: f"{base}/{name}" for name in names})

    def limits(self, req: ApiRequest, _: re.Match[str]) -> ApiResponse:
        used = self.budget.used()
        daily = self.budget.daily_limit
        body = {
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "DailyApiRequests": {"Max": daily, "Remaining": max(daily - used, 0)},
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
            "FileStorageMB": {"Max": 20, "Remaining": 20},
            "SingleEmail": {"Max": 15, "Remaining": 15},
        }
        return ApiResponse(200, body)

    def global_describe(self, req: ApiRequest, _: re.Match[str]) -> ApiResponse:
        return ApiResponse(200, describe_global(self.store.schema, req.version))

    def object_info(self, req: ApiRequest, m: re.Match[str]) -> ApiResponse:
        spec = self.store.spec(m.group(1))
        return ApiResponse(
            200, {"objectDescribe": describe_object_summary(spec, req.version), "recentItems": []}
        )

    def describe(self, req: ApiRequest, m: re.Match[str]) -> ApiResponse:
        return ApiResponse(200, describe_object(self.store.spec(m.group(1)), req.version))

    # -- records -----------------------------------------------------------------------------

    def create(self, req: ApiRequest, m: re.Match[str]) -> ApiResponse:
        body = _record_body(req)
        record_id = self.store.create(m.group(1), body, allow_save=req.allow_save)
        return ApiResponse(201, {"id": record_id, "success": True, "errors": []})

    def retrieve(self, req: ApiRequest, m: re.Match[str]) -> ApiResponse:
        spec = self.store.spec(m.group(1))
        record = self.store.get(spec.name, m.group(2))
        fields = self._fields(req, spec)
        headers = _etag_header(spec.name, record)
        if conditional.evaluate("GET", req.header, record, headers.get("ETag")):
            return ApiResponse(conditional.NOT_MODIFIED, headers=headers)
        return ApiResponse(200, render_record(spec, record, req.version, fields), headers)

    def update(self, req: ApiRequest, m: re.Match[str]) -> ApiResponse:
        spec = self.store.spec(m.group(1))
        body = _record_body(req)
        current = self.store.lookup(m.group(2)) if _conditional(req) else None
        live = current is not None and not current.get("IsDeleted")
        if current is not None and live and current["Id"][:3] == spec.key_prefix:
            tag = _etag_header(spec.name, current).get("ETag")
            conditional.evaluate("PATCH", req.header, current, tag)
        self.store.update(spec.name, m.group(2), body, allow_save=req.allow_save)
        return ApiResponse(204)

    def delete(self, req: ApiRequest, m: re.Match[str]) -> ApiResponse:
        self.store.delete(m.group(1), m.group(2))
        return ApiResponse(204)

    def _external(self, req: ApiRequest, m: re.Match[str]) -> dict[str, Any]:
        spec = self.store.spec(m.group(1))
        matches = self.store.match_external(spec.name, m.group(2), m.group(3))
        if not matches:
            raise not_found()
        if len(matches) > 1:
            raise multiple_choices(
                ApiError(300, "MULTIPLE_CHOICES", "", extra={"ids": [r["Id"] for r in matches]}),
                spec.name,
                req.version,
            )
        return matches[0]

    def retrieve_external(self, req: ApiRequest, m: re.Match[str]) -> ApiResponse:
        spec = self.store.spec(m.group(1))
        record = self._external(req, m)
        return ApiResponse(200, render_record(spec, record, req.version, self._fields(req, spec)))

    def delete_external(self, req: ApiRequest, m: re.Match[str]) -> ApiResponse:
        self.store.delete(m.group(1), self._external(req, m)["Id"])
        return ApiResponse(204)

    def upsert(self, req: ApiRequest, m: re.Match[str]) -> ApiResponse:
        spec = self.store.spec(m.group(1))
        update_only = req.query.get("updateOnly", "").lower() == "true"
        try:
            record_id, created = self.store.upsert(
                spec.name,
                m.group(2),
                m.group(3),
                _record_body(req),
                update_only=update_only,
                allow_save=req.allow_save,
            )
        except ApiError as err:
            if err.status == 300:
                raise multiple_choices(err, spec.name, req.version) from None
            raise
        if not created and req.version_number < 46.0:
            return ApiResponse(204)
        body = {"id": record_id, "success": True, "errors": [], "created": created}
        if req.version_number < 46.0:
            del body["created"]
        return ApiResponse(201 if created else 200, body)

    def _fields(self, req: ApiRequest, spec: Any) -> list[str] | None:
        raw = req.query.get("fields")
        if not raw:
            return None
        names = []
        for name in (n.strip() for n in raw.split(",") if n.strip()):
            field = spec.field(name)
            if field is None:
                raise ApiError(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {spec.name}"
                )
            names.append(field.name)
        return names

    # -- query -------------------------------------------------------------------------------

    def query(self, req: ApiRequest, _: re.Match[str]) -> ApiResponse:
        return self._run(req, include_deleted=False)

    def query_all(self, req: ApiRequest, _: re.Match[str]) -> ApiResponse:
        return self._run(req, include_deleted=True)

    def _run(self, req: ApiRequest, *, include_deleted: bool) -> ApiResponse:
        text = req.query.get("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "A query string must be provided.")
        result = soql_eval.run(text, self.store, req.version, include_deleted=include_deleted)
        batch = _batch_size(req.header("Sforce-Query-Options"))
        if len(result.records) <= self._page_size(batch):
            return ApiResponse(
                200, {"totalSize": result.total_size, "done": True, "records": result.records}
            )
        locator = self.ids.token("0r8", 18)
        self.cursors[locator] = _Cursor(result.records, self.clock(), result.total_size, batch)
        return self._page(req.version, locator, 0)

    def next_batch(self, req: ApiRequest, m: re.Match[str]) -> ApiResponse:
        cursor = self.cursors.get(m.group(1))
        if cursor is None or self.clock() - cursor.created > self.locator_ttl_s:
            self.cursors.pop(m.group(1), None)
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        offset = int(m.group(2))
        if offset > len(cursor.records):
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(req.version, m.group(1), offset)

    def _page_size(self, batch: int) -> int:
        if self.page_rng is None:
            return batch
        return self.page_rng.randint(max(batch // 2, 1), batch)

    def _page(self, version: str, locator: str, offset: int) -> ApiResponse:
        cursor = self.cursors[locator]
        end = offset + self._page_size(cursor.batch)
        body: dict[str, Any] = {"totalSize": cursor.total, "done": end >= len(cursor.records)}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        body["records"] = cursor.records[offset:end]
        return ApiResponse(200, body)

    # -- things real orgs do not have --------------------------------------------------------

    def standard_actions(self, req: ApiRequest, _: re.Match[str]) -> ApiResponse:
        base = f"/services/data/v{req.version}/actions/standard"
        return ApiResponse(
            200,
            {
                "actions": [
                    {"label": name, "name": name, "type": name.upper(), "url": f"{base}/{name}"}
                    for name in STANDARD_ACTIONS
                ]
            },
        )

    def standard_action(self, req: ApiRequest, m: re.Match[str]) -> ApiResponse:
        if m.group(1) not in STANDARD_ACTIONS:
            return ApiResponse(404, [{"errorCode": "NOT_FOUND", "message": "Invalid Action Type"}])
        raise ApiError(
            400, "INVALID_INPUT", f"The emulator does not run the standard action {m.group(1)}."
        )


_CONDITIONS = ("If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since")


def _conditional(req: ApiRequest) -> bool:
    return any(req.header(name) is not None for name in _CONDITIONS)


def _etag_header(sobject: str, record: dict[str, Any]) -> dict[str, str]:
    """Account rows carry an ETag (the guide: "sObject Rows (Account records only)")."""
    return {"ETag": conditional.etag(record)} if sobject in conditional.ETAG_OBJECTS else {}


def _record_body(req: ApiRequest) -> dict[str, Any]:
    if not isinstance(req.body, dict):
        raise ApiError(
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of sObject from "
            f"{'START_ARRAY' if isinstance(req.body, list) else 'VALUE_NULL'} value",
        )
    return req.body


def _batch_size(header: str | None) -> int:
    """``Sforce-Query-Options: batchSize=N``, clamped to Salesforce's 200..2000."""
    if not header:
        return DEFAULT_BATCH
    match = re.search(r"batchSize\s*=\s*(\d+)", header)
    if not match:
        return DEFAULT_BATCH
    return min(max(int(match.group(1)), 200), DEFAULT_BATCH)
