"""TLS: a private CA is trusted when configured, refused otherwise, and never retried."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from salesforce.client import SalesforceClient
from salesforce.errors import TlsError
from tests.salesforce.conftest import KeyPair, settings_for
from tests.salesforce.fake_org import DATA, FakeOrg, reply


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca_and_server(tmp: Path) -> tuple[Path, ssl.SSLContext]:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test ca"))
        .issuer_name(_name("test ca"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = tmp / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp / "server.pem", tmp / "server.key")
    return ca_file, context


@pytest.fixture
async def tls_org(tmp_path: Path) -> AsyncIterator[tuple[FakeOrg, Path]]:
    ca_file, context = make_ca_and_server(tmp_path)
    fake = FakeOrg()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server(ssl=context)
    fake.server = server
    fake.on("GET", f"{DATA}/limits", reply(200, {"ok": True}))
    try:
        yield fake, ca_file
    finally:
        await server.close()


async def test_configured_ca_is_trusted(tls_org: tuple[FakeOrg, Path], key_pair: KeyPair) -> None:
    """With ca_file set, the client verifies the org's certificate against that CA."""
    org, ca_file = tls_org
    assert org.url.startswith("https://")
    settings = settings_for(org.url, key_pair, ca_file=ca_file)
    async with SalesforceClient(settings) as sf:
        assert await sf.limits() == {"ok": True}


async def test_unknown_ca_is_refused_without_retry(
    tls_org: tuple[FakeOrg, Path], key_pair: KeyPair
) -> None:
    """Without the CA, the handshake fails as a non-retriable TlsError, attempted once."""
    org, _ = tls_org
    async with SalesforceClient(settings_for(org.url, key_pair)) as sf:
        with pytest.raises(TlsError) as caught:
            await sf.limits()
    assert not caught.value.retriable
    assert len(org.requests) == 0


async def test_verification_can_be_switched_off(
    tls_org: tuple[FakeOrg, Path], key_pair: KeyPair
) -> None:
    """verify_tls=False (for a local emulator only) skips certificate checks."""
    org, _ = tls_org
    settings = settings_for(org.url, key_pair, verify_tls=False)
    async with SalesforceClient(settings) as sf:
        assert await sf.limits() == {"ok": True}
