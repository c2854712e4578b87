"""The console in a real browser (Debian's Chromium driven by Playwright) against the real worker,
broker and Salesforce emulator: the indicator, a run, a dead letter redriven from the page, the
live figures; login, CSRF, escaping and the keyboard. Every page visited is screenshotted under
the test's output folder (``tmp_path/screenshots``).

Skipped, saying why, only where no Chromium can be had: ``make test`` installs Debian's package
first (the Makefile's ``chromium`` target).
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright
from pydantic import SecretStr

from agents.console import ConsoleConfig
from agents.history.service import HistoryService
from agents.service import Service
from agents.settings import ConsoleSettings, HistorySettings, HttpSettings, ObserveSettings
from sfemulator import Emulator, EmulatorConfig, emulator_connection
from sfemulator.rules import ValidationRule
from tests.agents.test_engine import CREATE_LEAD_FLOW
from tests.integration.test_engine_e2e import service_config
from tests.kafkatools import produce, wait_for
from topics.catalogue import Catalogue

CHROMIUM = Path("/usr/bin/chromium")
# As /work/.library/env/machines/polyglot.md found to work: no sandbox as root, and none of
# Chromium's own network traffic, which this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TOKEN = "browser-test-token"
WAIT_S = 90.0  # a bound on the worker and indexer under a loaded machine, not a target

if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium package with apt-get "
        "(as root); without it the browser tests cannot run",
        allow_module_level=True,
    )

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Stack:
    url: str
    kafka: str
    tickets_topic: str
    emulator: Emulator
    rule: dict[str, bool]  # {"broken": True} makes the org refuse new leads
    browser: Browser
    audit: Path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """One worker, one console and one browser for the module's tests."""
    root = tmp_path_factory.mktemp("console-stack")
    worker_flows, console_flows = root / "worker-flows", root / "console-flows"
    worker_flows.mkdir()
    (worker_flows / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    shutil.copytree(worker_flows, console_flows)  # the console's own copy, one file broken
    broken = Path(__file__).parent.parent / "flows_corpus" / "invalid" / "unknown_action.yaml"
    shutil.copy(broken, console_flows / "broken.yaml")
    rule = {"broken": False}
    refuse = ValidationRule("Lead", lambda _: rule["broken"], "Company is required", "Company")
    token = SecretStr(TOKEN)
    async with contextlib.AsyncExitStack() as stack:
        emulator = await stack.enter_async_context(
            Emulator(EmulatorConfig(seed=3, validation_rules=(refuse,)))
        )
        config = service_config(kafka, uuid.uuid4().hex[:12], worker_flows, emulator)
        config = dataclasses.replace(
            config, observe=ObserveSettings(http=HttpSettings(port=0, token=token))
        )
        worker = await stack.enter_async_context(Service(config))
        assert worker.observability.server is not None
        history = HistorySettings(
            root / "history.sqlite3",
            HttpSettings(port=0, token=token, audit_log=root / "audit.log"),
            "",
        )
        console = ConsoleConfig(
            ConsoleSettings(
                flows_dir=console_flows,
                worker_urls=(worker.observability.server.url,),
                scrape_every_s=1.0,
            ),
            emulator_connection(emulator.url, emulator.credentials, emulator.api_version),
        )
        service = await stack.enter_async_context(
            HistoryService(
                history,
                bootstrap_servers=kafka,
                catalogue=Catalogue.build(config.topics),
                console=console,
            )
        )
        playwright = await stack.enter_async_context(async_playwright())
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        stack.push_async_callback(browser.close)
        yield Stack(
            service.url,
            kafka,
            f"{config.topics.prefix}.tickets",
            emulator,
            rule,
            browser,
            root / "audit.log",
        )


@contextlib.asynccontextmanager
async def signed_in(stack: Stack, shots: Path) -> AsyncIterator[Page]:
    """A fresh browser context (no cookies) whose page logged in with the keyboard alone."""
    context = await stack.browser.new_context(
        base_url=stack.url, viewport={"width": 1280, "height": 900}
    )
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    try:
        await page.goto("/console/runs")
        assert "/console/login" in page.url  # no session: the login form
        await shoot(page, shots, "login")
        await page.keyboard.type(TOKEN)  # the token field has the focus (autofocus)
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{stack.url}/console/runs")
        yield page
    finally:
        await context.close()
    assert dialogs == [], f"a script ran in the page: {dialogs}"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a test's screenshots go: its own output folder."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


async def shoot(page: Page, shots: Path, name: str) -> None:
    await page.screenshot(path=shots / f"{name}.png", full_page=True)


async def tab_to(page: Page, name: str, *, presses: int = 60) -> dict[str, Any]:
    """Press Tab until the focused element's text is ``name``; return what it is and how its
    focus is drawn. Fails, listing what it passed, when ``name`` is not reachable."""
    passed = []
    for _ in range(presses):
        await page.keyboard.press("Tab")
        focused: dict[str, Any] = await page.evaluate(
            """() => { const e = document.activeElement; const s = getComputedStyle(e);
                return {tag: e.tagName, text: (e.innerText || e.value || '').trim(),
                        outline: s.outlineStyle, width: parseFloat(s.outlineWidth)}; }"""
        )
        if focused["text"] == name:
            return focused
        passed.append(focused["text"])
    raise AssertionError(f"{name!r} is not reachable with Tab; focus went through {passed}")


async def no_script_in(page: Page) -> None:
    """Nothing from an event became markup: no script element, no injected image."""
    found = await page.evaluate(
        "() => [document.querySelectorAll('script').length, document.querySelectorAll('img').length,"
        " window.__pwned === undefined]"
    )
    assert found == [0, 0, True], f"script elements, img elements, untouched: {found}"


ACCESSIBILITY = """() => ({
    landmarks: ['header', 'nav', 'main', 'footer'].filter(t => !document.querySelector(t)),
    unlabelled: [...document.querySelectorAll('input:not([type=hidden]), select')]
        .filter(e => e.labels.length === 0).map(e => e.name),
    headless: [...document.querySelectorAll('table')]
        .filter(t => !t.querySelector('thead th[scope=col]') || !t.caption).length,
    h1: document.querySelectorAll('h1').length,
    skip: document.querySelector('a.skip')?.getAttribute('href'),
    lang: document.documentElement.lang,
})"""


async def test_every_page_has_landmarks_labels_and_table_headers(stack: Stack, shots: Path) -> None:
    """What a screen reader and a keyboard need: landmarks, one h1, a skip link to main, a label
    on every field, a caption and column headers on every table, the page's language."""
    async with signed_in(stack, shots) as page:
        for path in ("/console/connection", "/console/flows", "/console/runs",
                     "/console/dead-letters", "/console/live"):  # fmt: skip
            await page.goto(path)
            found = await page.evaluate(ACCESSIBILITY)
            assert found == {
                "landmarks": [], "unlabelled": [], "headless": 0, "h1": 1, "skip": "#main",
                "lang": "en",
            }, path  # fmt: skip


async def test_the_markup_check_sees_markup(stack: Stack) -> None:
    """The negative control of the escaping checks: a page where an event's text did become
    markup fails :func:`no_script_in`."""
    context = await stack.browser.new_context()
    try:
        page = await context.new_page()
        await page.set_content("<td><b>Ada</b> <img src=x alt=''></td>")
        with pytest.raises(AssertionError, match="script elements, img elements"):
            await no_script_in(page)
    finally:
        await context.close()


def event(event_id: str, ticket: str, email: str) -> bytes:
    return orjson.dumps({
        "id": event_id,
        "type": "ticket.created",
        "ticket": {"id": ticket, "subject": "<img src=x onerror=window.__pwned=1>"},
        "requester": {"name": "<b>Ada</b> <script>window.__pwned=1</script>", "email": email},
    })  # fmt: skip


def leads(stack: Stack, email: str) -> list[dict[str, Any]]:
    return [lead for lead in stack.emulator.records("Lead") if lead.get("Email") == email]


async def reload_until(page: Page, path: str, selector: str, what: str) -> None:
    """Load ``path`` until ``selector`` is on it (the worker and the indexer are catching up)."""

    async def shown() -> bool:
        await page.goto(path)
        return await page.locator(selector).count() > 0

    await wait_for(shown, timeout_s=WAIT_S, what=what)


async def test_the_indicator_shows_the_emulators_org(stack: Stack, shots: Path) -> None:
    async with signed_in(stack, shots) as page:
        await page.goto("/console/connection")
        await shoot(page, shots, "connection")
        assert await page.locator(".state-good").inner_text() == "● Connected"
        org_id = stack.emulator.credentials.org_id
        assert await page.locator("#org-id").inner_text() == org_id
        lead = page.locator("tbody tr").filter(has=page.get_by_role("rowheader", name="lead"))
        assert await lead.locator("td").all_inner_texts() == ["yes"] * 5

        await page.goto("/console/flows")
        await shoot(page, shots, "flows")
        assert await page.get_by_text("Invalid: 1 error(s)").count() == 1


async def test_a_produced_event_appears_on_the_runs_page_with_its_steps(
    stack: Stack, shots: Path
) -> None:
    """An event full of markup runs through the worker; its run shows on the runs page with
    both steps, and its page shows the steps, the masked inputs and the trace id, as text."""
    key = uuid.uuid4().hex[:8]
    ticket = f"<script>window.__pwned=1</script>T-{key}"
    await produce(
        stack.kafka,
        stack.tickets_topic,
        [(b"T-" + key.encode(), event(f"ev-{key}", ticket, f"{key}@example.com"))],
    )
    async with signed_in(stack, shots) as page:
        await reload_until(
            page,
            f"/console/runs?event=ev-{key}",
            "td .status-succeeded",
            "the run on the runs page",
        )
        await shoot(page, shots, "runs")
        row = await page.locator("table.runs tbody tr").inner_text()
        assert "find_lead" in row
        assert "create_lead" in row
        assert ticket in row  # the markup as text
        await no_script_in(page)

        await page.locator("table.runs tbody tr a").first.click()
        await page.wait_for_url("**/console/runs/run1-*")
        await shoot(page, shots, "run")
        steps = await page.locator("table tbody th").all_inner_texts()
        assert steps == ["find_lead", "create_lead"]
        assert len(await page.locator("#trace-id").inner_text()) == 32
        text = await page.locator("main").inner_text()
        assert f"{key}@example.com" not in text  # the email is masked on the topic already
        assert "<b>Ada</b> <script>" in text
        await no_script_in(page)


async def test_a_dead_letter_is_redriven_from_the_browser_and_the_run_then_succeeds(
    stack: Stack, shots: Path
) -> None:
    """The org refuses the lead, so the event is dead-lettered. A redrive posted without the
    form's CSRF token is refused and changes nothing; once the rule is fixed, the letter is
    redriven with the keyboard alone, and the run then succeeds: the lead exists."""
    key = uuid.uuid4().hex[:8]
    email = f"{key}@example.com"
    stack.rule["broken"] = True
    await produce(
        stack.kafka,
        stack.tickets_topic,
        [(f"T-{key}".encode(), event(f"ev-{key}", f"T-{key}", email))],
    )
    async with signed_in(stack, shots) as page:
        await reload_until(
            page, f"/console/dead-letters?ticket=T-{key}", "tbody tr a", "the dead letter"
        )
        await shoot(page, shots, "dead-letters")
        assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in await page.locator("tbody tr").inner_text()
        position = await page.locator("tbody tr a").inner_text()
        await page.locator("tbody tr a").click()
        await page.wait_for_url(f"**/console/dead-letters/{position}")
        await shoot(page, shots, "dead-letter")
        assert await page.get_by_text("Not redriven yet.").count() == 1

        # The negative control: the same POST with the session's cookie but no CSRF token.
        refused = await page.request.post(
            f"/console/dead-letters/{position}/redrive", form={"force": "yes"}
        )
        assert refused.status == 403
        await page.reload()
        assert await page.get_by_text("Not redriven yet.").count() == 1
        assert leads(stack, email) == []

        await page.keyboard.press("Tab")  # from the top: the skip link comes first
        skip = await page.evaluate("() => document.activeElement.innerText")
        assert skip == "Skip to main content"
        link = await tab_to(page, "Redrive this letter…")
        assert link["outline"] != "none", f"focus not visible: {link}"
        assert link["width"] >= 2, f"focus not visible: {link}"
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"**/console/dead-letters/{position}/redrive")
        await shoot(page, shots, "redrive-confirm")

        stack.rule["broken"] = False  # the admin fixes the org
        await tab_to(page, f"Redrive {position}")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"**/console/dead-letters/{position}")
        await shoot(page, shots, "redriven")
        assert "Redriven by redrive-" in await page.locator("[role=status]").inner_text()

        await reload_until(
            page, f"/console/runs?event=ev-{key}", "td .status-succeeded", "the redriven run"
        )
        await shoot(page, shots, "runs-after-redrive")

    async def lead() -> bool:
        return len(leads(stack, email)) == 1

    await wait_for(lead, timeout_s=WAIT_S, what="the lead of the redriven run")
    audit = [orjson.loads(line) for line in stack.audit.read_text().splitlines()]
    redrives = [(a["status"], a["principal"].split()[-1].startswith("session:")) for a in audit
                if a["path"] == f"/console/dead-letters/{position}/redrive"]  # fmt: skip
    assert redrives == [(403, True), (303, True)]


async def test_without_a_session_only_the_login_page_shows(stack: Stack, shots: Path) -> None:
    """A fresh browser is sent to the login form from any page; a wrong token is refused there;
    a session's cookie does not open the JSON API."""
    context = await stack.browser.new_context(base_url=stack.url)
    try:
        page = await context.new_page()
        for path in ("/console/dead-letters", "/console/live", "/"):
            await page.goto(path)
            assert "/console/login" in page.url
        await page.get_by_label("API token").fill("not the token")
        await page.get_by_role("button", name="Log in").click()
        assert await page.get_by_role("alert").inner_text() == "that is not the API token"
        await shoot(page, shots, "login-refused")
        api = await page.request.get("/api/runs")
        assert api.status == 401
    finally:
        await context.close()


async def test_the_live_page_shows_the_workers_figures(stack: Stack, shots: Path) -> None:
    async with signed_in(stack, shots) as page:

        async def measured() -> bool:
            await page.goto("/console/live")
            return await page.locator("#events-per-s").inner_text() != "measuring…"

        await wait_for(measured, timeout_s=WAIT_S, what="two scrapes of the worker's metrics")
        await shoot(page, shots, "live")
        assert await page.locator("#paused").inner_text() == "no"
        assert float(await page.locator("#in-flight").inner_text()) >= 0
        assert await page.locator("tbody td:last-child").first.inner_text() == ""  # no problem
