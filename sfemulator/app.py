"""The aiohttp face of the org: one catch-all handler that sorts a request into admin, OAuth,
identity, versions, REST data API or SOAP, and applies authentication, the API budget and the
``Sforce-Limit-Info`` header around the transport-free handlers (faults: ``injection.py``).
"""

from __future__ import annotations

import re

import orjson
from aiohttp import web

from . import soap
from .admin import admin
from .api import ApiRequest, ApiResponse
from .conditional import http_date
from .errors import ApiError, not_found
from .faults import FaultRule
from .injection import json_response, soap_response, with_faults
from .limits import CONCURRENT_LIMIT_MESSAGE, DAILY_LIMIT_MESSAGE
from .org import Org, version_label

_DATA = re.compile(r"^/services/data/(v\d+\.\d|latest)(/.*)?$")
_SOAP = re.compile(r"^/services/Soap/u/(\d+\.\d)(?:/.*)?$")
_INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def build_app(org: Org) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/__emulator/"):
            return await admin(org, request)
        if path.rstrip("/") == "/services/data":
            org.counts[f"{request.method} /services/data/"] += 1
            return json_response(
                200,
                [
                    {"label": version_label(v), "url": f"/services/data/v{v}", "version": v}
                    for v in org.versions
                ],
            )
        if path.startswith(("/services/oauth2/", "/id/")):
            return await with_faults(org, request, lambda _: _oauth(org, request), style="oauth")
        match = _DATA.match(path)
        if match:
            return await _data_api(org, request, match.group(1), match.group(2) or "")
        if _SOAP.match(path):
            return await _soap(org, request)
        return json_response(404, not_found().rest_body())

    # Long SOQL in a GET query string is legal up to 16 KB on real orgs; aiohttp stops at 8 KB.
    app = web.Application(
        client_max_size=64 * 1024 * 1024,
        handler_args={"max_line_size": 32768, "max_field_size": 32768},
    )
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in {"bearer", "oauth"} and token.strip():
        return token.strip()
    return request.query.get("oauth_token")


def _route_key(org: Org, method: str, path: str) -> str:
    return f"{method} /{org.router.route_name(method, path).lstrip('/')}"


async def _data_api(
    org: Org, request: web.Request, raw_version: str, path: str
) -> web.StreamResponse:
    version = org.config.api_version if raw_version == "latest" else raw_version[1:]
    if version not in org.versions:
        return json_response(404, not_found().rest_body())
    if org.oauth.authenticate(_bearer(request) or "") is None:
        return json_response(401, _INVALID_SESSION, {"WWW-Authenticate": "Token"})
    limit_header = {"Sforce-Limit-Info": org.budget.header()}
    if org.budget.exhausted():
        return json_response(
            403,
            [{"message": DAILY_LIMIT_MESSAGE, "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
            limit_header,
        )
    if org.budget.concurrency_exceeded():
        return json_response(
            403,
            [{"message": CONCURRENT_LIMIT_MESSAGE, "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
            limit_header,
        )
    org.count_api_calls()
    org.counts[_route_key(org, request.method, path)] += 1
    raw = await request.read()

    async def run(lock_rule: FaultRule | None) -> web.StreamResponse:
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError as err:
            return json_response(
                400,
                ApiError(400, "JSON_PARSER_ERROR", str(err)).rest_body(),
                {"Sforce-Limit-Info": org.budget.header()},
            )
        locked: frozenset[int] = frozenset()
        if lock_rule is not None and lock_rule.records:
            locked = org.faults.sample(_item_count(body, request), lock_rule.records)
        api_request = ApiRequest(
            request.method, path, version, dict(request.query), dict(request.headers), body, locked
        )
        reply: ApiResponse = org.router.dispatch(api_request)
        # The org's own clock dates the answer, as it dates LastModifiedDate: a client can tell
        # whether a second has passed since a record changed (salesforce/consistency.py).
        headers = {"Sforce-Limit-Info": org.budget.header(), "Date": http_date(org.now())}
        return json_response(reply.status, reply.body, {**reply.headers, **headers})

    return await with_faults(org, request, run, style="rest", soql=request.query.get("q"), body=raw)


def _item_count(body: object, request: web.Request) -> int:
    """How many records an sObject Collections request carries (body records or ?ids=)."""
    if isinstance(body, dict) and isinstance(body.get("records"), list):
        return len(body["records"])
    return len([i for i in request.query.get("ids", "").split(",") if i])


async def _soap(org: Org, request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    envelope = soap_response
    try:
        call = soap.parse_call(raw)
    except soap.SoapFault as fault:
        return envelope(500, fault.xml())
    if org.oauth.authenticate(call.session_id or "") is None:
        return envelope(
            500,
            soap.SoapFault(
                "INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session"
            ).xml(),
        )
    if org.budget.exhausted() or org.budget.concurrency_exceeded():
        message = DAILY_LIMIT_MESSAGE if org.budget.exhausted() else CONCURRENT_LIMIT_MESSAGE
        return envelope(500, soap.SoapFault("REQUEST_LIMIT_EXCEEDED", message).xml())
    org.count_api_calls()
    org.counts[f"POST /services/Soap/u {call.operation}"] += 1

    async def run(_: FaultRule | None) -> web.StreamResponse:
        try:
            text = soap.handle(call, org.store, (org.budget.used(), org.budget.daily_limit))
        except soap.SoapFault as fault:
            return envelope(500, fault.xml())
        return envelope(200, text)

    return await with_faults(org, request, run, style="soap", sobject="Lead")


async def _oauth(org: Org, request: web.Request) -> web.StreamResponse:
    path = request.path.rstrip("/")
    org.counts[f"{request.method} {re.sub(r'/id/.*', '/id/{org}/{user}', path)}"] += 1
    form: dict[str, str] = dict(request.query)
    if request.method == "POST":
        form.update({k: str(v) for k, v in (await request.post()).items()})
    auth = request.headers.get("Authorization")
    if path == "/services/oauth2/token" and request.method == "POST":
        status, body = org.oauth.token(form, auth, request.host)
        return json_response(status, body)
    if path == "/services/oauth2/revoke":
        status, revoked = org.oauth.revoke(form)
        return json_response(status, revoked)
    if path == "/services/oauth2/introspect" and request.method == "POST":
        status, body = org.oauth.introspect(form, auth)
        return json_response(status, body)
    if path == "/services/oauth2/userinfo" or path.startswith("/id/"):
        if org.oauth.authenticate(_bearer(request) or "") is None:
            return web.Response(status=403, text="Bad_OAuth_Token")
        if path.startswith("/id/") and path != f"/id/{org.creds.org_id}/{org.creds.user_id}":
            return web.Response(status=404, text="Bad_Id")
        version = request.query.get("version", "{version}")
        return json_response(
            200, org.identity(org.config.api_version if version == "latest" else version)
        )
    return json_response(404, not_found().rest_body())
