"""How every Kafka client of the project connects: :class:`~agents.settings.KafkaSecurity` in,
client keyword arguments out.

Every aiokafka producer, consumer and admin client the project makes (the ledger, the admin
helpers, the ingest's producer, the history indexer, the operator tools, the health probe) is
built as ``AIOKafkaX(bootstrap_servers=…, **client_options(security), …)``, and the faust app
gets :func:`faust_options`; so TLS and SASL are configured once, from the environment, for all
of them.

aiokafka reports a refused login only in a log line and then raises "Unable to bootstrap";
:func:`explain_unreachable` dials the brokers itself to say why, in one line, for the commands'
error messages. No secret reaches a message: the password is only ever handed to the client.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import faust
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError
from faust.types.auth import CredentialsT

from agents.settings import KafkaSecurity

# How long the broker may hold a fetch that finds no new records, for every consumer that tails a
# topic (the worker's faust consumer, the ledger's reader). aiokafka keeps one fetch in flight
# per broker, and each fetch leaves out the partitions whose records are still buffered, unread.
# So when the busy partitions are buffered and a fetch goes out for the idle ones only (the retry
# tiers, a quiet input topic, the ledger between puts), the busy ones are fetched again only once
# the broker answers it: after this wait. With faust's own 1.5 s, that was the stall of 1.5 s in
# the benchmarks (docs/benchmarks.md, "The stall of 1.5 s"). An idle consumer pays for a short
# wait with a fetch per broker every FETCH_MAX_WAIT_MS.
FETCH_MAX_WAIT_MS = 100


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext:
    """A client TLS context: the configured CAs (or the system's), the client certificate if
    any. Reads the files now: one that is not PEM fails here (ValueError naming the variable),
    before any connection."""
    cafile = str(security.ca_file) if security.ca_file else None
    try:
        context = ssl.create_default_context(cafile=cafile)
    except ssl.SSLError as error:
        raise ValueError(f"KAFKA_SSL_CAFILE {cafile}: no PEM certificates ({error})") from None
    context.check_hostname = security.check_hostname
    if security.cert_file is not None and security.key_file is not None:
        try:
            context.load_cert_chain(str(security.cert_file), str(security.key_file))
        except ssl.SSLError as error:
            raise ValueError(
                f"KAFKA_SSL_CERTFILE {security.cert_file} and KAFKA_SSL_KEYFILE "
                f"{security.key_file}: not a certificate and its unencrypted key ({error})"
            ) from None
    return context


def client_options(security: KafkaSecurity) -> dict[str, Any]:
    """The keyword arguments of an aiokafka client (producer, consumer or admin) for
    ``security``."""
    options: dict[str, Any] = {"security_protocol": security.protocol}
    if security.tls:
        options["ssl_context"] = ssl_context(security)
    if security.sasl:
        assert security.password is not None  # KafkaSecurity requires it with SASL
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.username
        options["sasl_plain_password"] = security.password.get_secret_value()
    return options


def faust_options(security: KafkaSecurity) -> dict[str, Any]:
    """The keyword arguments of :class:`faust.App` for ``security`` (its broker credentials,
    which faust hands to every consumer and producer it makes)."""
    context = ssl_context(security) if security.tls else None
    credentials: CredentialsT | None = None
    if security.sasl:
        assert security.password is not None
        credentials = faust.SASLCredentials(
            username=security.username,
            password=security.password.get_secret_value(),
            mechanism=security.sasl_mechanism,
            ssl_context=context,  # None: SASL_PLAINTEXT
        )
    elif context is not None:
        credentials = faust.SSLCredentials(context)
    return {"broker_credentials": credentials}


async def explain_unreachable(
    bootstrap_servers: str, security: KafkaSecurity, *, timeout_s: float = 10.0
) -> str | None:
    """Why no broker of ``bootstrap_servers`` can be reached with ``security``, as one line
    (a refused TLS handshake, a refused SASL login, a closed port …); None when one answers."""
    reasons = []
    for address in bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            async with asyncio.timeout(timeout_s):
                conn = await create_conn(
                    host.strip("[]"),
                    int(port),
                    request_timeout_ms=int(timeout_s * 1000),
                    **client_options(security),
                )
        except (KafkaError, OSError, TimeoutError, ValueError) as error:
            text = str(error) or type(error).__name__
            kind = type(error).__name__
            reasons.append(f"{address.strip()}: {text if kind in text else f'{kind}: {text}'}")
            continue
        conn.close()
        return None
    return "; ".join(reasons)
