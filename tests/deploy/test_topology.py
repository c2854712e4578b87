"""docker-compose.yml's topology as plain processes: a three-broker cluster, the emulator, the
ingest, two workers and the console, each started with the file's own command and variables
(moved onto this machine by tests/deploy/compose.py) in the order its depends_on gives, each
waited on with the file's own healthcheck; then an event posted to the ingest succeeds."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from localkafka import LocalBroker
from localkafka.broker import free_port
from tests.deploy.compose import Moves, adapt, app_services, load, secret_files, start_order
from tests.deploy.processes import Processes, an_event_succeeds, wait_healthy
from tests.kafkatools import group_members, partitions_of, topic_config, wait_for


@pytest.mark.timeout(600)
async def test_the_compose_topology_runs_an_event_through(
    kafka_cluster: LocalBroker, unique: str, tmp_path: Path
) -> None:
    document = load()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    values = {name: uuid.uuid4().hex for name in secret_files(document)}
    for name, file in secret_files(document).items():
        (secrets / file).write_text(values[name] + "\n")
    moves = Moves(
        secrets=secrets,
        emulator_keys=tmp_path / "emulator-key",
        bootstrap=kafka_cluster.bootstrap_servers,
        ports={name: free_port() for name in app_services(document)},
        unique=unique,
        state=tmp_path / "state",
    )
    moves.emulator_keys.mkdir()
    order = start_order(document)
    assert order[0] == "emulator"
    assert order[-1] == "console"  # it waits for a worker: the topics must exist
    processes = Processes(tmp_path / "logs")
    try:
        for name in order:
            service = adapt(document, name, moves)
            processes.start(name, service.argv, service.env)
            await wait_healthy(processes, name, service.probe, service.env, timeout_s=180)

        group = adapt(document, "worker-1", moves).env["ACTIONFLOWS_APP_ID"]

        async def both_workers() -> bool:
            return await group_members(kafka_cluster.bootstrap_servers, group) == 2

        await wait_for(both_workers, timeout_s=120, what="both workers in one consumer group")
        await an_event_succeeds(
            processes,
            ingest=f"http://127.0.0.1:{moves.ports['ingest']}",
            ingest_token=values["ingest_tokens"],
            history=f"http://127.0.0.1:{moves.ports['console']}",
            api_token=values["api_token"],
            event_type="interaction.email",
            name=f"topology-{unique}",
        )

        # The project's topics as the file asks: three replicas, two in sync for a write.
        prefix = adapt(document, "ingest", moves).env["ACTIONFLOWS_TOPIC_PREFIX"]
        bootstrap = kafka_cluster.bootstrap_servers
        for topic in (f"{prefix}.interactions", f"{prefix}.run-results", f"{prefix}.ledger"):
            assert {
                len(p["replicas"]) for p in (await partitions_of(bootstrap, topic)).values()
            } == {3}
            assert (await topic_config(bootstrap, topic))["min.insync.replicas"] == "2"
    except BaseException:
        print(processes.logs_of_all())
        raise
    finally:
        processes.stop()
