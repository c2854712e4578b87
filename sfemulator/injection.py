"""Applying the fault plan to a live request: latency, injected errors in the route's own dialect
(REST JSON array, OAuth ``{"error","error_description"}``, SOAP fault, or a CDN's HTML page),
hangs, TCP resets and lost answers after commit. Also tracks requests in flight for the
concurrency limit.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from . import soap
from .faults import SERVICE_UNAVAILABLE_HTML, FaultRule, sobject_of
from .limits import DAILY_LIMIT_MESSAGE
from .org import Org

JSON_TYPE = "application/json;charset=UTF-8"
Work = Callable[[FaultRule | None], Awaitable[web.StreamResponse]]


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response with Salesforce's exact Content-Type; ``None`` means no body (204)."""
    if body is None:
        return web.Response(status=status, headers=headers)
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        headers={**(headers or {}), "Content-Type": JSON_TYPE},
    )


def soap_response(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/xml", charset="utf-8")


async def with_faults(
    org: Org,
    request: web.Request,
    work: Work,
    *,
    style: str,
    soql: str | None = None,
    sobject: str | None = None,
    body: bytes | None = None,
) -> web.StreamResponse:
    """Run ``work`` under the fault plan. ``style`` is "rest", "oauth" or "soap". ``body`` lets
    rules match an sObject Collections request by the type of its records.

    ``work`` receives the rule only for per-record lock faults it must apply itself (sObject
    Collections with ``FaultRule.records``); every other rule is answered here.
    """
    path = request.path
    kind = sobject or sobject_of(path, soql, body)
    decision = org.faults.decide(request.method, path, kind)
    ticket = org.budget.begin()
    async with org.in_flight_changed:
        org.in_flight_changed.notify_all()
    try:
        delay = org.latency_s(decision.latency_ms)
        if delay:
            await asyncio.sleep(delay)
        rule = decision.rule
        if rule is None:
            return await work(None)
        org.counts[f"fault {rule.action}"] += 1
        if rule.action == "unable_to_lock_row" and rule.records and "/composite/sobjects" in path:
            return await work(rule)
        if rule.action != "fail_after_commit":
            return await _inject(org, request, rule, style)
        response = await work(None)
        if rule.latency_ms:  # the work is done; its answer is held, then lost
            await org.faults.hold(rule.latency_ms / 1000, org.stopping)
        _drop(request, reset=False)  # the work is done; the answer is lost
        return response  # aiohttp's write to the closed transport fails quietly
    finally:
        org.budget.end(ticket)
        async with org.in_flight_changed:
            org.in_flight_changed.notify_all()


async def _inject(
    org: Org, request: web.Request, rule: FaultRule, style: str
) -> web.StreamResponse:
    if rule.action == "http_error" and rule.html:
        return web.Response(
            status=rule.status,
            text=SERVICE_UNAVAILABLE_HTML,
            content_type="text/html",
            charset="utf-8",
        )
    if rule.action in {"http_error", "unable_to_lock_row", "request_limit_exceeded"}:
        status, code, message = _error_of(rule, request.path)
        if style == "soap":
            return soap_response(500, soap.SoapFault(code, message).xml())
        if style == "oauth":
            return json_response(status, {"error": code, "error_description": message})
        return json_response(
            status,
            [{"message": message, "errorCode": code}],
            {"Sforce-Limit-Info": org.budget.header()},
        )
    if rule.action == "hang":
        await org.stopping.wait()
    _drop(request, reset=rule.action == "connection_reset")
    return web.Response(status=204)  # never reaches the client: the connection is gone


def _error_of(rule: FaultRule, path: str) -> tuple[int, str, str]:
    if rule.action == "unable_to_lock_row":
        return (
            400,
            "UNABLE_TO_LOCK_ROW",
            (
                "unable to obtain exclusive access to this record or 1 records: "
                + path.rstrip("/").rsplit("/", 1)[-1]
            ),
        )
    if rule.action == "request_limit_exceeded":
        custom = rule.message != FaultRule.message  # the dataclass default is the 503's text
        return 403, "REQUEST_LIMIT_EXCEEDED", rule.message if custom else DAILY_LIMIT_MESSAGE
    return rule.status, rule.error_code, rule.message


def _drop(request: web.Request, *, reset: bool) -> None:
    """Close the client's connection; with ``reset``, abortively (TCP RST)."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if reset and sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if reset:
        transport.abort()
    else:
        transport.close()
