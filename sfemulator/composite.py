"""Composite (``/composite``: up to 25 chained subrequests, ``@{ref.field}`` references,
allOrNone rollback, one API call), Composite Graph (``/composite/graph``: up to 75 all-or-nothing
graphs, 500 nodes in all) and Composite Batch (``/composite/batch``: up to 25 independent
subrequests, ``haltOnError``, each executed subrequest counted as a call).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .api import ApiRequest, ApiResponse, Router
from .errors import ApiError
from .store import Store

MAX_SUBREQUESTS = 25
MAX_QUERY_OR_COLLECTIONS = 5
MAX_GRAPHS = 75
MAX_GRAPH_NODES = 500
MAX_GRAPH_FAILURES = 14
FORBIDDEN_HEADERS = {"accept", "authorization", "content-type"}
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_URL = re.compile(r"^/services/data/v(\d+\.\d)(/.*)?$")
_HALTED = "The transaction was rolled back since another operation in the same transaction failed."


class _Unresolved(Exception):
    def __init__(self, reference: str, ref_id: str) -> None:
        super().__init__(reference)
        self.reference = reference
        self.ref_id = ref_id


class CompositeApi:
    def __init__(self, store: Store, router: Router, count_calls: Callable[[int], None]) -> None:
        self.store = store
        self.router = router
        self.count_calls = count_calls
        router.add("/composite", "composite", POST=self.composite)
        router.add("/composite/batch", "composite/batch", POST=self.batch)
        router.add("/composite/graph", "composite/graph", POST=self.graph)

    def _subrequest(
        self, parent: ApiRequest, method: str, url: str, body: Any, headers: dict[str, str]
    ) -> ApiRequest:
        parts = urlsplit(url if url.startswith("/") else f"/services/data/{url}")
        match = _URL.match(parts.path)
        if match is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        merged = {k: v for k, v in parent.headers.items() if k.lower().startswith("sforce-")}
        merged.update(headers)
        return ApiRequest(
            method.upper(),
            match.group(2) or "",
            match.group(1),
            dict(parse_qsl(parts.query)),
            merged,
            body,
        )

    def composite(self, req: ApiRequest, _: re.Match[str]) -> ApiResponse:
        body = req.body if isinstance(req.body, dict) else {}
        subrequests = body.get("compositeRequest")
        if not isinstance(subrequests, list) or not subrequests:
            raise ApiError(400, "JSON_PARSER_ERROR", "compositeRequest is required")
        _check_shape(subrequests, MAX_SUBREQUESTS)
        _check_heavy(subrequests)
        responses, _ok = self._chain(req, subrequests, all_or_none=bool(body.get("allOrNone")))
        return ApiResponse(200, {"compositeResponse": responses})

    def graph(self, req: ApiRequest, _: re.Match[str]) -> ApiResponse:
        """Composite Graph: each graph all-or-nothing; after 14 failed graphs the rest halt."""
        body = req.body if isinstance(req.body, dict) else {}
        graphs = body.get("graphs")
        if not isinstance(graphs, list) or not graphs:
            raise ApiError(400, "JSON_PARSER_ERROR", "graphs is required")
        if len(graphs) > MAX_GRAPHS:
            raise ApiError(
                400, "LIMIT_EXCEEDED", f"A payload can contain at most {MAX_GRAPHS} graphs."
            )
        for graph in graphs:
            nodes = graph.get("compositeRequest") if isinstance(graph, dict) else None
            if not isinstance(nodes, list) or not nodes or not graph.get("graphId"):
                raise ApiError(
                    400, "JSON_PARSER_ERROR", "Each graph needs a graphId and a compositeRequest."
                )
            _check_shape(nodes, MAX_GRAPH_NODES)
        if sum(len(g["compositeRequest"]) for g in graphs) > MAX_GRAPH_NODES:
            raise ApiError(
                400, "LIMIT_EXCEEDED", f"A payload can contain at most {MAX_GRAPH_NODES} nodes."
            )
        out, failures = [], 0
        for graph in graphs:
            if failures >= MAX_GRAPH_FAILURES:
                halted = [{"errorCode": "PROCESSING_HALTED", "message": _HALTED}]
                responses = [
                    _entry(n["referenceId"], 400, halted, {}) for n in graph["compositeRequest"]
                ]
                ok = False
            else:
                responses, ok = self._chain(req, graph["compositeRequest"], all_or_none=True)
                failures += not ok
            out.append(
                {
                    "graphId": graph["graphId"],
                    "graphResponse": {"compositeResponse": responses},
                    "isSuccessful": ok,
                }
            )
        return ApiResponse(200, {"graphs": out})

    def _chain(
        self, req: ApiRequest, subrequests: list[dict[str, Any]], *, all_or_none: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        """Run subrequests in order, resolving references; (responses, nothing rolled back)."""
        point = self.store.savepoint()
        results: dict[str, Any] = {}
        responses: list[dict[str, Any]] = []
        failed_at: int | None = None
        for index, sub in enumerate(subrequests):
            ref_id = sub["referenceId"]
            try:
                url = _substitute(sub["url"], results)
                sub_body = _substitute(sub.get("body"), results)
            except _Unresolved as err:
                responses.append(
                    _entry(
                        ref_id,
                        400,
                        [
                            {
                                "errorCode": "PROCESSING_HALTED",
                                "message": f"Invalid reference specified. No value for {err.reference} found "
                                f"in {err.ref_id}. Provided referenceId ('{err.ref_id}') may be "
                                "invalid.",
                            }
                        ],
                        {},
                    )
                )
                continue
            try:
                sub_req = self._subrequest(
                    req, sub["method"], url, sub_body, sub.get("httpHeaders") or {}
                )
                reply = self.router.dispatch(sub_req)
            except ApiError as err:
                reply = ApiResponse.error(err)
            headers = dict(reply.headers)
            if reply.status == 201 and isinstance(reply.body, dict) and "id" in reply.body:
                headers["Location"] = f"{urlsplit(url).path.rstrip('/')}/{reply.body['id']}"
            responses.append(_entry(ref_id, reply.status, reply.body, headers))
            if reply.status < 400:
                results[ref_id] = reply.body
            elif all_or_none:
                failed_at = index
                break
        if failed_at is not None:
            self.store.rollback(point)
            halted = [{"errorCode": "PROCESSING_HALTED", "message": _HALTED}]
            responses = [
                r if i == failed_at else _entry(r["referenceId"], 400, halted, {})
                for i, r in enumerate(responses)
            ]
            responses += [
                _entry(s["referenceId"], 400, halted, {}) for s in subrequests[failed_at + 1 :]
            ]
        else:
            self.store.release(point)
        return responses, failed_at is None

    def batch(self, req: ApiRequest, _: re.Match[str]) -> ApiResponse:
        body = req.body if isinstance(req.body, dict) else {}
        subrequests = body.get("batchRequests")
        if not isinstance(subrequests, list) or not subrequests:
            raise ApiError(400, "JSON_PARSER_ERROR", "batchRequests is required")
        if len(subrequests) > MAX_SUBREQUESTS:
            raise ApiError(400, "LIMIT_EXCEEDED", "A batch can contain at most 25 subrequests.")
        halt = bool(body.get("haltOnError", False))
        results: list[dict[str, Any]] = []
        halted = False
        for sub in subrequests:
            if halted:
                results.append(
                    {
                        "statusCode": 412,
                        "result": [
                            {
                                "errorCode": "BATCH_PROCESSING_HALTED",
                                "message": "Batch processing halted per request",
                            }
                        ],
                    }
                )
                continue
            try:
                sub_req = self._subrequest(
                    req,
                    str(sub.get("method", "GET")),
                    str(sub.get("url", "")),
                    sub.get("richInput"),
                    {},
                )
                reply = self.router.dispatch(sub_req)
            except ApiError as err:
                reply = ApiResponse.error(err)
            if results:  # the batch request itself was counted as the first subrequest
                self.count_calls(1)
            results.append({"statusCode": reply.status, "result": reply.body})
            halted = halt and reply.status >= 400
        has_errors = any(r["statusCode"] >= 400 for r in results)
        return ApiResponse(200, {"hasErrors": has_errors, "results": results})


def _check_shape(subrequests: list[Any], limit: int) -> None:
    if len(subrequests) > limit:
        raise ApiError(
            400, "LIMIT_EXCEEDED", f"The composite request can contain at most {limit} subrequests."
        )
    seen: set[str] = set()
    for sub in subrequests:
        if not isinstance(sub, dict) or not all(
            sub.get(k) for k in ("method", "url", "referenceId")
        ):
            raise ApiError(
                400, "JSON_PARSER_ERROR", "Each subrequest needs method, url and referenceId."
            )
        if sub["referenceId"] in seen:
            raise ApiError(
                400,
                "INVALID_INPUT",
                f"Duplicate referenceId provided in the request: {sub['referenceId']}",
            )
        seen.add(sub["referenceId"])
        forbidden = [h for h in (sub.get("httpHeaders") or {}) if h.lower() in FORBIDDEN_HEADERS]
        if forbidden:
            raise ApiError(
                400, "INVALID_INPUT", f"Header {forbidden[0]} is not allowed in a subrequest."
            )


def _check_heavy(subrequests: list[dict[str, Any]]) -> None:
    heavy = sum(
        1
        for sub in subrequests
        if re.search(r"/(query|queryAll)/?$|/composite/sobjects", urlsplit(str(sub["url"])).path)
    )
    if heavy > MAX_QUERY_OR_COLLECTIONS:
        raise ApiError(
            400,
            "LIMIT_EXCEEDED",
            "The composite request can contain at most 5 query or sObject Collections subrequests.",
        )


def _entry(ref_id: str, status: int, body: Any, headers: dict[str, str]) -> dict[str, Any]:
    return {"body": body, "httpHeaders": headers, "httpStatusCode": status, "referenceId": ref_id}


def _substitute(value: Any, results: dict[str, Any]) -> Any:
    """``value`` with every ``@{ref.path}`` replaced by that earlier response's value."""
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole:
            return _lookup(whole, results)
        return _REFERENCE.sub(lambda m: str(_lookup(m, results)), value)
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, results) for v in value]
    return value


def _lookup(match: re.Match[str], results: dict[str, Any]) -> Any:
    ref_id, path = match.group(1), match.group(2)
    reference = ref_id + path
    if ref_id not in results:
        raise _Unresolved(reference, ref_id)
    current = results[ref_id]
    for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        key, index = step
        try:
            current = current[key] if key else current[int(index)]
        except (KeyError, IndexError, TypeError):
            raise _Unresolved(reference, ref_id) from None
    return current
