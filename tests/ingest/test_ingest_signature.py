"""Zendesk webhook signatures and bearer tokens, checked against the documented recipe."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from agents.ingest.errors import Unauthorized
from agents.ingest.signature import sign, verify_bearer, verify_zendesk

NOW = dt.datetime(2026, 11, 25, 9, 0, 0, tzinfo=dt.UTC)
STAMP = "2026-11-25T09:00:00Z"
BODY = b'{"type":"zen:event-type:ticket.created","id":"01J"}'
SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="  # the shape Zendesk shows


def documented(secret: str, timestamp: str, body: bytes) -> str:
    """base64(HMAC-SHA256(signing secret, timestamp + body)), written out from Zendesk's page
    (developer.zendesk.com/documentation/webhooks/verifying), independently of the code."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def check(signature: str | None, *, timestamp: str | None = STAMP, body: bytes = BODY,
          secrets: tuple[str, ...] = (SECRET,), now: dt.datetime = NOW) -> None:  # fmt: skip
    verify_zendesk(
        signature=signature,
        timestamp=timestamp,
        body=body,
        secrets=tuple(SecretStr(s) for s in secrets),
        now=now,
        tolerance_s=300,
    )


def test_sign_follows_the_documented_recipe() -> None:
    """The signature is base64(HMAC-SHA256(secret, timestamp + raw body)), nothing else."""
    assert sign(SECRET, STAMP, BODY) == documented(SECRET, STAMP, BODY)
    assert sign(SECRET, STAMP, BODY) != documented(SECRET, "", BODY + STAMP.encode())


def test_a_correct_signature_is_accepted() -> None:
    """A request signed with the secret, at a current timestamp, passes."""
    check(documented(SECRET, STAMP, BODY))


def test_an_empty_body_can_be_signed() -> None:
    """Zendesk signs bodyless requests too: the timestamp alone is signed."""
    check(documented(SECRET, STAMP, b""), body=b"")


@pytest.mark.parametrize(
    ("signature", "body", "why"),
    [
        (documented("another secret", STAMP, BODY), BODY, "signature does not match"),
        (documented(SECRET, STAMP, BODY), BODY + b" ", "signature does not match"),
        (documented(SECRET, "2026-11-25T09:00:01Z", BODY), BODY, "signature does not match"),
        ("not base64 at all", BODY, "signature does not match"),
        ("s\u00efgnature", BODY, "signature does not match"),
        (None, BODY, "missing"),
        ("", BODY, "missing"),
    ],
)
def test_a_wrong_or_missing_signature_is_refused(
    signature: str | None, body: bytes, why: str
) -> None:
    """Another secret, a changed body or timestamp, garbage or nothing: 401, saying which check."""
    with pytest.raises(Unauthorized, match=why) as refused:
        check(signature, body=body)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize("offset_s", [-301, 301, -3600, 86_400])
def test_a_timestamp_more_than_five_minutes_from_now_is_refused(offset_s: int) -> None:
    """A replayed (old) or forged (future) timestamp is refused even when correctly signed."""
    stamp = (NOW + dt.timedelta(seconds=offset_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(Unauthorized, match="from now"):
        check(documented(SECRET, stamp, BODY), timestamp=stamp)


@pytest.mark.parametrize("offset_s", [-300, -299, 0, 299, 300])
def test_a_timestamp_within_five_minutes_is_accepted(offset_s: int) -> None:
    """The window is five minutes either way, inclusive: clocks drift."""
    stamp = (NOW + dt.timedelta(seconds=offset_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    check(documented(SECRET, stamp, BODY), timestamp=stamp)


@pytest.mark.parametrize("stamp", ["yesterday", "1764061200", "2026-11-25T09:00:00"])
def test_a_timestamp_that_is_not_an_iso_time_with_a_zone_is_refused(stamp: str) -> None:
    """Only an ISO 8601 time with its zone can be compared with now."""
    with pytest.raises(Unauthorized, match=r"ISO 8601|time zone"):
        check(documented(SECRET, stamp, BODY), timestamp=stamp)


def test_any_of_several_secrets_is_accepted_during_a_rotation() -> None:
    """With the old and the new secret configured, requests signed with either pass."""
    new = "bmV3IHNlY3JldCBhZnRlciByb3RhdGlvbg=="
    for secret in (SECRET, new):
        check(documented(secret, STAMP, BODY), secrets=(SECRET, new))
    with pytest.raises(Unauthorized):  # negative control: once the old one is removed
        check(documented(SECRET, STAMP, BODY), secrets=(new,))


def test_no_configured_secret_refuses_every_request() -> None:
    """An ingest without signing secrets accepts no Zendesk webhook at all."""
    with pytest.raises(Unauthorized, match="not configured"):
        check(documented(SECRET, STAMP, BODY), secrets=())


@given(body=st.binary(max_size=2048), flip=st.integers(min_value=0))
def test_any_changed_byte_breaks_the_signature(body: bytes, flip: int) -> None:
    """Signing round-trips for any body, and changing any one byte is detected."""
    signature = sign(SECRET, STAMP, body)
    check(signature, body=body)
    if body:
        index = flip % len(body)
        tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
        with pytest.raises(Unauthorized):
            check(signature, body=tampered)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer token-one", True),
        ("bearer token-two", True),
        ("Bearer token-three", False),
        ("Basic dG9rZW4tb25l", False),
        ("token-one", False),
        ("Bearer ", False),
        (None, False),
    ],
)
def test_bearer_tokens(header: str | None, ok: bool) -> None:
    """POST /events takes any configured token, as ``Authorization: Bearer <token>``."""
    tokens = (SecretStr("token-one"), SecretStr("token-two"))
    if ok:
        verify_bearer(header, tokens)
    else:
        with pytest.raises(Unauthorized):
            verify_bearer(header, tokens)
