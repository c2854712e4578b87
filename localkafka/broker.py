"""A real single-node Apache Kafka broker (KRaft), started from Maven Central jars.

Used by the test suite, CI, ``make run`` and ``actionflows kafka``. The flow:

1. :func:`ensure_classpath` runs ``mvn package`` on ``localkafka/pom.xml`` once per Kafka version
   and caches the jars under the cache directory (a marker file says the copy finished).
2. :class:`LocalBroker` writes ``server.properties`` and a logging config into a fresh work
   directory, formats KRaft storage, starts ``kafka.Kafka`` on free loopback ports, and waits until
   the broker answers a metadata request (an open port is not enough).
3. :meth:`LocalBroker.stop` ends the JVM it started, by its own PID (SIGTERM, then SIGKILL). The JVM
   also gets SIGKILL from the kernel if the Python process that started it dies (PR_SET_PDEATHSIG),
   so an interrupted test run leaves no broker behind.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aiokafka.admin import AIOKafkaAdminClient

POM = Path(__file__).with_name("pom.xml")
DEFAULT_KAFKA_VERSION = "4.4.0"
_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


class BrokerError(RuntimeError):
    """The broker could not be provisioned or did not become ready; the message says why."""


@dataclass(frozen=True, slots=True)
class BrokerOptions:
    kafka_version: str = DEFAULT_KAFKA_VERSION
    cache_dir: Path = Path.home() / ".cache" / "actionflows"
    heap: str = "512m"
    partitions: int = 1
    ready_timeout_s: float = 60.0
    port: int = 0  # 0: a free loopback port


def ensure_classpath(version: str, cache_dir: Path) -> Path:
    """Return the folder of the broker's jars for ``version``, resolving them with Maven once."""
    libs = cache_dir / f"kafka-{version}" / "libs"
    marker = libs.parent / "complete"
    if marker.exists():
        return libs
    if shutil.which("mvn") is None:
        raise BrokerError("Maven ('mvn') is not on PATH; it is needed once to fetch the Kafka jars")
    shutil.rmtree(libs, ignore_errors=True)
    profile = "kafka3" if version.startswith("3.") else "kafka4"
    command = [
        "mvn", "-q", "-B", "-f", str(POM), f"-P{profile}",
        f"-Dkafka.version={version}", f"-Dlibs.dir={libs}",
        f"-Dproject.build.directory={cache_dir / 'mvn-target'}", "package",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BrokerError(f"mvn could not resolve Kafka {version}:\n{result.stdout[-4000:]}")
    marker.write_text(version)
    return libs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class LocalBroker:
    """One broker+controller JVM in a fresh work directory. Use as a context manager."""

    def __init__(self, options: BrokerOptions | None = None) -> None:
        self.options = options or BrokerOptions()
        self.work_dir = Path(tempfile.mkdtemp(prefix="actionflows-kafka-"))
        self.log_path = self.work_dir / "logs" / "server.log"
        self.port = self.options.port or free_port()
        self.controller_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalBroker:
        started = time.monotonic()
        libs = ensure_classpath(self.options.kafka_version, self.options.cache_dir)
        properties = self._write_config()
        java = self._java_command(libs)
        storage = [
            *java,
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={_cluster_id()}",
            "-c",
            str(properties),
        ]
        result = subprocess.run(storage, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise BrokerError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")
        console = (self.work_dir / "logs" / "console.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            [*java, "kafka.Kafka", str(properties)],
            stdout=console,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        console.close()
        try:
            asyncio.run(self._wait_ready())
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """End the JVM this object started, by its PID; wait for it; keep the logs."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def logs(self, last_chars: int = 8000) -> str:
        """The tail of the broker's log and console output, for failure reports."""
        parts = []
        for path in (self.log_path, self.work_dir / "logs" / "console.log"):
            if path.exists():
                parts.append(f"--- {path} ---\n{path.read_text(errors='replace')[-last_chars:]}")
        return "\n".join(parts)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.options.ready_timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BrokerError(
                    f"the broker exited with {self.process.returncode}\n{self.logs()}"
                )
            if not _port_open(self.port):  # keeps aiokafka from logging refused connections
                await asyncio.sleep(0.1)  # polling interval while the JVM boots
                continue
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers, request_timeout_ms=5000
            )
            try:
                await admin.start()
                await admin.list_topics()
                return
            except Exception as error:
                last_error = error
            finally:
                with contextlib.suppress(Exception):
                    await admin.close()
            await asyncio.sleep(0.2)  # polling interval while the JVM boots, not synchronisation
        raise BrokerError(
            f"the broker did not answer metadata within {self.options.ready_timeout_s}s "
            f"({last_error!r})\n{self.logs()}"
        )

    def _java_command(self, libs: Path) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerError("'java' (17 or newer) is not on PATH")
        logs = self.work_dir / "logs"
        heap = self.options.heap
        return [
            java, f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dkafka.logs.dir={logs}",
            f"-Dlog4j2.configurationFile={self.work_dir / 'log4j2.properties'}",
            f"-Dlog4j.configuration=file:{self.work_dir / 'log4j.properties'}",
            "-cp", f"{libs}/*",
        ]  # fmt: skip

    def _write_config(self) -> Path:
        (self.work_dir / "logs").mkdir(parents=True, exist_ok=True)
        properties = self.work_dir / "server.properties"
        properties.write_text(
            SERVER_PROPERTIES.format(
                port=self.port,
                controller_port=self.controller_port,
                data=self.work_dir / "data",
                partitions=self.options.partitions,
            )
        )
        (self.work_dir / "log4j2.properties").write_text(LOG4J2.format(log=self.log_path))
        (self.work_dir / "log4j.properties").write_text(LOG4J1.format(log=self.log_path))
        return properties


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters)."""
    return base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


# One config for 3.9 and 4.x: static voters plus a plain `format -t` (see reference notes §1.4).
SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions={partitions}
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
"""

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""

LOG4J1 = """\
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
"""
