"""docker-compose.yml, checked without a Docker engine: it is valid Compose, it publishes and
replicates what it should, its secrets are files, and every service's command and variables are
accepted by the command line (``--check-config``: settings and secret files read, nothing
connected)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from localkafka import DEFAULT_KAFKA_VERSION
from sfemulator.credentials import demo_credentials
from tests.deploy.compose import (
    COMPOSE,
    EMULATOR_KEY_DIR,
    SECRETS_IN_CONTAINER,
    Moves,
    adapt,
    app_services,
    load,
    secret_files,
)
from tests.deploy.processes import ROOT

DOCUMENT = load()
SERVICES = app_services(DOCUMENT)
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the dev dependency's own command
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_file_is_valid_compose(tmp_path: Path) -> None:
    """The Compose specification's JSON schema accepts the file, and refuses a copy with a
    mistake in it (negative control: the check can fail)."""
    done = validate(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["ingest"]["helthcheck"] = broken["services"]["ingest"].pop("healthcheck")
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken))
    refused = validate(tmp_path / "docker-compose.yml")
    assert refused.returncode == 1, refused.stdout
    assert "helthcheck" in refused.stdout


def test_the_topology_is_the_one_asked_for() -> None:
    """Three brokers, the emulator, the ingest, two workers and the console (the history)."""
    services = DOCUMENT["services"]
    brokers = sorted(n for n, s in services.items() if str(s["image"]).startswith("apache/kafka"))
    assert brokers == ["kafka-1", "kafka-2", "kafka-3"]
    commands = {name: service["command"][1] for name, service in SERVICES.items()}
    assert sorted(commands.values()) == sorted(
        ["emulator", "ingest", "worker", "worker", "console"]
    ), commands
    voters = services["kafka-1"]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert voters == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"


def test_the_brokers_run_the_version_the_tests_run() -> None:
    for name in ("kafka-1", "kafka-2", "kafka-3"):
        assert DOCUMENT["services"][name]["image"] == f"apache/kafka:{DEFAULT_KAFKA_VERSION}"


def test_only_the_ingest_and_the_console_are_published_on_loopback() -> None:
    """No broker (plaintext inside the compose network) is reachable from the host."""
    published = {
        name: service["ports"]
        for name, service in DOCUMENT["services"].items()
        if "ports" in service
    }
    assert sorted(published) == ["console", "ingest"]
    for ports in published.values():
        assert all(str(port).startswith("127.0.0.1:") for port in ports), ports


def test_the_project_topics_get_three_replicas_and_two_in_sync() -> None:
    """Every service that talks to Kafka creates topics with replication 3, min ISR 2; the
    brokers' own topics and defaults agree."""
    for name, service in SERVICES.items():
        env = service.get("environment", {})
        if "KAFKA_BOOTSTRAP_SERVERS" in env:
            assert (
                env["ACTIONFLOWS_REPLICATION_FACTOR"],
                env["ACTIONFLOWS_MIN_INSYNC_REPLICAS"],
            ) == (3, 2), name
    broker = DOCUMENT["services"]["kafka-1"]["environment"]
    assert broker["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3
    assert broker["KAFKA_MIN_INSYNC_REPLICAS"] == 2
    assert broker["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3


def test_secrets_are_files() -> None:
    """No secret-looking variable carries a value; each /run/secrets path a service reads is a
    secret that service mounts."""
    secretish = re.compile(r"(TOKEN|SECRET|PASSWORD|PRIVATE_KEY)S?$")
    for name, service in SERVICES.items():
        env = service.get("environment", {})
        assert not [k for k in env if secretish.search(k)], name
        mounted = set(service.get("secrets", []))
        for key, value in env.items():
            if str(value).startswith(SECRETS_IN_CONTAINER):
                assert str(value).removeprefix(SECRETS_IN_CONTAINER) in mounted, (name, key)
    assert set(secret_files(DOCUMENT)) == {"api_token", "ingest_tokens", "zendesk_signing_secrets"}


def test_every_service_has_a_readiness_healthcheck() -> None:
    for name, service in SERVICES.items():
        url = service["healthcheck"]["test"][-1]
        expected = "/services/data" if name == "emulator" else "/readyz"
        assert url.startswith("http://127.0.0.1:"), (name, url)
        assert url.endswith(expected), (name, url)


def test_the_workers_log_in_as_the_emulator_s_app() -> None:
    """The client id and user the workers are given are those of the emulator's demo app
    (seed 0), and they read the key from the volume the emulator writes it to."""
    credentials = demo_credentials(0)
    for name in ("worker-1", "worker-2"):
        env = SERVICES[name]["environment"]
        assert env["ACTIONFLOWS_SF_EMULATOR_CLIENT_ID"] == credentials.client_id
        assert env["ACTIONFLOWS_SF_EMULATOR_USERNAME"] == credentials.username
        assert env["ACTIONFLOWS_SF_EMULATOR_PRIVATE_KEY_FILE"].startswith(EMULATOR_KEY_DIR)
        assert f"emulator-key:{EMULATOR_KEY_DIR}:ro" in SERVICES[name]["volumes"]
    assert f"emulator-key:{EMULATOR_KEY_DIR}" in SERVICES["emulator"]["volumes"]


# -- every command and variable, through --check-config -------------------------------------


@pytest.fixture
def moves(tmp_path: Path) -> Moves:
    """Secret files with made-up values, and the emulator's key where the volume would be."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for file in secret_files(DOCUMENT).values():
        (secrets / file).write_text("made-up-secret-for-the-test\n")
    keys = tmp_path / "emulator"
    keys.mkdir()
    (keys / "jwt-private-key.pem").write_text(demo_credentials(0).private_key_pem)
    return Moves(secrets=secrets, emulator_keys=keys)


def check_config(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        [*argv, "--check-config"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_s_command_and_variables_are_accepted(name: str, moves: Moves) -> None:
    """The service's own command, with the file's variables (secret paths moved to real files),
    passes --check-config: every argument parses, every setting is valid, every secret file is
    read, and every ACTIONFLOWS_/KAFKA_ variable is one the command reads."""
    service = adapt(DOCUMENT, name, moves)
    done = check_config(service.argv, service.env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the configuration is valid" in done.stdout
    for secret in ("made-up-secret-for-the-test", "BEGIN PRIVATE KEY"):
        assert secret not in done.stdout + done.stderr


def test_check_config_names_a_variable_no_one_reads(moves: Moves) -> None:
    """Negative control: a misspelt variable fails the check, by name."""
    service = adapt(DOCUMENT, "worker-1", moves)
    done = check_config(service.argv, {**service.env, "ACTIONFLOWS_REPLICATION_FACTR": "3"})
    assert done.returncode == 1
    assert "ACTIONFLOWS_REPLICATION_FACTR" in done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("worker-1", "ACTIONFLOWS_API_TOKEN_FILE"),
        ("worker-1", "ACTIONFLOWS_SF_EMULATOR_PRIVATE_KEY_FILE"),
        ("ingest", "ACTIONFLOWS_INGEST_TOKENS_FILE"),
        ("console", "ACTIONFLOWS_API_TOKEN_FILE"),
    ],
)
def test_check_config_reads_the_secret_files(name: str, variable: str, moves: Moves) -> None:
    """Negative control: with a secret file missing, the check fails and names it."""
    service = adapt(DOCUMENT, name, moves)
    Path(service.env[variable]).unlink()
    done = check_config(service.argv, service.env)
    assert done.returncode != 0, done.stdout
    assert service.env[variable] in done.stderr or variable in done.stderr, done.stderr


def test_the_emulator_keeps_the_key_it_finds(moves: Moves) -> None:
    """Given a key file that exists, the emulator would sign with it rather than a new one."""
    service = adapt(DOCUMENT, "emulator", moves)
    done = check_config(service.argv, service.env)
    assert done.returncode == 0, done.stderr
    assert "(reused)" in done.stdout
    (moves.emulator_keys / "jwt-private-key.pem").unlink()
    assert "(created)" in check_config(service.argv, service.env).stdout
