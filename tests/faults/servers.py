"""Kafka, Cassandra and SeaweedFS of a fault run's own, which it may kill and start again.

Reads the configured settings; starts the three servers with a run folder and ports of their own
(never the shared ones: the shared servers are never touched), kills one with SIGKILL to its
process group, starts it again on the same data, and stops them all at the end. Writes only
under the given run folder.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from config.settings import Settings
from infra.servers import up
from infra.servers.control import local_servers
from infra.servers.process import LocalServer
from stores.cassandra import CassandraSession
from stores.migrations import migrate

#: The one keyspace of the fault runs, emptied before each (creating one takes seconds).
KEYSPACE = "faults"
#: The servers a fault run may kill, by the name of their folder.
SERVER_NAMES = ("kafka", "cassandra", "seaweed")
#: SeaweedFS binds gRPC ports 10000 above its HTTP ports; internal ports are base + 0..3.
_SEAWEED_SPAN = (0, 1, 2, 3)
_GRPC_OFFSET = 10000


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_block(taken: set[int], offsets: tuple[int, ...]) -> int:
    """A base port such that base + each offset (and its gRPC twin) is free and not taken."""
    for _ in range(1000):
        base = random.randrange(30000, 50000 - max(offsets))
        ports = {base + o for o in offsets} | {base + o + _GRPC_OFFSET for o in offsets}
        if not ports & taken and all(_free(p) for p in ports) and base + _GRPC_OFFSET < 65536:
            taken |= ports
            return base
    msg = "no free block of ports found for the dedicated servers"
    raise RuntimeError(msg)


def dedicated_settings(base: Settings, run_dir: Path) -> Settings:
    """``base`` with a run folder and free ports of its own for all three servers."""
    taken: set[int] = set()

    def one() -> int:
        return _port_block(taken, (0,))

    return base.model_copy(
        update={
            "run_dir": run_dir,
            "kafka": base.kafka.model_copy(
                update={"port": one(), "controller_port": one(), "topic_prefix": ""}
            ),
            "cassandra": base.cassandra.model_copy(
                # A smaller heap than a development node: it holds a few hundred rows.
                update={
                    "port": one(),
                    "storage_port": one(),
                    "heap": "768m",
                    "keyspace": KEYSPACE,
                }
            ),
            "s3": base.s3.model_copy(
                update={
                    "port": one(),
                    "internal_port_base": _port_block(taken, _SEAWEED_SPAN),
                    "endpoint_url": None,
                }
            ),
        }
    )


class DedicatedServers:
    """The three servers of one fault run."""

    def __init__(self, settings: Settings, worker_env: dict[str, str] | None = None) -> None:
        self.settings = settings
        #: More ``SPOTREC_*`` variables for every process of the runs (e.g. retry settings).
        self.worker_env = dict(worker_env or {})
        self.servers: dict[str, LocalServer] = {s.name: s for s in local_servers(settings)}

    def env(self) -> dict[str, str]:
        """The ``SPOTREC_*`` variables that point a ``spotrec`` process at these servers."""
        s = self.settings
        return {
            "SPOTREC_KAFKA_HOST": s.kafka.host,
            "SPOTREC_KAFKA_PORT": str(s.kafka.port),
            "SPOTREC_CASSANDRA_HOST": s.cassandra.host,
            "SPOTREC_CASSANDRA_PORT": str(s.cassandra.port),
            "SPOTREC_S3_HOST": s.s3.host,
            "SPOTREC_S3_PORT": str(s.s3.port),
            **self.worker_env,
        }

    async def start(self) -> None:
        """Start all three, wait until each answers, and create the keyspace."""
        await up(self.settings, list(self.servers.values()))
        await migrate(self.settings.cassandra)

    async def empty_keyspace(self) -> None:
        """Truncate every table of the keyspace but the record of its migrations."""
        ks = self.settings.cassandra.keyspace
        async with CassandraSession(self.settings.cassandra) as db:
            rows = await db.execute(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", [ks]
            )
            for row in rows:
                if row["table_name"] != "schema_migrations":
                    await db.execute(f"TRUNCATE {ks}.{row['table_name']}")

    async def kill(self, name: str) -> float:
        """SIGKILL a server's whole process group, as a crash or a lost machine would.

        Returns:
            When it was killed (``time.time()``).
        """
        server = self.servers[name]
        pid = server.running_pid()
        if pid is None:
            msg = f"{name} is not running"
            raise RuntimeError(msg)
        os.killpg(pid, signal.SIGKILL)
        killed_at = time.time()
        deadline = time.monotonic() + 30
        while server.running_pid() is not None or server.accepting():
            if time.monotonic() > deadline:
                msg = f"{name} (pid {pid}) still runs 30 s after SIGKILL"
                raise RuntimeError(msg)
            await asyncio.sleep(0.05)
        return killed_at

    async def restart(self, name: str) -> float:
        """Start a killed server again on its data; returns when it answered (``time.time()``)."""
        await self.servers[name].start()
        return time.time()

    async def stop(self) -> None:
        """Stop every server still running."""
        await asyncio.gather(*(s.stop() for s in self.servers.values()))


@asynccontextmanager
async def dedicated_servers(
    base: Settings, run_dir: Path, worker_env: dict[str, str] | None = None
) -> AsyncIterator[DedicatedServers]:
    """Start the three servers under ``run_dir`` on free ports; stop them on exit.

    ``worker_env`` is added to the environment of every process the runs start.
    """
    servers = DedicatedServers(dedicated_settings(base, run_dir), worker_env)
    try:
        await servers.start()
        yield servers
    finally:
        await servers.stop()
