"""Zendesk webhook signatures, and bearer tokens for ``POST /events``. Pure: no I/O, no clock.

Zendesk signs every webhook request (developer.zendesk.com/documentation/webhooks/verifying)::

    X-Zendesk-Webhook-Signature-Timestamp: 2026-11-25T09:00:00Z
    X-Zendesk-Webhook-Signature: base64(HMAC-SHA256(signing secret, timestamp + raw body))

The timestamp string is concatenated with the body bytes exactly as received, no separator;
the secret is used as the text Zendesk shows (not base64-decoded). Verification here:

- compares in constant time (:func:`hmac.compare_digest`), and tries every configured secret
  whatever the outcome of the others, so the time taken does not say which one matched;
- accepts any of several secrets, so a secret can be rotated without a gap: add the new one,
  reset it in Zendesk, remove the old one;
- rejects a timestamp more than ``tolerance_s`` (five minutes) from now, either way, so a
  captured request cannot be replayed later.

Failures raise :class:`~agents.ingest.errors.Unauthorized` whose message names the check that
failed, never a secret, a signature or the body.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence

from pydantic import SecretStr

from agents.ingest.errors import Unauthorized

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature Zendesk computes: base64(HMAC-SHA256(secret, timestamp + body))."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_zendesk(
    *,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    secrets: Sequence[SecretStr],
    now: dt.datetime,
    tolerance_s: float,
) -> None:
    """Raise Unauthorized unless ``signature`` is one of ``secrets``' signatures of a fresh
    ``timestamp`` + ``body``."""
    if not secrets:
        raise Unauthorized("webhook signing is not configured on this ingest")
    if not signature or not timestamp:
        raise Unauthorized(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
    try:
        signed_at = dt.datetime.fromisoformat(timestamp)
    except ValueError:
        raise Unauthorized(f"{TIMESTAMP_HEADER} is not an ISO 8601 time") from None
    if signed_at.tzinfo is None:
        raise Unauthorized(f"{TIMESTAMP_HEADER} has no time zone")
    skew = abs((now - signed_at).total_seconds())
    if skew > tolerance_s:
        raise Unauthorized(
            f"{TIMESTAMP_HEADER} is {skew:.0f}s from now, more than the {tolerance_s:.0f}s allowed"
        )
    if not signature.isascii():
        raise Unauthorized("signature does not match")
    given = signature.encode("ascii")
    matched = False
    for secret in secrets:  # no early exit: every secret costs the same time
        expected = sign(secret.get_secret_value(), timestamp, body).encode("ascii")
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise Unauthorized("signature does not match")


def verify_bearer(authorization: str | None, tokens: Sequence[SecretStr]) -> None:
    """Raise Unauthorized unless ``authorization`` is ``Bearer <one of tokens>``."""
    if not tokens:
        raise Unauthorized("POST /events is not configured on this ingest (no tokens)")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("expected Authorization: Bearer <token>")
    given = token.strip().encode()
    matched = False
    for candidate in tokens:  # no early exit, as above
        matched |= hmac.compare_digest(candidate.get_secret_value().encode(), given)
    if not matched:
        raise Unauthorized("unknown bearer token")
