"""The console's dead-letter pages: the list, one letter, and redrive.

The list comes from the run history (fast, searchable); one letter is read from the dead-letter
topic itself (its headers and its payload, masked as ``actionflows dlq show`` masks it), with
its redrive marker. Redrive is ``GET …/redrive`` (a confirmation page saying where the letter
will go and how the worker will take it) then ``POST …/redrive`` (CSRF-checked by the guard,
audited by the app), which calls :func:`agents.ops.dlq.redrive`, the code of ``actionflows dlq
redrive``: the same markers, the same "already redriven" rule, the same ``--force``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from agents.console.auth import PREFIX
from agents.console.pages import search_fields
from agents.console.render import Templates
from agents.history.indexer import History
from agents.history.store import LetterQuery, QueryError
from agents.ops.common import EXPECTED_ERRORS, describe
from agents.ops.dlq import RedriveTopics, fetch, read_markers, redrive
from agents.ops.letters import DeadLetter, NotRedrivable, how, redrive_record
from agents.ops.output import header_text, payload_text
from agents.ops.slices import SliceError, parse_position
from agents.settings import PLAINTEXT, KafkaSecurity
from topics import headers as h
from topics.redaction import scrub

PAGE_SIZE = 50
KAFKA_TIMEOUT_S = 15.0  # a page waits this long for the broker before saying it could not


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a redrive would send a letter, and as what."""

    topic: str
    partition: int | None  # None: the key chooses
    how: str


class LetterPages:
    def __init__(
        self,
        templates: Templates,
        history: History,
        bootstrap: str,
        topics: RedriveTopics,
        *,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.templates = templates
        self.history = history
        self.bootstrap = bootstrap
        self.security = security
        self.topics = topics

    async def listing(self, request: web.Request) -> web.Response:
        filters = search_fields(request.query, ("ticket", "event", "flow", "reason"))
        query = LetterQuery(
            ticket=filters.get("ticket"),
            event=filters.get("event"),
            flow=filters.get("flow"),
            reason=filters.get("reason"),
            limit=PAGE_SIZE,
            cursor=request.query.get("cursor"),
        )
        try:
            page = await self.history.call(self.history.store.dead_letters, query)
        except QueryError as error:
            return self.templates.page(
                request, "letters.html", status=400, filters=filters, page=None,
                markers={}, markers_error=None, error=str(error),
            )  # fmt: skip
        markers, markers_error = await self._markers()
        for item in page.items:
            item["exception_message"] = scrub(item["exception_message"] or "")
        return self.templates.page(
            request, "letters.html", filters=filters, page=page, markers=markers,
            markers_error=markers_error, error=None,
        )  # fmt: skip

    async def letter(self, request: web.Request) -> web.Response:
        return await self._letter_page(request, "letter.html")

    async def confirm(self, request: web.Request) -> web.Response:
        return await self._letter_page(request, "redrive.html")

    async def _letter_page(self, request: web.Request, template: str) -> web.Response:
        found = await self._letter(request)
        if isinstance(found, web.Response):
            return found
        markers, markers_error = await self._markers()
        return self.templates.page(
            request, template, **self._shown(found), marker=markers.get(found.position),
            markers_error=markers_error, refusal=None,
        )  # fmt: skip

    async def redrive(self, request: web.Request) -> web.Response:
        found = await self._letter(request)
        if isinstance(found, web.Response):
            return found
        force = (await request.post()).get("force") == "yes"
        try:
            async with asyncio.timeout(KAFKA_TIMEOUT_S):
                report = await redrive(
                    self.bootstrap, self.topics, [found], force=force, security=self.security
                )
        except EXPECTED_ERRORS as error:
            return self._refused(request, found, 503, f"the redrive failed: {describe(error)}")
        if report.refused:
            return self._refused(request, found, 409, report.refused[0][1])
        where = f"{PREFIX}/dead-letters/{found.position}"  # url_for would escape the colon
        return web.Response(status=303, headers={"Location": where})

    def _refused(
        self, request: web.Request, letter: DeadLetter, status: int, why: str
    ) -> web.Response:
        return self.templates.page(
            request, "redrive.html", status=status, **self._shown(letter), marker=None,
            markers_error=None, refusal=why,
        )  # fmt: skip

    async def _letter(self, request: web.Request) -> DeadLetter | web.Response:
        text = request.match_info["position"]
        try:
            position = parse_position(text)
            async with asyncio.timeout(KAFKA_TIMEOUT_S):
                found, _ = await fetch(
                    self.bootstrap, self.topics.dead_letters, [position], security=self.security
                )
        except SliceError as error:
            return self._message(request, 400, "Not a letter position", str(error))
        except EXPECTED_ERRORS as error:
            return self._message(request, 503, "Kafka did not answer", describe(error))
        if not found:
            return self._message(
                request, 404, "Dead letter not found",
                f"No dead letter at {text} on {self.topics.dead_letters}.",
            )  # fmt: skip
        return found[0]

    def _message(self, request: web.Request, status: int, title: str, text: str) -> web.Response:
        return self.templates.page(
            request, "message.html", status=status, title=title, message=text
        )

    async def _markers(self) -> tuple[dict[str, dict[str, Any]], str | None]:
        """The redrive markers by letter position, or why they could not be read."""
        try:
            async with asyncio.timeout(KAFKA_TIMEOUT_S):
                return (
                    await read_markers(self.bootstrap, self.topics.markers, security=self.security),
                    None,
                )
        except EXPECTED_ERRORS as error:
            return {}, describe(error)

    def _shown(self, letter: DeadLetter) -> dict[str, Any]:
        """What the letter and confirmation pages show of a letter: masked, scrubbed."""
        destination = None
        not_redrivable = None
        try:
            sent = redrive_record(
                letter, dead_letter_topic=self.topics.dead_letters, redrive_id="-", now_ms=0
            )
            destination = Destination(sent.topic, sent.partition, how(sent))
        except NotRedrivable as error:
            not_redrivable = str(error)
        context = [
            (name.removeprefix(h.ERRORS), header_text(value))
            for name, value in letter.headers
            if name.startswith(h.ERRORS)
        ]
        others = [
            (name, header_text(value))
            for name, value in letter.headers
            if not name.startswith(h.ERRORS)
        ]
        return {
            "letter": letter,
            "topic": self.topics.dead_letters,
            "context": context,
            "others": others,
            "payload": payload_text(letter.value, raw=False),
            "destination": destination,
            "not_redrivable": not_redrivable,
            "problem": scrub(letter.problem) if letter.problem else None,
        }
