"""A real Apache Kafka (KRaft) on loopback, started from Maven Central jars: one node or a cluster.

Used by the test suite, CI, ``make run``, ``make chaos`` and ``actionflows kafka``. The flow:

1. :func:`ensure_classpath` runs ``mvn package`` on ``localkafka/pom.xml`` once per Kafka version
   and caches the jars under the cache directory (a marker file says the copy finished).
2. :class:`LocalBroker` plans the cluster (a cluster id and free loopback ports for each node,
   kept in ``cluster.json``; see :mod:`localkafka.config`), formats the storage of each node that
   is not formatted yet, starts one ``kafka.Kafka`` JVM per node (broker and controller in one
   process, static voters), and waits until the cluster reports every node as a broker (an open
   port is not enough).
3. Given a ``data_dir`` that already holds a cluster, it starts that cluster again on the same
   ports with the data it kept. :meth:`LocalBroker.kill` and :meth:`LocalBroker.restart` crash and
   bring back single nodes, for tests and ``make chaos``.
4. :meth:`LocalBroker.stop` ends the JVMs it started, by their own PIDs (SIGTERM, then SIGKILL).
   Each JVM also gets SIGKILL from the kernel if the thread that started it ends
   (PR_SET_PDEATHSIG), so an interrupted test run leaves no broker behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aiokafka.admin import AIOKafkaAdminClient

from localkafka.config import (
    LOG4J1,
    LOG4J2,
    Layout,
    Listener,
    NodeAddress,
    new_cluster_id,
    server_properties,
)

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
    brokers: int = 1  # nodes, each a broker and a controller
    heap: str | None = None  # per node; None: 512m for a single node, 256m each in a cluster
    partitions: int = 1  # default partitions of auto-created topics
    ready_timeout_s: float = 90.0
    port: int = 0  # the first node's first listener; the others follow it. 0: free ports
    # None: a fresh temporary directory. A directory that holds a cluster is started again
    # with its data, ports and cluster id; an empty or missing one is formatted.
    data_dir: Path | None = None
    listeners: tuple[Listener, ...] = (Listener(),)

    def __post_init__(self) -> None:
        if self.brokers < 1:
            raise ValueError(f"a cluster needs at least one node, not {self.brokers}")
        if not self.listeners:
            raise ValueError("at least one client listener is needed")
        if self.listeners[0].protocol != "PLAINTEXT":
            raise ValueError("the first listener carries the brokers' own traffic: PLAINTEXT")
        if len({lis.name for lis in self.listeners}) != len(self.listeners):
            raise ValueError("listener names must be distinct")
        if not 0 <= self.port <= 65535 - self.brokers * len(self.listeners):
            raise ValueError(f"port {self.port} leaves no room for every node's listeners")


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


class KafkaNode:
    """One broker+controller JVM: its directory, its ports and, while it runs, its process."""

    def __init__(self, address: NodeAddress, directory: Path) -> None:
        self.address = address
        self.directory = directory
        self.log_path = directory / "logs" / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def node_id(self) -> int:
        return self.address.node_id

    @property
    def formatted(self) -> bool:
        return (self.directory / "data" / "meta.properties").exists()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self, java: list[str]) -> None:
        console = (self.directory / "logs" / "console.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our JVM and our config
            [*java, "kafka.Kafka", str(self.directory / "server.properties")],
            stdout=console,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        console.close()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """End this node's JVM by its PID and wait for it (SIGKILL after 20 s of SIGTERM)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def logs(self, last_chars: int) -> str:
        parts = []
        for path in (self.log_path, self.directory / "logs" / "console.log"):
            if path.exists():
                parts.append(f"--- {path} ---\n{path.read_text(errors='replace')[-last_chars:]}")
        return "\n".join(parts)


class LocalBroker:
    """A local Kafka of ``options.brokers`` nodes on loopback. Use as a context manager."""

    def __init__(self, options: BrokerOptions | None = None) -> None:
        self.options = options = options or BrokerOptions()
        self.work_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="actionflows-kafka-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.layout = Layout.load(self.work_dir) or self._plan()
        self._check_layout()
        self.nodes = [
            KafkaNode(address, self.work_dir / f"node-{address.node_id}")
            for address in self.layout.nodes
        ]
        self.startup_seconds: float | None = None

    @property
    def bootstrap_servers(self) -> str:
        return self.bootstrap(self.options.listeners[0].name)

    def bootstrap(self, listener: str) -> str:
        """The bootstrap servers of one listener, every node's address."""
        return ",".join(f"127.0.0.1:{node.address.ports[listener]}" for node in self.nodes)

    @property
    def port(self) -> int:
        """The first node's port on the first listener."""
        return self.nodes[0].address.ports[self.options.listeners[0].name]

    @property
    def log_path(self) -> Path:
        """The first node's log (a cluster's other logs sit beside it, one folder per node)."""
        return self.nodes[0].log_path

    def node(self, node_id: int) -> KafkaNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KeyError(f"no node {node_id} in this cluster ({[n.node_id for n in self.nodes]})")

    def start(self) -> LocalBroker:
        """Format what is not formatted yet, start every node, and wait for the whole cluster."""
        started = time.monotonic()
        self._write_configs()
        formatting = [(node, self._format(node)) for node in self.nodes if not node.formatted]
        for node, process in formatting:
            out, _ = process.communicate()
            if process.returncode != 0:
                raise BrokerError(f"formatting KRaft storage of node {node.node_id} failed:\n{out}")
        for node in self.nodes:
            node.launch(self._java_command(node))
        try:
            asyncio.run(self._wait_ready(self.nodes))
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """End every JVM this object started, by its PID; wait for them; keep data and logs."""
        for node in self.nodes:
            node.stop()

    def kill(self, node_id: int | None = None) -> None:
        """SIGKILL one node (default: the first) — a crash, for tests and chaos runs."""
        self.node(node_id or self.nodes[0].node_id).stop(signal.SIGKILL)

    async def restart(self, node_id: int | None = None) -> None:
        """Start a stopped or killed node again on its data and ports; wait until it serves.

        The JVM is launched from the calling thread, and the kernel kills it when that thread
        ends (PR_SET_PDEATHSIG): call this from a thread that lives as long as the cluster
        should (an event loop's, not a short-lived worker thread's).
        """
        node = self.node(node_id or self.nodes[0].node_id)
        if node.running:
            raise BrokerError(f"node {node.node_id} is still running")
        node.launch(self._java_command(node))
        await self._wait_ready([node])

    def logs(self, last_chars: int = 8000) -> str:
        """The tail of each node's log and console output, for failure reports."""
        share = max(last_chars // len(self.nodes), 1000)
        return "\n".join(node.logs(share) for node in self.nodes)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- planning and files -------------------------------------------------------------------

    def _plan(self) -> Layout:
        names = [listener.name for listener in self.options.listeners]
        base = self.options.port
        nodes = []
        for index in range(self.options.brokers):
            ports = {
                name: (base + index * len(names) + offset if base else free_port())
                for offset, name in enumerate(names)
            }
            nodes.append(NodeAddress(index + 1, ports, free_port()))
        layout = Layout(new_cluster_id(), self.options.kafka_version, tuple(nodes))
        layout.save(self.work_dir)
        return layout

    def _check_layout(self) -> None:
        """A kept data directory must match what the caller asks for, or be refused clearly."""
        layout, options = self.layout, self.options
        problems = []
        if len(layout.nodes) != options.brokers:
            problems.append(f"{len(layout.nodes)} node(s), not {options.brokers}")
        if layout.kafka_version != options.kafka_version:
            problems.append(f"Kafka {layout.kafka_version}, not {options.kafka_version}")
        wanted = {listener.name for listener in options.listeners}
        if any(set(node.ports) != wanted for node in layout.nodes):
            problems.append(f"listeners {sorted(layout.nodes[0].ports)}, not {sorted(wanted)}")
        first = layout.nodes[0].ports.get(options.listeners[0].name)
        if options.port and first != options.port:
            problems.append(f"port {first}, not {options.port}")
        if problems:
            raise BrokerError(f"{self.work_dir} holds another cluster: {'; '.join(problems)}")

    def _write_configs(self) -> None:
        for node in self.nodes:
            (node.directory / "logs").mkdir(parents=True, exist_ok=True)
            (node.directory / "server.properties").write_text(
                server_properties(
                    self.layout,
                    node.address,
                    self.options.listeners,
                    node.directory / "data",
                    self.options.partitions,
                )
            )
            (node.directory / "log4j2.properties").write_text(LOG4J2.format(log=node.log_path))
            (node.directory / "log4j.properties").write_text(LOG4J1.format(log=node.log_path))

    def _format(self, node: KafkaNode) -> subprocess.Popen[str]:
        return subprocess.Popen(  # noqa: S603 - our JVM and our config
            [
                *self._java_command(node),
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={self.layout.cluster_id}",
                "-c",
                str(node.directory / "server.properties"),
                *(arg for lis in self.options.listeners for arg in lis.scram_arguments()),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def _java_command(self, node: KafkaNode) -> list[str]:
        libs = ensure_classpath(self.options.kafka_version, self.options.cache_dir)
        java = shutil.which("java")
        if java is None:
            raise BrokerError("'java' (17 or newer) is not on PATH")
        single = len(self.nodes) == 1
        heap = self.options.heap or ("512m" if single else "256m")
        # A cluster's JVMs boot together on the same few cores: the C1 compiler alone about
        # halves their start-up time there, and a test cluster needs no peak throughput.
        compilers = [] if single else ["-XX:TieredStopAtLevel=1"]
        home = node.directory
        return [
            java, f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            *compilers, "-Djava.awt.headless=true", f"-Dkafka.logs.dir={home / 'logs'}",
            f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
            f"-Dlog4j.configuration=file:{home / 'log4j.properties'}",
            "-cp", f"{libs}/*",
        ]  # fmt: skip

    # -- readiness ----------------------------------------------------------------------------

    async def _wait_ready(self, waiting: Iterable[KafkaNode]) -> None:
        """Until every node in ``waiting`` answers metadata and the cluster lists all nodes."""
        waiting = list(waiting)
        deadline = time.monotonic() + self.options.ready_timeout_s
        last_error: Exception | str | None = None
        while time.monotonic() < deadline:
            for node in waiting:
                if node.process is not None and node.process.poll() is not None:
                    raise BrokerError(
                        f"node {node.node_id} exited with {node.process.returncode}\n"
                        f"{node.logs(8000)}"
                    )
            ports = [n.address.ports[self.options.listeners[0].name] for n in waiting]
            if all(_port_open(port) for port in ports):  # keeps aiokafka from logging refusals
                try:
                    brokers = await _brokers(",".join(f"127.0.0.1:{p}" for p in ports))
                    if brokers >= len(self.nodes):
                        return
                    last_error = f"{brokers} of {len(self.nodes)} brokers registered"
                except Exception as error:
                    last_error = error
            await asyncio.sleep(0.2)  # polling interval while the JVMs boot, not synchronisation
        raise BrokerError(
            f"the cluster was not ready within {self.options.ready_timeout_s}s "
            f"({last_error!r})\n{self.logs()}"
        )


async def _brokers(bootstrap: str) -> int:
    """How many brokers the cluster reports, asked through ``bootstrap``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        return len((await admin.describe_cluster())["brokers"])
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
