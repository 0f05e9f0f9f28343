"""Cold and warm start time and resident memory of each local server, one at a time.

Reads the settings for heap sizes; starts each server on free ports in a temporary run
directory (so the servers in use are not disturbed), first on empty storage (cold), then again
on the storage the first run left (warm). Prints a table; writes nothing else.

Run: ``.venv/bin/python bench/servers.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import tempfile
from pathlib import Path

from config.settings import Settings, load_settings
from infra.servers.cassandra import CassandraServer
from infra.servers.kafka import KafkaServer
from infra.servers.maven import resolve_jars
from infra.servers.process import LocalServer
from infra.servers.seaweed import SeaweedServer

#: Seconds to let a server settle after it first answers before reading its memory.
SETTLE_S = 5.0


def _free_base(size: int) -> int:
    def free(port: int) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) != 0

    while True:
        base = random.randrange(40000, 49000)
        if all(free(p) and free(p + 10000) for p in range(base, base + size)):
            return base


def _server(kind: str, settings: Settings, run_dir: Path) -> LocalServer:
    base = _free_base(6)
    if kind == "kafka":
        update = {"port": base, "controller_port": base + 1}
        return KafkaServer(settings.kafka.model_copy(update=update), run_dir)
    if kind == "cassandra":
        update = {"port": base, "storage_port": base + 1}
        return CassandraServer(settings.cassandra.model_copy(update=update), run_dir)
    update = {"port": base, "internal_port_base": base + 1}
    return SeaweedServer(settings.s3.model_copy(update=update), run_dir)


async def _measure(kind: str, settings: Settings) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
        server = _server(kind, settings, Path(tmp))
        cold = await server.start()
        await asyncio.sleep(SETTLE_S)
        rss = (server.resident_memory_bytes() or 0) / 2**20
        await server.stop()
        warm = await server.start()
        await server.stop()
    return cold.seconds, warm.seconds, rss


async def main() -> None:
    """Measure every server ``--repeat`` times and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings()
    for jvm in ("kafka", "cassandra"):
        resolve_jars(jvm)
    print(f"{'server':<10} {'cold start s':>13} {'warm start s':>13} {'RSS MiB':>9}  heap")
    heaps = {"kafka": settings.kafka.heap, "cassandra": settings.cassandra.heap, "seaweed": "-"}
    for kind in ("kafka", "cassandra", "seaweed"):
        runs = [await _measure(kind, settings) for _ in range(args.repeat)]
        cold, warm, rss = (statistics.median(r[i] for r in runs) for i in range(3))
        print(f"{kind:<10} {cold:>13.1f} {warm:>13.1f} {rss:>9.0f}  {heaps[kind]}")
    print(
        f"(median of {args.repeat}; start = launch until a real request succeeds; "
        f"RSS read {SETTLE_S:.0f} s after the first answer)"
    )


if __name__ == "__main__":
    asyncio.run(main())
