"""Two ``spotrec worker`` processes share one deployment's work through the consumer group.

Runs real worker processes (each with its own data directory, no web port) on the real Kafka,
Cassandra and S3, with a keyspace, bucket, topic prefix and consumer group of each test's own,
against the fake Spotify and Deezer servers. Ingests the fake Spotify playlist and the local
folder, then reads the result back: the workers' logs, Cassandra's ``embeddings`` table and the
snapshot an in-process query node serves. One test lets both workers finish; the others stop one
mid-ingest, with SIGTERM and with SIGKILL, and check that the survivor finishes the work.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from config.settings import Settings
from features.versions import model_version_of
from stores.cassandra import CassandraSession
from streams.names import AUDIO_STORED, PLAYLISTS, TRACK_DISCOVERED
from streams.provision import ensure_topics
from tests.fakes.catalogue import Catalogue, build_catalogue
from tests.fakes.deezer_api import FakeDeezer
from tests.fakes.spotify_api import FakeSpotify
from tests.pipelines import (
    catalogue_track_ids,
    isolated_deployment,
    new_run_id,
    produce_playlists,
    remove_deployment,
    start_worker,
    until,
)
from tests.processes import terminate
from tests.worker_logs import Worker

#: Both workers load TensorFlow and the weights, sharing two cores.
INGEST_DEADLINE_S = 150.0
#: Joining the group: importing the agents (TensorFlow included) and the first rebalance.
JOIN_DEADLINE_S = 90.0
#: A killed worker's partitions wait this long for Kafka to give up on it (Faust's default, 60 s,
#: would dominate the test); heartbeats every second keep live workers well inside it.
FAST_FAILOVER_ENV = {
    "SPOTREC_WORKER_SESSION_TIMEOUT_S": "10",
    "SPOTREC_WORKER_HEARTBEAT_INTERVAL_S": "1",
}


@dataclass
class Deployment:
    """Two workers, a query node and the settings they share."""

    settings: Settings
    env: dict[str, str]
    catalogue: Catalogue
    workers: list[Worker]
    api: TestClient[web.Request, web.Application]

    @property
    def logs(self) -> list[Path]:
        """Every worker's log, for failure messages."""
        return [w.log for w in self.workers]

    @property
    def expected(self) -> set[str]:
        """The tracks the Spotify playlist and the local folder yield with audio."""
        return catalogue_track_ids(self.catalogue, deezer=False)

    async def ingest(self) -> None:
        """Send the Spotify playlist and the local folder."""
        await produce_playlists(
            self.env,
            [self.catalogue.spotify_playlist_id, f"local:{self.catalogue.audio_dir / 'clips'}"],
        )

    async def embedded_ids(self) -> list[str]:
        """Track ids of Cassandra's vectors for the configured model, one per row."""
        ks = self.settings.cassandra.keyspace
        async with CassandraSession(self.settings.cassandra) as db:
            rows = await db.execute(f"SELECT model_version, track_id FROM {ks}.embeddings")
        version = model_version_of(self.settings.model)
        return [row["track_id"] for row in rows if row["model_version"] == version]

    async def indexed(self) -> dict[str, Any] | None:
        """The query node's track listing once it holds every expected track, else None."""
        response = await self.api.get("/tracks", params={"limit": 1000})
        if response.status != 200:
            return None
        body: dict[str, Any] = await response.json()
        return body if {t["track_id"] for t in body["tracks"]} >= self.expected else None


@asynccontextmanager
async def _deployment(
    servers: Settings, tmp: Path, worker_env: dict[str, str]
) -> AsyncIterator[Deployment]:
    run = new_run_id("scale")
    catalogue = build_catalogue()
    async with FakeSpotify(catalogue) as spotify, FakeDeezer(catalogue) as deezer:
        settings, env = await isolated_deployment(
            servers, run=run, tmp=tmp, spotify=spotify, deezer=deezer, worker_env=worker_env
        )
        # Created once here rather than raced for by both workers at start.
        await ensure_topics(settings)
        workers: list[Worker] = []
        try:
            for name in ("a", "b"):
                log = tmp / f"worker-{name}.log"
                process = await start_worker(env, tmp / f"worker-{name}", log)
                workers.append(Worker(name, process, log))
            async with TestClient(TestServer(create_app(settings))) as api:
                yield Deployment(settings, env, catalogue, workers, api)
        finally:
            for worker in workers:
                await terminate(worker.process)
            await remove_deployment(settings, run)


@pytest.fixture
async def deployment(servers: Settings, tmp_path: Path) -> AsyncIterator[Deployment]:
    """Two workers with Kafka's default session timeout: no worker is killed."""
    async with _deployment(servers, tmp_path, {}) as d:
        yield d


@pytest.fixture
async def fast_failover(servers: Settings, tmp_path: Path) -> AsyncIterator[Deployment]:
    """Two workers that notice a dead member within seconds."""
    async with _deployment(servers, tmp_path, FAST_FAILOVER_ENV) as d:
        yield d


def _split(d: Deployment, workers: list[Worker]) -> bool:
    """Whether ``workers`` run disjoint, non-empty shares of every partition of every topic an
    agent reads.
    """
    assignments = [w.assignment() for w in workers]
    every = set(range(d.settings.kafka.topic_partitions))
    for name in (PLAYLISTS, TRACK_DISCOVERED, AUDIO_STORED):
        topic = d.settings.kafka.topic(name)
        shares = [a.get(topic, set()) if a else set() for a in assignments]
        if not all(shares) or set().union(*shares) != every or sum(map(len, shares)) != len(every):
            return False
    return True


async def _both_joined(d: Deployment) -> None:
    """Wait until the workers have split the partitions between them and run their agents."""

    async def joined() -> bool:
        for worker in d.workers:
            assert worker.process.returncode is None, f"worker {worker.name} exited"
        return _split(d, d.workers)

    await until(joined, JOIN_DEADLINE_S, "both workers to share the partitions", d.logs)


async def _check_every_track_once(d: Deployment) -> dict[str, Any]:
    listing = await until(d.indexed, INGEST_DEADLINE_S, "every track indexed", d.logs)
    ids = [t["track_id"] for t in listing["tracks"]]
    assert sorted(ids) == sorted(d.expected), "the snapshot holds exactly the expected tracks"
    assert listing["total"] == len(d.expected)
    rows = await d.embedded_ids()
    assert sorted(rows) == sorted(d.expected), "one vector row per track for the model version"
    return listing


async def test_two_workers_share_the_work(deployment: Deployment) -> None:
    d = deployment
    await _both_joined(d)
    await d.ingest()
    await _check_every_track_once(d)
    counts = {w.name: w.embedded() for w in d.workers}
    assert all(counts.values()), f"each worker embedded tracks: {counts}"
    # Each partition had one owner throughout, so no track was embedded twice.
    assert sum(counts.values()) == len(d.expected), counts


async def _stop_one_mid_ingest(d: Deployment, stop: Callable[[Worker], Any]) -> Worker:
    """Ingest; once some but not all tracks are embedded, stop worker ``a``; return ``b``."""
    await _both_joined(d)
    await d.ingest()

    async def some_embedded() -> int:
        return len(await d.embedded_ids())

    done = await until(some_embedded, INGEST_DEADLINE_S, "the first vectors", d.logs, 0.2)
    assert done < len(d.expected), "the ingest ended before a worker could be stopped"
    victim, survivor = d.workers
    await stop(victim)
    return survivor


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_a_stopped_worker_loses_no_track(fast_failover: Deployment, how: str) -> None:
    d = fast_failover
    stopped_at: list[int] = []

    async def stop(victim: Worker) -> None:
        survivor = d.workers[1]
        stopped_at.append(survivor.size())
        if how == "sigterm":
            # A clean stop: the worker leaves the group, so its partitions move at once.
            status = await terminate(victim.process, grace_s=30.0)
            assert status != -signal.SIGKILL, "the worker did not stop on SIGTERM"
        else:
            victim.process.kill()
            assert await victim.process.wait() == -signal.SIGKILL

    survivor = await _stop_one_mid_ingest(d, stop)
    await _check_every_track_once(d)
    assert _split(d, [survivor]), "the survivor runs every partition"
    assert survivor.embedded(stopped_at[0]) > 0, "the survivor embedded nothing after the stop"
    assert survivor.process.returncode is None, "the survivor kept running"
