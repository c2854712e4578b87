"""The OpenAPI 3.1 document of the run-history API, served at ``/openapi.json``.

Written by hand, next to the code it describes; ``tests/history/test_api.py`` validates it and
checks real responses of every route against its schemas, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from pipeline.result import RunStatus, StepStatus

_RUN_STATUSES = [str(s) for s in RunStatus if s is not RunStatus.NO_MATCH]
_STEP_STATUSES = [str(s) for s in StepStatus]


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema["type"]
    return {**schema, "type": [kind, "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": list(properties),
        "properties": properties,
        "additionalProperties": False,
    }


_TEXT = {"type": "string"}
_INT = {"type": "integer"}
_TIME = {"type": "string", "format": "date-time"}
_TRACE = _nullable({"type": "string", "pattern": "^[0-9a-f]{32}$"})
_ANY_OBJECT = {"type": "object"}

_RUN: dict[str, Any] = {
    "run_id": {**_TEXT, "description": "the run key: one event through one flow version"},
    "flow": _TEXT,
    "version": _INT,
    "event_id": _TEXT,
    "ticket_id": _TEXT,
    "status": {"type": "string", "enum": _RUN_STATUSES},
    "failed_step": _nullable(_TEXT),
    "attempts": _INT,
    "duration_ms": {"type": "number"},
    "first_at": {**_TIME, "description": "the first run result (a retry ends later)"},
    "at": {**_TIME, "description": "the latest run result"},
    "steps": {"type": "array", "items": _ref("StepSummary")},
    "published": {**_ANY_OBJECT, "description": "the flow's publish: values"},
    "trace_id": _TRACE,
}

_SCHEMAS: dict[str, Any] = {
    "StepSummary": _object(
        {
            "step": _TEXT,
            "status": {"type": "string", "enum": _STEP_STATUSES},
            "salesforce_id": _nullable(_TEXT),
        },
        "One step as the run result lists it.",
    ),
    "Run": _object(_RUN, "A flow run over one event, as its latest run result tells it."),
    "StepOutput": _object(
        {
            "run_id": _TEXT,
            "step": _TEXT,
            "flow": _TEXT,
            "flow_version": _INT,
            "event_id": _TEXT,
            "ticket_id": _TEXT,
            "action": {**_TEXT, "examples": ["salesforce.create_record"]},
            "object": _nullable(_TEXT),
            "status": {"type": "string", "enum": _STEP_STATUSES},
            "attempt": _INT,
            "duration_ms": {"type": "number"},
            "salesforce_id": _nullable(_TEXT),
            "idempotency_key": _nullable(_TEXT),
            "inputs": {**_ANY_OBJECT, "description": "rendered inputs, secrets and PII masked"},
            "outputs": {**_ANY_OBJECT, "description": "outputs, secrets and PII masked"},
            "error": {
                "type": ["object", "null"],
                "description": "class, message, errorCode, fields, retriable",
            },
            "at": _TIME,
            "trace_id": _TRACE,
        },
        "What one step did (its latest output; a `reused` output never hides what it did).",
    ),
    "RunDetail": _object(
        {**_RUN, "step_outputs": {"type": "array", "items": _ref("StepOutput")}},
        "A run with its step outputs, in the order the steps ran.",
    ),
    "RunPage": _object(
        {
            "items": {
                "type": "array",
                "items": {"anyOf": [_ref("Run"), _ref("RunDetail")]},
                "description": "RunDetail items when include=steps",
            },
            "next": {**_nullable(_TEXT), "description": "the cursor of the next page"},
        },
        "A page of runs, newest first.",
    ),
    "StepList": _object(
        {"items": {"type": "array", "items": _ref("StepOutput")}}, "A run's step outputs."
    ),
    "DeadLetter": _object(
        {
            "id": {**_TEXT, "description": "partition:offset on the dead-letter topic"},
            "partition": _INT,
            "offset": _INT,
            "ticket_id": {**_nullable(_TEXT), "description": "the record key"},
            "event_id": _nullable(_TEXT),
            "flow": _nullable(_TEXT),
            "flow_version": _nullable(_INT),
            "step": _nullable(_TEXT),
            "stage": _nullable(_TEXT),
            "reason": _nullable(_TEXT),
            "exception_class": _nullable(_TEXT),
            "exception_message": _nullable(_TEXT),
            "salesforce_error_code": _nullable(_TEXT),
            "salesforce_fields": {"type": "array", "items": _TEXT},
            "attempts": _nullable(_INT),
            "origin": {
                "type": ["object", "null"],
                "required": ["topic", "partition", "offset"],
                "properties": {"topic": _TEXT, "partition": _INT, "offset": _INT},
                "additionalProperties": False,
            },
            "at": _TIME,
            "payload_bytes": _INT,
            "trace_id": _TRACE,
            "problem": {
                **_nullable(_TEXT),
                "description": "why the context headers could not be read",
            },
        },
        "A dead letter's context (the payload stays on the topic: `actionflows dlq show`).",
    ),
    "DeadLetterPage": _object(
        {
            "items": {"type": "array", "items": _ref("DeadLetter")},
            "next": _nullable(_TEXT),
        },
        "A page of dead letters, newest first.",
    ),
    "IndexTopic": _object(
        {
            "role": {"type": "string", "enum": ["run-results", "step-outputs", "dead-letters"]},
            "retention_ms": _nullable(_INT),
            "indexed": _INT,
            "unreadable": _INT,
            "positions": {
                "type": "object",
                "additionalProperties": _INT,
                "description": "partition → next offset to index",
            },
        },
        "One indexed topic.",
    ),
    "IndexStatus": _object(
        {
            "alive": {"type": "boolean"},
            "last_error": _nullable(_TEXT),
            "rebuilds": _INT,
            "topics": {"type": "object", "additionalProperties": _ref("IndexTopic")},
            "rows": _object(
                {"runs": _INT, "steps": _INT, "dead_letters": _INT}, "Rows in the store."
            ),
        },
        "The indexer's state.",
    ),
    "RebuildStarted": _object(
        {"rebuild": {"type": "string", "const": "started"}}, "The rebuild was started."
    ),
    "Check": _object({"ok": {"type": "boolean"}, "detail": _TEXT}, "One check and why."),
    "HealthReport": _object(
        {
            "status": {"type": "string", "enum": ["ok", "failing"]},
            "checks": {"type": "object", "additionalProperties": _ref("Check")},
        },
        "Liveness or readiness, check by check.",
    ),
    "Error": _object({"error": _TEXT, "message": _TEXT}, "What went wrong."),
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or _TEXT}  # fmt: skip


_WHEN = "ISO 8601 (2026-11-24T10:00:00Z; no zone: UTC) or a duration ago (30m, 2h, 7d)"
_PAGING = [
    _query("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
    _query("cursor", "the `next` of the previous page"),
]
_UNAUTHORIZED = {"401": _json("Error", "no token, or not the right one")}
_ERRORS = {"400": _json("Error", "a filter or cursor that cannot be used"), **_UNAUTHORIZED}
_RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": _TEXT}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "actionflows run history",
            "version": "1",
            "description": "Runs, step outputs and dead letters indexed from the output "
            "topics. Every route but /healthz needs `Authorization: Bearer <token>`.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/runs": {
                "get": {
                    "operationId": "listRuns",
                    "summary": "Runs, newest first",
                    "parameters": [
                        _query("ticket", "ticket id"),
                        _query("event", "event id"),
                        _query("flow", "flow name"),
                        _query("status", "run status", {"type": "string", "enum": _RUN_STATUSES}),
                        _query("since", f"runs at or after: {_WHEN}"),
                        _query("until", f"runs before: {_WHEN}"),
                        _query(
                            "include",
                            "steps: each run's step outputs too",
                            {"type": "string", "enum": ["steps"]},
                        ),
                        *_PAGING,
                    ],
                    "responses": {"200": _json("RunPage", "a page of runs"), **_ERRORS},
                }
            },
            "/api/runs/{run_id}": {
                "get": {
                    "operationId": "getRun",
                    "summary": "A run and its step outputs",
                    "parameters": [_RUN_ID],
                    "responses": {
                        "200": _json("RunDetail", "the run"),
                        "404": _json("Error", "no such run in the history"),
                        **_UNAUTHORIZED,
                    },
                }
            },
            "/api/runs/{run_id}/steps": {
                "get": {
                    "operationId": "listRunSteps",
                    "summary": "A run's step outputs, masked, in the order they ran",
                    "parameters": [_RUN_ID],
                    "responses": {
                        "200": _json("StepList", "the step outputs"),
                        "404": _json("Error", "no such run in the history"),
                        **_UNAUTHORIZED,
                    },
                }
            },
            "/api/dead-letters": {
                "get": {
                    "operationId": "listDeadLetters",
                    "summary": "Dead letters, newest first",
                    "parameters": [
                        _query("ticket", "ticket id (the record key)"),
                        _query("event", "event id"),
                        _query("flow", "flow name"),
                        _query("reason", "reason code, e.g. malformed_json"),
                        _query("since", f"letters at or after: {_WHEN}"),
                        _query("until", f"letters before: {_WHEN}"),
                        *_PAGING,
                    ],
                    "responses": {
                        "200": _json("DeadLetterPage", "a page of dead letters"),
                        **_ERRORS,
                    },
                }
            },
            "/api/index": {
                "get": {
                    "operationId": "getIndex",
                    "summary": "The indexer's state",
                    "responses": {"200": _json("IndexStatus", "the indexer"), **_UNAUTHORIZED},
                }
            },
            "/api/index/rebuild": {
                "post": {
                    "operationId": "rebuildIndex",
                    "summary": "Empty the history and index the topics again (audited)",
                    "responses": {"202": _json("RebuildStarted", "started"), **_UNAUTHORIZED},
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "live",
                    "summary": "Liveness; needs no token",
                    "security": [],
                    "responses": {
                        "200": _json("HealthReport", "alive"),
                        "503": _json("HealthReport", "not alive, and why"),
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "ready",
                    "summary": "Readiness",
                    "responses": {
                        "200": _json("HealthReport", "ready"),
                        "503": _json("HealthReport", "not ready, and why"),
                        "401": _UNAUTHORIZED["401"],
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics (text exposition format)",
                    "responses": {
                        "200": {
                            "description": "the metrics",
                            "content": {"text/plain": {"schema": _TEXT}},
                        },
                        "401": _UNAUTHORIZED["401"],
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "the OpenAPI document",
                            "content": {"application/json": {"schema": _ANY_OBJECT}},
                        },
                        "401": _UNAUTHORIZED["401"],
                    },
                }
            },
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
