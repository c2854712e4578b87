"""The console's pages over a filled history (no browser): hostile values render as text,
masked values stay masked, invalid flow files show their errors, the live page reads a worker's
real metrics, and a letter is read from the real dead-letter topic."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from agents.history.rows import Source
from agents.history.store import Store
from agents.observe.health import Health
from agents.observe.http import Server, application, health_routes
from agents.observe.metrics import Metrics, consumer_collector
from agents.settings import ConsoleSettings, HttpSettings
from agents.worker import ensure_topics
from pipeline.result import RunStatus, StepStatus
from tests.agents.test_engine import CREATE_LEAD_FLOW
from tests.console.site import TOKEN, Site, console_site
from tests.history.records import T0_MS, dead_letter, run_result
from tests.history.test_store import index
from topics import headers as h
from topics.catalogue import Catalogue, CatalogueSettings, TopicRole
from topics.records import DeadLetterRecord, StepOutputRecord

HOSTILE_TICKET = "<script>alert('ticket')</script>"
HOSTILE_TEXT = "<img src=x onerror=alert(1)> & <b>bold</b>"
PAYLOAD = (
    b'{"id": "e9", "type": "ticket.created", "ticket": {"id": "9", "subject": "<script>alert(2)'
    b'</script>"}, "requester": {"email": "ada@example.com"}}'
)


def hostile_step(offset: int) -> Source:
    record = StepOutputRecord(
        flow="create-lead", flow_version=1, run_id="run1-h", event_id="e-h", ticket_id=HOSTILE_TICKET,
        step="create_lead", action="salesforce.create_record", object="lead",
        inputs={"description": HOSTILE_TEXT, "password": "hunter2"}, outputs={"id": "00Q1"},
        status=StepStatus.SUCCEEDED, attempt=1, duration_ms=3.0,
        at=datetime.fromtimestamp(T0_MS / 1000, UTC), salesforce_id="00Q1",
    )  # fmt: skip
    return Source("actionflows.step-outputs", 0, offset, T0_MS, b"k", record.to_bytes(), ())


def filled_store() -> Store:
    store = Store(":memory:")
    index(
        store,
        run_result(0, run_id="run1-h", ticket=HOSTILE_TICKET, event="e-h"),
        run_result(1, run_id="run1-d", ticket="77", status=RunStatus.DEAD_LETTER,
                   failed_step="create_lead", at_ms=T0_MS + 1000),
        hostile_step(0),
        dead_letter(0, ticket=HOSTILE_TICKET),
    )  # fmt: skip
    return store


@contextlib.asynccontextmanager
async def logged_in(site: Site) -> AsyncIterator[aiohttp.ClientSession]:
    async with site.client() as client:
        assert (await site.login(client)).status == 303
        yield client


async def text(client: aiohttp.ClientSession, path: str, status: int = 200) -> str:
    async with client.get(path) as response:
        body = await response.text()
        assert response.status == status, body[:500]
        assert "script-src" not in response.headers["Content-Security-Policy"]  # none allowed
        return body


@pytest.fixture
async def deployment(kafka: str, unique: str) -> Catalogue:
    catalogue = Catalogue.build(CatalogueSettings(prefix=f"con-{unique}", partitions=1))
    await ensure_topics(kafka, catalogue)
    return catalogue


async def test_values_from_events_render_as_text(
    kafka: str, deployment: Catalogue, tmp_path: Path
) -> None:
    """A ticket id and step inputs full of HTML are escaped on the runs, run and dead-letter
    pages; the masked password never shows."""
    async with (
        console_site(tmp_path, filled_store(), bootstrap=kafka, catalogue=deployment) as site,
        logged_in(site) as client,
    ):
        pages = [
            await text(client, "/console/runs"),
            await text(client, "/console/runs/run1-h"),
            await text(client, "/console/dead-letters"),
            await text(client, f"/console/runs?ticket={HOSTILE_TICKET}"),
        ]
    for page in pages:
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&#39;ticket&#39;)&lt;/script&gt;" in page
    run_page = pages[1]
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in run_page
    assert "<img" not in run_page
    assert "hunter2" not in run_page
    assert '"password": "***"' in run_page.replace("&#34;", '"')
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in run_page  # the trace id


async def test_the_runs_search_filters_and_refuses_what_it_cannot_read(
    kafka: str, deployment: Catalogue, tmp_path: Path
) -> None:
    async with (
        console_site(tmp_path, filled_store(), bootstrap=kafka, catalogue=deployment) as site,
        logged_in(site) as client,
    ):
        page = await text(client, "/console/runs?status=dead_letter")
        assert "run1-d" in page
        assert "run1-h" not in page
        assert '<option value="dead_letter" selected>' in page
        assert "is one of" not in page
        refused = await text(client, "/console/runs?status=lost", status=400)
        assert "status must be one of" in refused
        assert "not a cursor" in await text(client, "/console/runs?cursor=xyz", status=400)
        missing = await text(client, "/console/runs/run1-nope", status=404)
        assert "No run run1-nope" in missing


async def test_the_flows_page_shows_each_file_with_its_errors_and_last_runs(
    kafka: str, deployment: Catalogue, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    corpus = Path(__file__).parent.parent / "flows_corpus" / "invalid"
    (flows / "broken.yaml").write_text((corpus / "unknown_action.yaml").read_text())
    settings = ConsoleSettings(flows_dir=flows)
    async with (
        console_site(
            tmp_path, filled_store(), bootstrap=kafka, catalogue=deployment, settings=settings
        ) as site,
        logged_in(site) as client,
    ):
        page = await text(client, "/console/flows")
    broken, valid = page.split('<section class="card"')[1:]
    assert "broken.yaml" in broken
    assert "Invalid: 1 error(s)" in broken
    assert f"{flows / 'broken.yaml'}: steps[0].action" in broken
    assert "create-lead.yaml · create-lead v1" in valid
    assert ">Valid<" in valid
    assert "event types: ticket.created" in valid
    assert "<code>find_lead</code>" in valid
    assert "/console/runs/run1-d" in valid  # its last runs, from the history


async def test_the_live_page_reads_the_workers_metrics(
    kafka: str, deployment: Catalogue, tmp_path: Path
) -> None:
    """In flight, lag per partition and pauses as a worker's real /metrics says them; a worker
    that refuses the token is reported, not hidden."""
    metrics = Metrics()
    metrics.in_flight(7)
    metrics.paused("pause.budget")
    metrics.collect_from(consumer_collector(lambda: {("con.tickets", 0): (100, 60)}))
    worker = application(HttpSettings(port=0, token=SecretStr(TOKEN)))
    health_routes(worker, Health({}), metrics.registry)
    other = application(HttpSettings(port=0, token=SecretStr("another token")))
    health_routes(other, Health({}), metrics.registry)
    async with contextlib.AsyncExitStack() as stack:
        served = await Server(worker, "127.0.0.1", 0).start()
        stack.push_async_callback(served.stop)
        refusing = await Server(other, "127.0.0.1", 0).start()
        stack.push_async_callback(refusing.stop)
        settings = ConsoleSettings(
            flows_dir=tmp_path, worker_urls=(served.url, refusing.url), scrape_every_s=0.1
        )
        async with (
            console_site(
                tmp_path, filled_store(), bootstrap=kafka, catalogue=deployment, settings=settings
            ) as site,
            logged_in(site) as client,
        ):
            page = await until_measured(client)
    assert '<dd id="in-flight">7</dd>' in page
    assert '<dd id="lag">40</dd>' in page
    assert '<dd id="paused">yes: budget</dd>' in page
    assert "HTTP 401" in page  # the worker with another token
    assert "<td>con.tickets</td><td>0</td><td>40</td>" in page


async def until_measured(client: aiohttp.ClientSession) -> str:
    """The live page once the sampler has two scrapes of the worker (bounded)."""
    for _ in range(200):
        page = await text(client, "/console/live")
        if "measuring…" not in page:
            return page
        await asyncio.sleep(0.05)  # polling a page that changes when the sampler has run
    raise AssertionError("the live page never got two scrapes of the worker")


async def test_a_letter_is_read_from_the_topic_masked_and_escaped(
    kafka: str, deployment: Catalogue, tmp_path: Path
) -> None:
    """One letter: context headers, where a redrive would send it, its payload with personal
    data masked and its HTML escaped; a position that holds nothing is a 404."""
    letters = deployment.one(TopicRole.DEAD_LETTERS).name
    context = h.DeadLetterContext(
        topic=deployment.inputs[0].name, partition=0, offset=5, stage=h.Stage.STEP,
        reason="FIELD_CUSTOM_VALIDATION_EXCEPTION", exception_class="ValidationError",
        exception_message=HOSTILE_TEXT, event_id="e9", flow="create-lead", flow_version=1,
        step="create_lead", attempts=1,
    )  # fmt: skip
    letter = DeadLetterRecord(HOSTILE_TICKET.encode(), PAYLOAD, context, ())
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            letters, letter.to_bytes(), key=letter.key, headers=letter.headers
        )
    finally:
        await producer.stop()
    async with (
        console_site(tmp_path, filled_store(), bootstrap=kafka, catalogue=deployment) as site,
        logged_in(site) as client,
    ):
        page = await text(client, "/console/dead-letters/0:0")
        confirm = await text(client, "/console/dead-letters/0:0/redrive")
        await text(client, "/console/dead-letters/0:99", status=404)
        await text(client, "/console/dead-letters/nonsense", status=400)
    assert "ada@example.com" not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "<script>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "retry of flow create-lead at create_lead" in page
    assert "Not redriven yet." in page
    assert 'action="/console/dead-letters/0:0/redrive"' in confirm
    assert 'name="csrf"' in confirm
