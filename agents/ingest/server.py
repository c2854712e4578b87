"""The webhook ingest: an aiohttp server that turns signed HTTP deliveries into Kafka records.

Routes (docs/zendesk.md has the setup, docs/events.md the formats)::

    POST /webhooks/zendesk   Zendesk webhooks, signed: event subscriptions (zen:event-type:ticket.*)
                             and trigger/automation bodies (docs/zendesk-trigger-body.json)
    POST /events             the generic envelope, one event or a JSON array; Bearer token;
                             ?input=tickets|interactions to choose the input topic
    GET  /healthz            the process is up; counters
    GET  /readyz             a broker answers now (503 otherwise)

A request is checked in this order — size (413), signature or token (401), decoding with the
worker's decoder (400) — then its Zendesk people are looked up if it names them by id only
(:mod:`agents.ingest.enrich`), and it is answered 200 only after the broker acknowledged every
record at acks=all (503 with Retry-After otherwise: Zendesk retries, and a retried delivery
carries the same event id, which the worker recognises). Answers are JSON: ``{"accepted": n,
"events": [{"id", "topic", "partition", "offset"}]}`` or ``{"error": code, "reason": …}``.

Nothing here logs a body, a signature or a secret: refusals are logged by status and code
(at most once per code every 10 s), and counted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web

from agents.ingest import payloads
from agents.ingest.enrich import Enricher
from agents.ingest.errors import BadRequest, IngestError, TooLarge, Unauthorized
from agents.ingest.publisher import Publisher
from agents.ingest.settings import IngestSettings
from agents.ingest.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_bearer,
    verify_zendesk,
)
from agents.ingest.stats import Stats
from topics.errors import InvalidField
from zendesk.client import ZendeskClient

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class IngestServer:
    """One ingest process: ``async with IngestServer(settings) as ingest: ingest.url``."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.stats = Stats()
        self.publisher = Publisher(
            settings.bootstrap_servers,
            settings.topics,
            timeout_s=settings.publish_timeout_s,
            security=settings.security,
        )
        self.enricher = (
            Enricher(ZendeskClient(settings.enrichment.zendesk), settings.enrichment, self.stats)
            if settings.enrichment is not None
            else None
        )
        self.url = ""
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=self.settings.max_body_bytes, middlewares=[self._answer_errors]
        )
        app.router.add_post("/webhooks/zendesk", self._zendesk)
        app.router.add_post("/events", self._events)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> IngestServer:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.settings.host, self.settings.port).start()
        except OSError:  # the port is taken: leave nothing running
            await self._runner.cleanup()
            self._runner = None
            raise
        await self.publisher.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.enricher is not None:
            await self.enricher.close()
        await self.publisher.stop()

    async def __aenter__(self) -> IngestServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- routes ------------------------------------------------------------------------------

    async def _zendesk(self, request: web.Request) -> web.Response:
        raw = await self._body(request)
        verify_zendesk(
            signature=request.headers.get(SIGNATURE_HEADER),
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            body=raw,
            secrets=self.settings.signing_secrets,
            now=dt.datetime.now(dt.UTC),
            tolerance_s=self.settings.tolerance_s,
        )
        invocation = request.headers.get(payloads.INVOCATION_HEADER)
        return await self._accept([payloads.zendesk_webhook(raw, invocation_id=invocation)])

    async def _events(self, request: web.Request) -> web.Response:
        verify_bearer(request.headers.get("Authorization"), self.settings.bearer_tokens)
        chosen = request.query.get("input")
        input_name = next((name for name in payloads.INPUTS if name == chosen), None)
        if chosen is not None and input_name is None:
            raise BadRequest(InvalidField("?input", f"is tickets or interactions, not {chosen!r}"))
        raw = await self._body(request)
        return await self._accept(payloads.events(raw, input_name=input_name))

    async def _healthz(self, request: web.Request) -> web.Response:
        kafka = "connected" if self.publisher.connected else "connecting"
        return _json({"status": "ok", "kafka": kafka, "counts": self.stats.snapshot()})

    async def _readyz(self, request: web.Request) -> web.Response:
        problem = await self.publisher.ready()
        if problem is not None:
            return _json({"status": "not_ready", "reason": problem}, status=503)
        return _json({"status": "ready"})

    # -- the steps every delivery takes ------------------------------------------------------

    async def _body(self, request: web.Request) -> bytes:
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise TooLarge(f"the body is {request.content_length} bytes, the limit is {limit}")
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise TooLarge(f"the body is over the limit of {limit} bytes") from None

    async def _accept(self, records: Sequence[payloads.Record]) -> web.Response:
        if self.enricher is not None:
            records = await asyncio.gather(*(self.enricher.enrich(r) for r in records))
        receipts = await self.publisher.publish(records)
        self.stats.count("accepted", len(receipts))
        return _json(
            {
                "accepted": len(receipts),
                "events": [
                    {
                        "id": r.event_id,
                        "topic": r.topic,
                        "partition": r.partition,
                        "offset": r.offset,
                    }
                    for r in receipts
                ],
            }
        )

    @web.middleware
    async def _answer_errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except IngestError as error:
            key = f"refused.{error.status}.{error.body()['error']}"
            self.stats.count(key)
            if self.stats.due(key):  # seldom; a 4xx is the sender's problem, a 503 ours
                level = logging.WARNING if error.retriable else logging.INFO
                log.log(level, "refused %s %s: %s", request.method, request.path, key)
            headers = {}
            if isinstance(error, Unauthorized) and request.path == "/events":
                headers["WWW-Authenticate"] = 'Bearer realm="actionflows"'
            if error.retriable:
                headers["Retry-After"] = str(self.settings.retry_after_s)
            return _json(error.body(), status=error.status, headers=headers)


def _json(
    doc: dict[str, Any], *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer, serialised with orjson (aiohttp's json_response uses the slower stdlib)."""
    return web.Response(
        body=orjson.dumps(doc), status=status, headers=headers, content_type="application/json"
    )
