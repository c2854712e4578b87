"""A small scripted Salesforce on localhost for client tests: real HTTP, documented answers.

It is not the emulator (``sfemulator``): it knows no objects. Tests script what each
route answers, in order, and read back what the client sent. The token endpoint and the 401 for
an unknown bearer token behave as a real org's do.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

VERSION = "62.0"
DATA = f"/services/data/v{VERSION}"
ORG_ID = "00D000000000001EAA"
USER_ID = "005000000000001AAA"

SOAP_SESSION_FAULT = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    b' xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
    b"<faultcode>sf:INVALID_SESSION_ID</faultcode>"
    b"<faultstring>INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session"
    b"</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(status: int, body: Any, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(body) if body is not None else b"",
        content_type="application/json" if body is not None else None,
        headers=headers,
    )


def sf_error(status: int, code: str, message: str, fields: list[str] | None = None) -> Handler:
    """A handler answering Salesforce's error list once."""

    async def handle(request: web.Request) -> web.Response:
        entry: dict[str, Any] = {"message": message, "errorCode": code}
        if fields is not None:
            entry["fields"] = fields
        return json_response(status, [entry])

    return handle


def reply(status: int, body: Any = None, *, content_type: str | None = None) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        if isinstance(body, bytes | str):
            return web.Response(status=status, body=body, content_type=content_type or "text/html")
        return json_response(status, body)

    return handle


def hang() -> Handler:
    """Never answer (until the test server shuts down)."""

    async def handle(request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return handle


def reset() -> Handler:
    """Close the connection without a response, after reading the request."""

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=500)

    return handle


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    def form(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.body.decode()))


@dataclass
class FakeOrg:
    """Scripted routes: ``on(method, path, *handlers)`` answers with each handler in turn, then
    repeats the last one. ``requests`` records every request but the token endpoint's."""

    routes: dict[tuple[str, str], list[Handler]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    token_requests: list[Seen] = field(default_factory=list)
    token_script: list[Handler] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    scope: str = "api"
    api_used: int = 0
    api_limit: int = 15000
    token_delay_s: float = 0.0
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def on(self, method: str, path: str, *handlers: Handler) -> None:
        self.routes[(method, path)] = list(handlers)

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def calls(self, method: str, path: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path == path]

    async def _token(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.token_requests.append(
            Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        if self.token_delay_s:
            await asyncio.sleep(self.token_delay_s)  # widens the race the single-flight test needs
        if self.token_script:
            handler = (
                self.token_script.pop(0) if len(self.token_script) > 1 else self.token_script[0]
            )
            return await handler(request)
        return await self.issue_token(request)

    async def issue_token(self, request: web.Request) -> web.Response:
        """The token endpoint's success answer (usable in ``token_script``)."""
        token = f"00D!token{next(self._counter)}"
        self.valid_tokens.add(token)
        return json_response(
            200,
            {
                "access_token": token,
                "instance_url": self.url,
                "id": f"{self.url}/id/{ORG_ID}/{USER_ID}",
                "token_type": "Bearer",
                "issued_at": "1764070000000",
                "signature": "c2ln",
                "scope": self.scope,
            },
        )

    async def _any(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        public = request.path == "/services/data/"
        if not public:
            auth = request.headers.get("Authorization", "")
            session = auth.removeprefix("Bearer ")
            if request.path.startswith("/services/Soap/"):
                text = body.decode()
                start = text.find("<urn:sessionId>") + len("<urn:sessionId>")
                session = text[start : text.find("</urn:sessionId>")]
            if session not in self.valid_tokens and request.path.startswith("/services/Soap/"):
                return web.Response(status=500, body=SOAP_SESSION_FAULT, content_type="text/xml")
            if session not in self.valid_tokens:
                return json_response(
                    401,
                    [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                    headers={"WWW-Authenticate": "Token"},
                )
        handlers = self.routes.get((request.method, request.path))
        if not handlers:
            return json_response(
                404,
                [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
            )
        handler = handlers.pop(0) if len(handlers) > 1 else handlers[0]
        response = await handler(request)
        if not public and isinstance(response, web.Response):
            self.api_used += 1
            response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.api_limit}"
        return response

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/services/oauth2/token", self._token)
        app.router.add_route("*", "/{tail:.*}", self._any)
        return app
