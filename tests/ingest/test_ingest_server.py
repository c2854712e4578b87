"""The ingest over real HTTP on the real broker: what it accepts lands on the topic, acknowledged;
what it refuses, it refuses with the right status and produces nothing."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from pydantic import SecretStr

from agents.ingest.server import IngestServer
from tests.ingest.conftest import SECRET, TOKEN, Start
from tests.ingest.zendesk_side import TEMPLATE, TICKET_35500, render, signed
from tests.kafkatools import read
from topics.codecs import decode_event

ROOT = Path(__file__).resolve().parents[2]
ZENDESK_SAMPLES = (ROOT / "samples" / "zendesk.jsonl").read_bytes().splitlines()
CREATED = ZENDESK_SAMPLES[0]  # ticket 35436, enriched by its producer


async def post(
    http: aiohttp.ClientSession, url: str, body: bytes | Any, headers: dict[str, str]
) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
    async with http.post(url, data=body, headers=headers) as response:
        return response.status, await response.json(), response.headers


async def webhook(
    http: aiohttp.ClientSession, ingest: IngestServer, body: bytes, **sign: Any
) -> tuple[int, dict[str, Any], Any]:
    secret = sign.pop("secret", SECRET)
    return await post(http, ingest.url + "/webhooks/zendesk", body, signed(secret, body, **sign))


def tickets(ingest: IngestServer) -> str:
    return ingest.publisher.topics["tickets"]


async def test_a_signed_event_webhook_is_acknowledged_then_on_the_topic(
    ingest: IngestServer, http: aiohttp.ClientSession, kafka: str
) -> None:
    """200 names where the record is; the record is the body, keyed by the ticket id."""
    status, answer, _ = await webhook(http, ingest, CREATED)
    assert status == 200, answer
    [receipt] = answer["events"]
    assert (answer["accepted"], receipt["id"], receipt["topic"]) == (
        1,
        "01JDZK0A1B2C3D4E5F6G7H8J9K",
        tickets(ingest),
    )
    [record] = await read(kafka, tickets(ingest), 1)
    assert (record.key, record.value) == (b"35436", CREATED)
    assert (record.partition, record.offset) == (receipt["partition"], receipt["offset"])


async def test_a_trigger_webhook_from_the_documented_template_carries_the_requester(
    ingest: IngestServer, http: aiohttp.ClientSession, kafka: str
) -> None:
    """The body an admin sets up from docs/zendesk-trigger-body.json becomes an event with the
    requester's name, email and phone, its id taken from the invocation."""
    body = render(TEMPLATE.read_text(), TICKET_35500)
    headers = {**signed(SECRET, body), "X-Zendesk-Webhook-Invocation-Id": "8350205582"}
    status, answer, _ = await post(http, ingest.url + "/webhooks/zendesk", body, headers)
    assert status == 200, answer
    [record] = await read(kafka, tickets(ingest), 1)
    event = decode_event(record.value, topic="t")
    assert record.key == b"35500"
    assert event.id == "zendesk-webhook-8350205582"
    assert (event.requester.name, event.requester.email, event.requester.phone) == (
        'Ada "Countess" Lovelace',
        "ada@analytical.example",
        "+44 20 7946 0100",
    )


async def test_refused_webhooks_produce_nothing(
    ingest: IngestServer, http: aiohttp.ClientSession, kafka: str
) -> None:
    """Bad signature, stale or future timestamp, no signature, undecodable body: each refused,
    and the first accepted record after them is the topic's first (offset 0)."""
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)
    refusals = [
        (await webhook(http, ingest, CREATED, secret="not the secret"), 401, "signature does not match"),
        (await webhook(http, ingest, CREATED, at=old), 401, "from now"),
        (await webhook(http, ingest, CREATED, at=soon), 401, "from now"),
        (await post(http, ingest.url + "/webhooks/zendesk", CREATED, {}), 401, "missing"),
        (await webhook(http, ingest, b'{"type": "zen:event-type:ticket.created"'), 400, "unexpected end"),
    ]  # fmt: skip
    for (status, answer, _), expected, reason in refusals:
        assert status == expected, answer
        assert reason in answer["reason"]
    assert refusals[-1][0][1]["error"] == "malformed_json"
    sentinel = ZENDESK_SAMPLES[1]
    assert (await webhook(http, ingest, sentinel))[0] == 200
    [first] = await read(kafka, tickets(ingest), 1)
    assert (first.offset, first.value) == (0, sentinel)
    counts = ingest.stats.snapshot()
    assert counts["refused.401.unauthorized"] == 4
    assert counts["refused.400.malformed_json"] == 1


async def test_a_rotated_secret_is_accepted_alongside_the_old_one(
    start_ingest: Start, http: aiohttp.ClientSession
) -> None:
    """During a rotation both secrets verify; once the old one is removed it no longer does."""
    new = "bmV3LXNlY3JldC1hZnRlci1yb3RhdGlvbg=="
    both = await start_ingest(signing_secrets=(SecretStr(SECRET), SecretStr(new)))
    assert (await webhook(http, both, CREATED, secret=SECRET))[0] == 200
    assert (await webhook(http, both, CREATED, secret=new))[0] == 200
    only_new = await start_ingest(signing_secrets=(SecretStr(new),))
    assert (await webhook(http, only_new, CREATED, secret=new))[0] == 200
    assert (await webhook(http, only_new, CREATED, secret=SECRET))[0] == 401


async def test_an_oversized_body_is_413_whether_announced_or_streamed(
    start_ingest: Start, http: aiohttp.ClientSession
) -> None:
    """Over max_body_bytes: refused with 413, with a Content-Length or chunked."""
    ingest = await start_ingest(max_body_bytes=4096)
    big = b'{"pad": "' + b"x" * 5000 + b'"}'
    status, answer, _ = await webhook(http, ingest, big)
    assert (status, answer["error"]) == (413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 1024

    status, answer, _ = await post(http, ingest.url + "/webhooks/zendesk", chunks(), {})
    assert (status, answer["error"]) == (413, "payload_too_large")
    assert (await webhook(http, ingest, CREATED))[0] == 200  # under the limit: fine


async def test_post_events_takes_one_or_many_with_a_bearer_token(
    ingest: IngestServer, http: aiohttp.ClientSession, kafka: str
) -> None:
    """Generic events go to the input their type names; a bad array is refused whole."""
    url, auth = ingest.url + "/events", {"Authorization": f"Bearer {TOKEN}"}
    call = {
        "id": "c1",
        "type": "interaction.call",
        "ticket_id": "C-1",
        "requester": {"phone": "+1"},
    }
    case = {"id": "k1", "type": "ticket.created", "ticket": {"id": "K-1"}}
    status, answer, headers = await post(http, url, orjson.dumps(call), {})
    assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="actionflows"')
    status, _, _ = await post(http, url, orjson.dumps(call), {"Authorization": "Bearer nope"})
    assert status == 401
    status, answer, _ = await post(http, url, orjson.dumps([call, {"id": "x"}, case]), auth)
    assert (status, answer["index"], answer["error"]) == (400, 1, "missing_field")
    status, answer, _ = await post(http, url, orjson.dumps([call, case]), auth)
    assert (status, answer["accepted"]) == (200, 2)
    [interaction] = await read(kafka, ingest.publisher.topics["interactions"], 1)
    [ticket] = await read(kafka, tickets(ingest), 1)
    assert (interaction.key, interaction.offset, ticket.key, ticket.offset) == (
        b"C-1",
        0,
        b"K-1",
        0,
    )
    status, answer, _ = await post(http, url + "?input=elsewhere", orjson.dumps(call), auth)
    assert (status, answer["error"]) == (400, "invalid_field")


async def test_a_retried_delivery_is_produced_again_with_the_same_event_id(
    ingest: IngestServer, http: aiohttp.ClientSession, kafka: str
) -> None:
    """Zendesk retries what it did not see acknowledged; each copy is acknowledged and carries
    the same id and key, which is how the worker recognises it (see test_ingest_e2e)."""
    for _ in range(2):
        assert (await webhook(http, ingest, CREATED))[0] == 200
    records = await read(kafka, tickets(ingest), 2)
    assert {(r.key, decode_event(r.value, topic="t").id) for r in records} == {
        (b"35436", "01JDZK0A1B2C3D4E5F6G7H8J9K")
    }


async def test_health_and_readiness(ingest: IngestServer, http: aiohttp.ClientSession) -> None:
    async with http.get(ingest.url + "/healthz") as response:
        health = await response.json()
    assert (response.status, health["status"], health["kafka"]) == (200, "ok", "connected")
    async with http.get(ingest.url + "/readyz") as response:
        assert (response.status, (await response.json())["status"]) == (200, "ready")


async def test_no_body_signature_or_secret_reaches_the_logs(
    ingest: IngestServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """With every logger at DEBUG (aiokafka's included), neither accepted nor refused requests
    leave their body, signature or the secret in a log line."""
    marker = "body-marker-7f3a"
    body = CREATED.replace(b"Pricing for 50 seats?", marker.encode())
    caplog.set_level(logging.DEBUG)
    accepted = signed(SECRET, body)
    async with http.post(ingest.url + "/webhooks/zendesk", data=body, headers=accepted) as r:
        assert r.status == 200
    assert (await webhook(http, ingest, body, secret="wrong"))[0] == 401
    assert (await webhook(http, ingest, body.replace(b'"detail"', b'"x"')))[0] == 400
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "refused POST /webhooks/zendesk" in logged  # negative control: the logs were captured
    for secret_thing in (marker, SECRET, accepted["X-Zendesk-Webhook-Signature"], TOKEN):
        assert secret_thing not in logged
