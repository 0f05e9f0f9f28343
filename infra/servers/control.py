"""``up``, ``down`` and ``status`` for all three local servers at once.

Reads the settings; starts, probes and stops the servers defined in the sibling modules. ``up``
either leaves every server answering or leaves none that it started running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from config.settings import Settings
from infra.servers.cassandra import CassandraServer
from infra.servers.kafka import KafkaServer
from infra.servers.maven import resolve_jars
from infra.servers.pipeline import pipeline_processes
from infra.servers.process import LocalServer, ServerError, Started
from infra.servers.seaweed import SeaweedServer


def local_servers(settings: Settings) -> list[LocalServer]:
    """The three servers, configured from ``settings``."""
    run_dir = settings.path(settings.run_dir)
    return [
        KafkaServer(settings.kafka, run_dir),
        CassandraServer(settings.cassandra, run_dir),
        SeaweedServer(settings.s3, run_dir),
    ]


@dataclass(frozen=True)
class ServerStatus:
    """What ``status`` reports about one server."""

    name: str
    endpoint: str
    pid: int | None
    resident_bytes: int | None
    answering: bool
    detail: str


async def up(settings: Settings, servers: Sequence[LocalServer] | None = None) -> list[Started]:
    """Start every server that is not running, in parallel, and wait until each answers.

    Raises:
        ServerError: One or more servers failed; every server this call started is stopped
            again, and the message gathers each failure with the end of its log.
    """
    servers = servers if servers is not None else local_servers(settings)
    for jvm in ("kafka", "cassandra"):
        if any(s.name == jvm for s in servers):
            await asyncio.to_thread(resolve_jars, jvm)
    results = await asyncio.gather(*(s.start() for s in servers), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        started = [
            s
            for s, r in zip(servers, results, strict=True)
            if isinstance(r, Started) and not r.already_running
        ]
        await asyncio.gather(*(s.stop() for s in started))
        raise ServerError(
            "\n\n".join(
                str(r) if isinstance(r, ServerError) else f"{s.name}: {type(r).__name__}: {r}"
                for s, r in zip(servers, results, strict=True)
                if isinstance(r, BaseException)
            )
        )
    return [r for r in results if isinstance(r, Started)]


async def down(settings: Settings, servers: Sequence[LocalServer] | None = None) -> list[str]:
    """Stop every running server; returns the names of those that were running."""
    if servers is None:
        # The worker and query node first: they would only log errors once the servers go.
        processes = pipeline_processes(settings)
        stopped_first = await asyncio.gather(*(p.stop() for p in processes))
        names = [p.name for p, was in zip(processes, stopped_first, strict=True) if was]
        return names + await down(settings, local_servers(settings))
    stopped = await asyncio.gather(*(s.stop() for s in servers))
    return [s.name for s, was in zip(servers, stopped, strict=True) if was]


async def status(settings: Settings) -> list[ServerStatus]:
    """Whether each server runs, its memory, and whether it answers a request right now."""
    report = []
    for server in local_servers(settings):
        pid = server.running_pid()
        if pid is None and not server.accepting():
            report.append(ServerStatus(server.name, server.endpoint, None, None, False, "stopped"))
            continue
        try:
            await asyncio.wait_for(server.probe(), timeout=10)
        except Exception as exc:  # noqa: BLE001  # reported, not raised
            answering, detail = False, f"{type(exc).__name__}: {exc}".splitlines()[0]
        else:
            answering, detail = True, "ok" if pid else "answering (not started by spotrec)"
        report.append(
            ServerStatus(
                server.name, server.endpoint, pid, server.resident_memory_bytes(), answering, detail
            )
        )
    return report
