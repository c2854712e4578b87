"""sObject Collections (``/composite/sobjects``): up to 200 records per call, one API call,
results in request order with ``statusCode``-keyed errors, and allOrNone rollback
(``ALL_OR_NONE_OPERATION_ROLLED_BACK`` for the records that were valid).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import ids
from .api import ApiRequest, ApiResponse, Router
from .describe import render_record
from .errors import ApiError
from .store import Store

MAX_RECORDS = 200
_ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
    "fields": [],
}
Outcome = dict[str, Any]


def _too_many() -> ApiError:
    return ApiError(
        400,
        "EXCEEDED_ID_LIMIT",
        "record limit reached. cannot submit more than 200 records into this call",
    )


class CollectionsApi:
    def __init__(self, store: Store, router: Router) -> None:
        self.store = store
        router.add(
            "/composite/sobjects",
            "composite/sobjects",
            POST=self.create,
            PATCH=self.update,
            DELETE=self.delete,
        )
        router.add(
            r"/composite/sobjects/([A-Za-z][A-Za-z0-9_]*)",
            "composite/sobjects/{type}",
            GET=self.retrieve,
            POST=self.retrieve,
        )
        router.add(
            r"/composite/sobjects/([A-Za-z][A-Za-z0-9_]*)/([A-Za-z][A-Za-z0-9_]*)",
            "composite/sobjects/{type}/{field}",
            PATCH=self.upsert,
        )

    def create(self, req: ApiRequest, _: re.Match[str]) -> ApiResponse:
        records, all_or_none = _records(req)

        def one(record: dict[str, Any]) -> Outcome:
            if any(k.lower() == "id" for k in record):
                raise ApiError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
            new_id = self.store.create(_type(record), _fields(record), allow_save=req.allow_save)
            return {"id": new_id, "success": True, "errors": []}

        return self._apply(records, all_or_none, one, req.lock_indexes, keep_ids=False)

    def update(self, req: ApiRequest, _: re.Match[str]) -> ApiResponse:
        records, all_or_none = _records(req)

        def one(record: dict[str, Any]) -> Outcome:
            record_id = next((v for k, v in record.items() if k.lower() == "id"), None)
            if not record_id:
                raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call", [])
            body = {k: v for k, v in _fields(record).items() if k.lower() != "id"}
            updated = self.store.update(
                _type(record), str(record_id), body, allow_save=req.allow_save
            )
            return {"id": updated, "success": True, "errors": []}

        return self._apply(records, all_or_none, one, req.lock_indexes)

    def upsert(self, req: ApiRequest, m: re.Match[str]) -> ApiResponse:
        records, all_or_none = _records(req)
        sobject, field = m.group(1), m.group(2)
        spec = self.store.spec(sobject)
        ext = spec.field(field)
        if ext is None or not ext.external_id:
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"Field name provided, {field} is not an External ID or indexed field "
                f"for {spec.name}",
            )

        def one(record: dict[str, Any]) -> Outcome:
            body = _fields(record)
            key = next((v for k, v in body.items() if k.lower() == ext.name.lower()), None)
            if key in (None, ""):
                raise ApiError(400, "MISSING_ARGUMENT", f"{ext.name} not specified", [ext.name])
            body = {k: v for k, v in body.items() if k.lower() != ext.name.lower()}
            try:
                record_id, created = self.store.upsert(
                    spec.name, ext.name, str(key), body, allow_save=req.allow_save
                )
            except ApiError as err:
                if err.status == 300:
                    raise ApiError(
                        300,
                        "DUPLICATE_EXTERNAL_ID",
                        f"{ext.name}: more than one record found for external id "
                        f"field: {err.extra['ids']}",
                        [ext.name],
                    ) from None
                raise
            return {"id": record_id, "success": True, "errors": [], "created": created}

        return self._apply(records, all_or_none, one, req.lock_indexes)

    def delete(self, req: ApiRequest, _: re.Match[str]) -> ApiResponse:
        raw = req.query.get("ids", "")
        targets = [i for i in raw.split(",") if i]
        if not targets:
            raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
        if len(targets) > MAX_RECORDS:
            raise _too_many()
        all_or_none = req.query.get("allOrNone", "false").lower() == "true"

        def one(record_id: str) -> Outcome:
            normal = ids.normalize(record_id)
            sobject = ids.object_for(normal) if normal else None
            if normal is None or sobject is None:
                raise ApiError(400, "MALFORMED_ID", f"malformed id {record_id}", [])
            if self.store.lookup(normal) is None:
                raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
            return {"id": self.store.delete(sobject, normal), "success": True, "errors": []}

        return self._apply(targets, all_or_none, one, req.lock_indexes, id_of=lambda t: t)

    def retrieve(self, req: ApiRequest, m: re.Match[str]) -> ApiResponse:
        spec = self.store.spec(m.group(1))
        source = req.body if req.method == "POST" and isinstance(req.body, dict) else req.query
        ids = source.get("ids") or []
        fields = source.get("fields") or []
        ids = ids.split(",") if isinstance(ids, str) else ids
        fields = fields.split(",") if isinstance(fields, str) else fields
        if not fields:
            raise ApiError(400, "MISSING_ARGUMENT", "fields parameter is required")
        limit = 2000 if req.method == "POST" else MAX_RECORDS
        if len(ids) > limit:
            raise _too_many()
        names = []
        for name in fields:
            field = spec.field(name)
            if field is None:
                raise ApiError(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {spec.name}"
                )
            names.append(field.name)
        out: list[Any] = []
        for record_id in ids:
            found = self.store.lookup(record_id)
            if found is None or found.get("IsDeleted") or found["Id"][:3] != spec.key_prefix:
                out.append(None)
            else:
                out.append(render_record(spec, found, req.version, names))
        return ApiResponse(200, out)

    def _apply(
        self,
        items: list[Any],
        all_or_none: bool,
        one: Callable[[Any], Outcome],
        locked: frozenset[int],
        id_of: Callable[[Any], str | None] = lambda _: None,
        *,
        keep_ids: bool = True,
    ) -> ApiResponse:
        """Run ``one`` per item in order, as one save; ``locked`` items fail with
        UNABLE_TO_LOCK_ROW (an injected fault), as contended rows do in a real org."""
        point = self.store.savepoint()
        results: list[Outcome] = []
        failed = False
        with self.store.one_save():
            for index, item in enumerate(items):
                try:
                    if index in locked:
                        raise ApiError(
                            400,
                            "UNABLE_TO_LOCK_ROW",
                            "unable to obtain exclusive access "
                            "to this record or 1 records: " + (id_of(item) or ""),
                            [],
                        )
                    results.append(one(item))
                except ApiError as err:
                    failed = True
                    outcome: Outcome = {"success": False, "errors": [err.record_error()]}
                    if id_of(item):
                        outcome = {"id": id_of(item), **outcome}
                    results.append(outcome)
        if all_or_none and failed:
            self.store.rollback(point)
            # Rolled-back creates have no id any more; updates and deletes keep theirs.
            results = [
                r
                if not r["success"]
                else {
                    **({"id": r["id"]} if keep_ids else {}),
                    "success": False,
                    "errors": [dict(_ROLLED_BACK)],
                }
                for r in results
            ]
        else:
            self.store.release(point)
        return ApiResponse(200, results)


def _records(req: ApiRequest) -> tuple[list[dict[str, Any]], bool]:
    body = req.body
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", "Expected a records array in the request body")
    if len(body["records"]) > MAX_RECORDS:
        raise _too_many()
    if not all(isinstance(record, dict) for record in body["records"]):
        raise ApiError(400, "JSON_PARSER_ERROR", "Each element of records must be an object")
    return body["records"], bool(body.get("allOrNone", False))


def _type(record: Any) -> str:
    attrs = record.get("attributes") if isinstance(record, dict) else None
    if not isinstance(attrs, dict) or not attrs.get("type"):
        raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.", [])
    return str(attrs["type"])


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "attributes"}
