"""Key material the emulator generates at start: the demo org's JWT signing key and certificate,
and the self-signed TLS certificate for ``tls=True``. RSA keys are cached per process because
generating one costs tens of milliseconds and tests start many emulators.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .config import DemoCredentials
from .ids import IdFactory


@functools.cache
def _rsa_key(purpose: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(key: rsa.RSAPrivateKey, common_name: str, *, hosts: tuple[str, ...] = ()) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
    )
    if hosts:
        alt: list[x509.GeneralName] = []
        for host in hosts:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def demo_credentials(seed: int) -> DemoCredentials:
    """The demo org's connected app and integration user, deterministic for ``seed``."""
    factory = IdFactory(seed + 7919)
    key = _rsa_key("jwt")
    return DemoCredentials(
        client_id=factory.token("3MVG9", 85),
        client_secret=factory.token("", 64),
        username="integration@actionflows.example",
        password="demo-Passw0rd" + factory.token("", 24),
        private_key_pem=_key_pem(key),
        certificate_pem=_certificate(key, "actionflows-demo-connected-app"),
        org_id=factory.new("Organization"),
        user_id=factory.new("User"),
    )


def with_signing_key(credentials: DemoCredentials, private_key_pem: str) -> DemoCredentials:
    """The same org and app, signing JWTs with this key (PKCS#8 PEM): a key kept in a file
    survives a restart of the emulator, so workers configured with it keep logging in."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the JWT signing key must be an RSA key")
    return dataclasses.replace(
        credentials,
        private_key_pem=_key_pem(key),
        certificate_pem=_certificate(key, "actionflows-demo-connected-app"),
    )


def tls_material(host: str) -> tuple[str, str]:
    """(certificate PEM, private key PEM) for serving https on ``host`` and localhost."""
    key = _rsa_key("tls")
    hosts = tuple(dict.fromkeys((host, "127.0.0.1", "localhost")))
    return _certificate(key, host, hosts=hosts), _key_pem(key)
