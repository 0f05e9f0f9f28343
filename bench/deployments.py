"""Isolated deployments of the pipeline for benchmarks: settings, worker processes, clean-up.

Reads the settings and the worker logs it writes; creates a Cassandra keyspace, an S3 bucket,
topics under a prefix and a consumer group of a run's own, and a run folder; starts
``spotrec worker`` processes with the matching ``SPOTREC_*`` environment, each writing its
output to a log file in the run folder; at the end drops the keyspace, deletes the run's topics
and empties and deletes its bucket. Nothing outside the run's own names is touched.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from config.settings import Settings
from stores.migrations import migrate
from stores.objects import ensure_bucket
from streams.names import AUDIO_STORED, PLAYLISTS, TRACK_DISCOVERED
from streams.provision import ensure_topics
from streams.redrive import read_committed
from tests.pipelines import remove_deployment, run_scoped, start_worker, until
from tests.processes import terminate
from tests.worker_logs import Worker

T = TypeVar("T")

#: The topics whose partitions the workers split between them; a worker runs its share once
#: the newest assignment in its log is followed by Faust's "Worker ready".
AGENT_TOPICS = (PLAYLISTS, TRACK_DISCOVERED, AUDIO_STORED)
#: Seconds a worker gets to stop on SIGTERM (leaving the group cleanly) before SIGKILL.
STOP_GRACE_S = 60.0


class BenchError(RuntimeError):
    """A deployment did not get where the benchmark needs it; the message has the logs' tails."""


@dataclass(frozen=True)
class Deployment:
    """A run's settings (for in-process clients) and environment (for ``spotrec`` processes)."""

    run: str
    folder: Path
    settings: Settings
    env: dict[str, str]

    def with_model(self, model: str) -> Deployment:
        """The same deployment with another embedding model (``SPOTREC_MODEL_VERSION``)."""
        settings = self.settings.model_copy(
            update={"model": self.settings.model.model_copy(update={"version": model})}
        )
        return Deployment(
            self.run, self.folder, settings, {**self.env, "SPOTREC_MODEL_VERSION": model}
        )


@asynccontextmanager
async def isolated_deployment(
    base: Settings,
    *,
    run: str,
    folder: Path,
    local_roots: Iterable[Path],
    interval_s: float,
    model: str,
) -> AsyncIterator[Deployment]:
    """A deployment of the run's own, created on entry and removed on exit.

    Args:
        base: The configured settings, with the servers answering.
        run: The run's name (see :func:`tests.pipelines.new_run_id`): keyspace, bucket, topic
            prefix, app id.
        folder: The run folder: worker data, logs, the indexer's work folder, snapshot cache.
        local_roots: Folders ``local:`` playlists may be read from.
        interval_s: Seconds between the indexer's checks (``SPOTREC_INDEX_INTERVAL_S``).
        model: The embedding model name (``SPOTREC_MODEL_VERSION``).
    """
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    roots = tuple(local_roots)
    scoped, env = run_scoped(base, run, folder)
    settings = scoped.model_copy(
        update={
            "model": base.model.model_copy(update={"version": model}),
            "audio": base.audio.model_copy(update={"local_roots": roots}),
            "index": scoped.index.model_copy(
                update={"interval_s": interval_s, "rebuild_after_s": 0.0}
            ),
        }
    )
    env.update(
        {
            "SPOTREC_MODEL_VERSION": model,
            "SPOTREC_AUDIO_LOCAL_ROOTS": json.dumps([str(root) for root in roots]),
            "SPOTREC_INDEX_INTERVAL_S": str(interval_s),
            # The benchmark measures the indexer at every change, as before the cadence.
            "SPOTREC_INDEX_REBUILD_AFTER_S": "0",
        }
    )
    try:
        await migrate(settings.cassandra)
        await ensure_bucket(settings.s3)
        # Created once here rather than raced for by workers starting together.
        await ensure_topics(settings)
        yield Deployment(run, folder, settings, env)
    finally:
        await remove_deployment(settings, run)


@dataclass
class BenchWorker(Worker):
    """A worker, and when it was started (its start-up time is reported apart)."""

    started: float = 0.0


def tails(logs: Iterable[Path]) -> str:
    """The last lines of each log, for an error message."""
    return "".join(
        f"\n--- {log.name} ---\n{log.read_bytes().decode(errors='replace')[-4000:]}"
        for log in logs
        if log.exists()
    )


@asynccontextmanager
async def running_workers(d: Deployment, names: Iterable[str]) -> AsyncIterator[list[BenchWorker]]:
    """Start one worker per name; stop them all (SIGTERM, then SIGKILL) on exit.

    Each has its own data folder and no web port, as workers sharing a host must.
    """
    workers: list[BenchWorker] = []
    try:
        for name in names:
            log = d.folder / f"worker-{name}.log"
            process = await start_worker(d.env, d.folder / f"worker-{name}", log)
            workers.append(BenchWorker(name, process, log, time.monotonic()))
        yield workers
    finally:
        await asyncio.gather(*(terminate(w.process, STOP_GRACE_S) for w in workers))


def _split(d: Deployment, workers: list[BenchWorker]) -> bool:
    """Whether ``workers`` run disjoint, non-empty shares of every agent topic's partitions."""
    assignments = [w.assignment() for w in workers]
    every = set(range(d.settings.kafka.topic_partitions))
    for name in AGENT_TOPICS:
        topic = d.settings.kafka.topic(name)
        shares = [a.get(topic, set()) if a else set() for a in assignments]
        if not all(shares) or set().union(*shares) != every or sum(map(len, shares)) != len(every):
            return False
    return True


async def joined(d: Deployment, workers: list[BenchWorker], deadline_s: float) -> float:
    """Wait until the workers share every partition and run their agents.

    Returns:
        Seconds since the first of them was started: their start-up time.
    """
    logs = [w.log for w in workers]

    async def check() -> bool:
        for w in workers:
            if w.process.returncode is not None:
                msg = f"worker {w.name} exited with status {w.process.returncode}{tails(logs)}"
                raise BenchError(msg)
        return _split(d, workers)

    await until(check, deadline_s, "the workers to share the partitions", logs, 0.2)
    return time.monotonic() - min(w.started for w in workers)


async def read_topic(settings: Settings, name: str) -> list[Any]:
    """Every record of one of the pipeline's topics, up to its end now (aiokafka records)."""
    return list(await read_committed(settings.kafka.bootstrap, settings.kafka.topic(name)))
