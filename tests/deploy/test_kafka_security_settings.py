"""KafkaSecurity from the environment, the client options made of it, and localkafka's SASL_SSL
listener configuration: what each setting means, clear refusals, and no secret in any text."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from pydantic import SecretStr

from agents.kafka_client import client_options, faust_options
from agents.settings import PLAINTEXT, KafkaSecurity, KafkaSettings
from localkafka import BrokerOptions, Listener
from tests.deploy.tls import make_certificates

PASSWORD = "s3cret-Passw0rd"


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "kafka-password"
    path.write_text(PASSWORD + "\n")  # secret files end in a newline
    return path


def test_plaintext_is_the_default() -> None:
    assert KafkaSecurity.from_env({}) == PLAINTEXT
    assert client_options(PLAINTEXT) == {"security_protocol": "PLAINTEXT"}
    assert faust_options(PLAINTEXT) == {"broker_credentials": None}


def test_sasl_ssl_from_the_environment_with_the_password_from_a_file(
    tmp_path: Path, password_file: Path
) -> None:
    certificates = make_certificates(tmp_path / "tls")
    security = KafkaSettings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "broker:9093",
            "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "KAFKA_SASL_MECHANISM": "scram-sha-512",
            "KAFKA_SASL_USERNAME": "actionflows",
            "KAFKA_SASL_PASSWORD_FILE": str(password_file),
            "KAFKA_SSL_CAFILE": str(certificates.ca),
        }
    ).security
    assert (security.protocol, security.sasl_mechanism, security.username) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
        "actionflows",
    )
    assert security.password == SecretStr(PASSWORD)
    options = client_options(security)
    assert options["sasl_plain_password"] == PASSWORD
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].check_hostname
    credentials = faust_options(security)["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"


def test_no_text_shows_the_password(password_file: Path) -> None:
    security = KafkaSecurity.from_env(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "PLAIN",
            "KAFKA_SASL_USERNAME": "actionflows",
            "KAFKA_SASL_PASSWORD_FILE": str(password_file),
        }
    )
    for text in (security.describe(), repr(security), str(security)):
        assert PASSWORD not in text
    assert security.describe() == "SASL_SSL, PLAIN as actionflows, trusting the system CAs"
    assert PASSWORD not in repr(faust_options(security)["broker_credentials"])


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL is one of"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs KAFKA_SASL_MECHANISM"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI"},
            "not 'GSSAPI'",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN"},
            "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD_FILE",
        ),
        ({"KAFKA_SASL_USERNAME": "bob"}, "KAFKA_SASL_* is set but KAFKA_SECURITY_PROTOCOL"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "KAFKA_SSL_CAFILE": "/etc/hostname"},
            "KAFKA_SSL_* is set but",
        ),
        ({"KAFKA_SASL_PASSWORD_FILE": "/nonexistent/pw"}, "KAFKA_SASL_PASSWORD_FILE: cannot read"),
        ({"KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "KAFKA_SSL_CAFILE: cannot read"),
        (
            {"KAFKA_SASL_PASSWORD": "x", "KAFKA_SASL_PASSWORD_FILE": "/etc/hostname"},
            "not both",
        ),
        ({"KAFKA_SSL_CHECK_HOSTNAME": "perhaps"}, "KAFKA_SSL_CHECK_HOSTNAME"),
    ],
)
def test_bad_settings_are_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("*", r"\*")):
        KafkaSecurity.from_env(env)


def test_a_ca_file_that_is_not_pem_fails_before_any_connection(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    security = KafkaSecurity.from_env(
        {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(bad)}
    )
    with pytest.raises(ValueError, match=f"KAFKA_SSL_CAFILE {bad}: no PEM certificates"):
        client_options(security)


# -- localkafka's SASL_SSL listener ----------------------------------------------------------


def test_a_sasl_ssl_listener_configures_tls_plain_and_scram(tmp_path: Path) -> None:
    listener = Listener("SECURE", "SASL_SSL", tmp_path / "ks.pem", (("alice", "alice-pw"),))
    properties = "\n".join(listener.properties())
    assert "listener.name.secure.ssl.keystore.type=PEM" in properties
    assert f"listener.name.secure.ssl.keystore.location={tmp_path / 'ks.pem'}" in properties
    assert "listener.name.secure.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512" in properties
    assert 'user_alice="alice-pw"' in properties
    assert listener.scram_arguments() == [
        "--add-scram=SCRAM-SHA-512=[name=alice,password=alice-pw]"
    ]
    assert Listener().properties() == []


@pytest.mark.parametrize(
    ("listener", "message"),
    [
        (lambda p: Listener("SECURE", "SASL_SSL"), "needs a keystore and users"),
        (lambda p: Listener("SECURE", "SASL_SSL", p, (("al,ice", "x"),)), "letters, digits"),
        (lambda p: Listener("SECURE", "SASL_SSL", p, (("alice", 'pw"'),)), "letters, digits"),
        (lambda p: Listener("PLAINTEXT", "PLAINTEXT", p), "for SASL_SSL listeners"),
    ],
)
def test_listener_mistakes_are_refused(listener, message: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        listener(tmp_path / "ks.pem")


def test_the_first_listener_carries_the_brokers_traffic_in_plaintext(tmp_path: Path) -> None:
    secure = Listener("SECURE", "SASL_SSL", tmp_path / "ks.pem", (("alice", "pw"),))
    with pytest.raises(ValueError, match="first listener"):
        BrokerOptions(listeners=(secure,))
    assert BrokerOptions(listeners=(Listener(), secure)).listeners[1] is secure
