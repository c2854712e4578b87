""":func:`mount` puts the console on the run-history API's aiohttp app: its routes, its guard,
and the background work it needs (the metrics sampler, the Salesforce client of the indicator).

==============================================  =================================================
``GET  /``, ``/console/``                       to the connection page
``GET  /console/login``, ``POST``               the login form; ``POST /console/logout``
``GET  /console/connection``                    the connection indicator (``?refresh`` checks now)
``GET  /console/flows``                         flow files, validation, last runs
``GET  /console/runs``                          search runs: ``ticket``, ``event``, ``flow``,
                                                ``status``, ``cursor``
``GET  /console/runs/{run_id}``                 one run, its steps and masked outputs
``GET  /console/dead-letters``                  search letters: ``ticket``, ``event``, ``flow``,
                                                ``reason``, ``cursor``
``GET  /console/dead-letters/{P:O}``            one letter
``GET  /console/dead-letters/{P:O}/redrive``    the confirmation; ``POST`` redrives
``GET  /console/live``                          events/s, lag, in flight, pauses per worker
``GET  /console/static/console.css``            the style sheet (open, like the login page)
==============================================  =================================================
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from agents.console.auth import (
    COOKIE,
    LOGIN,
    LOGOUT,
    PREFIX,
    SESSION,
    ConsoleGuard,
    Sessions,
    safe_next,
    set_cookie,
)
from agents.console.connection import Indicator
from agents.console.letters import LetterPages
from agents.console.live import Sampler
from agents.console.pages import Pages
from agents.console.render import STYLE_SHEET, Templates
from agents.history.indexer import History, Indexer
from agents.observe.http import BROWSER_GUARD, PRINCIPAL
from agents.ops.dlq import RedriveTopics
from agents.settings import PLAINTEXT, ConsoleSettings, KafkaSecurity
from salesforce.settings import ConnectionSettings
from topics.catalogue import Catalogue, TopicRole

SCRAPE_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    settings: ConsoleSettings
    connection: ConnectionSettings | None = None
    connection_problem: str = "no Salesforce connection is configured (see docs/salesforce.md)"


def mount(
    app: web.Application,
    config: ConsoleConfig,
    *,
    history: History,
    indexer: Indexer,
    bootstrap_servers: str,
    catalogue: Catalogue,
    token: SecretStr | None,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Add the console to ``app`` (before it starts). ``security``: how its dead-letter reads
    and redrives reach Kafka (the history service's own settings)."""
    templates = Templates()
    sessions = Sessions(token)
    indicator = Indicator(config.connection, config.connection_problem)
    sampler = Sampler(config.settings.worker_urls, token, every_s=config.settings.scrape_every_s)
    pages = Pages(templates, history, indexer, indicator, sampler, config.settings.flows_dir)
    dead_letters = catalogue.one(TopicRole.DEAD_LETTERS)
    letters = LetterPages(
        templates,
        history,
        bootstrap_servers,
        RedriveTopics(
            dead_letters.name,
            catalogue.one(TopicRole.REDRIVE_MARKERS).name,
            dead_letters.replication_factor,
        ),
        security=security,
    )

    def refused(request: web.Request, status: int, message: str) -> web.Response:
        return templates.page(
            request, "message.html", status=status, title="Refused", message=message
        )

    async def home(request: web.Request) -> web.Response:
        return _see_other(f"{PREFIX}/connection")

    async def login_form(request: web.Request) -> web.Response:
        return templates.page(
            request, "login.html", next=safe_next(request.query.get("next")), error=None
        )

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        given, target = form.get("token"), form.get("next")
        session = sessions.login(given if isinstance(given, str) else "")
        if isinstance(session, str):
            return templates.page(
                request,
                "login.html",
                status=401,
                next=safe_next(target if isinstance(target, str) else None),
                error=session,
            )
        request[PRINCIPAL] = session.principal  # the audit line says who logged in
        response = _see_other(safe_next(target if isinstance(target, str) else None))
        set_cookie(response, request, session)
        return response

    async def logout(request: web.Request) -> web.Response:
        sessions.end(request[SESSION])
        response = _see_other(LOGIN)
        response.del_cookie(COOKIE, path="/")
        return response

    async def style(request: web.Request) -> web.Response:
        return web.Response(body=STYLE_SHEET, content_type="text/css")

    async def running(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S)
        ) as session:
            task = asyncio.create_task(sampler.run(session), name="console-metrics")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await indicator.close()

    app[BROWSER_GUARD] = ConsoleGuard(sessions, refused)
    router = app.router
    router.add_get("/", home)
    router.add_get(PREFIX, home)
    router.add_get(f"{PREFIX}/", home)
    router.add_get(LOGIN, login_form, name="console-login")
    router.add_post(LOGIN, login)
    router.add_post(LOGOUT, logout)
    router.add_get(f"{PREFIX}/static/console.css", style)
    router.add_get(f"{PREFIX}/connection", pages.connection)
    router.add_get(f"{PREFIX}/flows", pages.flows)
    router.add_get(f"{PREFIX}/runs", pages.runs)
    router.add_get(f"{PREFIX}/runs/{{run_id}}", pages.run)
    router.add_get(f"{PREFIX}/dead-letters", letters.listing)
    router.add_get(f"{PREFIX}/dead-letters/{{position}}", letters.letter)
    router.add_get(f"{PREFIX}/dead-letters/{{position}}/redrive", letters.confirm)
    router.add_post(f"{PREFIX}/dead-letters/{{position}}/redrive", letters.redrive)
    router.add_get(f"{PREFIX}/live", pages.live)
    app.cleanup_ctx.append(running)


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})
