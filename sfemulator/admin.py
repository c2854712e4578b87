"""Admin endpoints under ``/__emulator/`` so tests can drive an out-of-process emulator.

None of them is counted as an API call. ``GET state`` (records, usage, counts, faults),
``GET calls``, ``GET|PUT faults``, ``GET fault-counts`` (what fired, by kind and by rule, and the
answers withheld now), ``POST release`` (end those holds), ``POST reset``, ``POST expire-tokens``, ``POST clock``
(``{"advance_s": N}``), ``POST refresh-token``, ``POST records/{sobject}`` (seed one record
without validation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .errors import ApiError
from .faults import FaultRule

if TYPE_CHECKING:
    from .org import Org


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body, default=str), content_type="application/json"
    )


def fault_counts(org: Org) -> dict[str, Any]:
    """What was injected since the start or the last reset, by kind (``expire_tokens`` counts
    calls to ``POST expire-tokens``); by rule since the rules were last set; withheld now."""
    fired = {
        key.removeprefix("fault "): count
        for key, count in org.counts.items()
        if key.startswith("fault ")
    }
    return {
        "fired": fired,
        "rules": [
            {"rule": rule.to_dict(), "fired": fired_count}
            for rule, fired_count in zip(org.faults.rules, org.faults.fired, strict=True)
        ],
        "withheld": org.faults.withheld,
    }


def state(org: Org, sobject: str | None = None, *, include_deleted: bool = False) -> dict[str, Any]:
    names = [sobject] if sobject else list(org.schema)
    return {
        "url": org.base_url,
        "api_version": org.config.api_version,
        "api_usage": {"used": org.budget.used(), "limit": org.budget.daily_limit},
        "call_counts": dict(org.counts),
        "faults": [rule.to_dict() for rule in org.faults.rules],
        "records": {name: org.records(name, include_deleted=include_deleted) for name in names},
    }


async def admin(org: Org, request: web.Request) -> web.Response:
    action = request.path.removeprefix("/__emulator/").strip("/")
    method = request.method
    try:
        if action == "state" and method == "GET":
            deleted = request.query.get("deleted", "").lower() == "true"
            return _json(state(org, request.query.get("sobject"), include_deleted=deleted))
        if action == "calls" and method == "GET":
            return _json(dict(org.counts))
        if action == "faults" and method == "GET":
            return _json([rule.to_dict() for rule in org.faults.rules])
        if action == "fault-counts" and method == "GET":
            return _json(fault_counts(org))
        if action == "release" and method == "POST":
            return _json({"released": org.faults.release()})
        if action == "faults" and method == "PUT":
            rules = [FaultRule.from_dict(item) for item in orjson.loads(await request.read())]
            org.faults.replace(rules)
            return _json([rule.to_dict() for rule in rules])
        if action == "reset" and method == "POST":
            org.reset()
            return _json({"reset": True})
        if action == "expire-tokens" and method == "POST":
            org.oauth.expire_all()
            org.counts["fault expire_tokens"] += 1
            return _json({"expired": True})
        if action == "clock" and method == "POST":
            body = orjson.loads(await request.read() or b"{}")
            org.clock_offset += float(body.get("advance_s", 0.0))
            return _json({"now": org.now()})
        if action == "refresh-token" and method == "POST":
            return _json({"refresh_token": org.oauth.mint_refresh_token()})
        if action.startswith("records/") and method == "POST":
            fields = orjson.loads(await request.read())
            return _json({"id": org.store.insert_raw(action.split("/", 1)[1], fields)}, 201)
    except (ValueError, TypeError, orjson.JSONDecodeError) as err:
        return _json({"error": str(err)}, 400)
    except ApiError as err:
        return _json(err.rest_body(), err.status)
    return _json({"error": f"no admin route {method} /__emulator/{action}"}, 404)
