"""Over TLS and SASL: the worker (SCRAM-SHA-512), the ingest (PLAIN), the run history and the
operator tools, each the real command configured only by the environment, against a broker
whose client listener is SASL_SSL with a certificate this session made."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from localkafka.broker import free_port
from tests.deploy.compose import healthcheck, load
from tests.deploy.conftest import SecureKafka
from tests.deploy.processes import (
    ROOT,
    Processes,
    actionflows,
    an_event_succeeds,
    base_environment,
    wait_healthy,
)

TOKEN = "api-token-for-the-test"
INGEST_TOKEN = "ingest-token-for-the-test"


def security_env(kafka: SecureKafka, user: str, mechanism: str, folder: Path) -> dict[str, str]:
    password = folder / f"{user}-{mechanism}.password"
    password.write_text(kafka.users[user] + "\n")
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": mechanism,
        "KAFKA_SASL_USERNAME": user,
        "KAFKA_SASL_PASSWORD_FILE": str(password),
        "KAFKA_SSL_CAFILE": str(kafka.ca),
    }


def probe(url: str) -> list[str]:
    """The compose file's healthcheck command (GET with the API token, if the environment
    names one), probing ``url``."""
    command, _ = healthcheck(load()["services"]["ingest"])
    return [sys.executable, *command[1:-1], url]


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        actionflows(argv), env=env, cwd=ROOT, capture_output=True, text=True, timeout=180,
        check=False,
    )  # fmt: skip


@pytest.mark.timeout(420)
async def test_every_component_works_over_sasl_ssl(
    secure_kafka: SecureKafka, unique: str, tmp_path: Path
) -> None:
    """An event posted to the ingest runs its flow in the worker, lands in the run history,
    and the operator tools read and republish it: every client over SASL_SSL. Negative
    control: the same tool without the security settings is refused by the listener."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "api-token").write_text(TOKEN + "\n")
    (secrets / "ingest-tokens").write_text(INGEST_TOKEN + "\n")
    prefix = f"sasl-{unique}"
    topics = {"ACTIONFLOWS_TOPIC_PREFIX": prefix}
    scram = {**security_env(secure_kafka, "actionflows", "SCRAM-SHA-512", secrets), **topics}
    plain = {**security_env(secure_kafka, "ingest", "PLAIN", secrets), **topics}
    ports = {name: free_port() for name in ("worker", "ingest", "api")}
    token = {"ACTIONFLOWS_API_TOKEN_FILE": str(secrets / "api-token")}
    worker_env = base_environment({
        **scram, **token, "ACTIONFLOWS_APP_ID": prefix,
        "ACTIONFLOWS_HTTP_PORT": str(ports["worker"]),
        "ACTIONFLOWS_STATE_DIR": str(tmp_path / "state"),
    })  # fmt: skip
    ingest_env = base_environment({
        **plain, "ACTIONFLOWS_INGEST_PORT": str(ports["ingest"]),
        "ACTIONFLOWS_INGEST_TOKENS_FILE": str(secrets / "ingest-tokens"),
    })  # fmt: skip
    api_env = base_environment({
        **scram, **token, "ACTIONFLOWS_API_PORT": str(ports["api"]),
        "ACTIONFLOWS_HISTORY_DB": str(tmp_path / "history.sqlite3"),
    })  # fmt: skip
    processes = Processes(tmp_path / "logs")
    try:
        processes.start("worker", actionflows(["actionflows", "worker", "--emulator"]), worker_env)
        processes.start("ingest", actionflows(["actionflows", "ingest"]), ingest_env)
        worker_ready = f"http://127.0.0.1:{ports['worker']}/readyz"
        await wait_healthy(processes, "worker", probe(worker_ready), worker_env)
        ingest_ready = f"http://127.0.0.1:{ports['ingest']}/readyz"
        await wait_healthy(processes, "ingest", probe(ingest_ready), ingest_env)
        processes.start("api", actionflows(["actionflows", "api"]), api_env)
        api = f"http://127.0.0.1:{ports['api']}"
        await wait_healthy(processes, "api", probe(f"{api}/readyz"), api_env)

        await an_event_succeeds(
            processes,
            ingest=f"http://127.0.0.1:{ports['ingest']}",
            ingest_token=INGEST_TOKEN,
            history=api,
            api_token=TOKEN,
            event_type="interaction.call",
            name=f"sasl-{unique}",
        )

        tools = base_environment({**scram})
        listed = run(["actionflows", "dlq", "list", "--json"], tools)
        assert listed.returncode == 0, listed.stderr
        replayed = run(
            ["actionflows", "replay", "--all", "--topic", f"{prefix}.interactions",
             "--target", f"{prefix}.replayed", "--quiet", "--json"],
            tools,
        )  # fmt: skip
        assert replayed.returncode == 0, replayed.stderr
        assert orjson.loads(replayed.stdout.strip().splitlines()[-1])["republished"] == 1

        # Negative control: no security settings, so plaintext to the SASL_SSL listener.
        bare = base_environment({"KAFKA_BOOTSTRAP_SERVERS": secure_kafka.bootstrap, **topics})
        refused = run(["actionflows", "dlq", "list"], bare)
        assert refused.returncode == 1, refused.stdout
    except BaseException:
        print(processes.logs_of_all())
        raise
    finally:
        processes.stop()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_a_wrong_password_is_refused_in_one_clear_line(
    secure_kafka: SecureKafka, unique: str, tmp_path: Path, mechanism: str
) -> None:
    """The worker exits 1, and its last line says Kafka refused the login and for whom; the
    wrong password appears nowhere. (The test above runs the worker with the right one.)"""
    env = security_env(secure_kafka, "actionflows", mechanism, tmp_path)
    wrong = "Wr0ng-password-for-the-test"
    Path(env["KAFKA_SASL_PASSWORD_FILE"]).write_text(wrong + "\n")
    env = base_environment({
        **env, "ACTIONFLOWS_TOPIC_PREFIX": f"wrong-{unique}", "ACTIONFLOWS_HTTP_PORT": "off",
        "ACTIONFLOWS_STATE_DIR": str(tmp_path / "state"),
    })  # fmt: skip
    done = run(["actionflows", "worker", "--emulator"], env)
    assert done.returncode == 1, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"actionflows worker: cannot connect to Kafka at {secure_kafka.bootstrap} "
        f"(SASL_SSL, {mechanism} as actionflows, trusting {secure_kafka.ca})"
    ), last
    assert "SaslAuthenticationFailed" in last
    assert wrong not in done.stdout + done.stderr
