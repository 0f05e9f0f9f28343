"""The fresh tier's latency: a ``features-extracted`` record to ``/recommend`` serving the track.

Reads the settings and needs Kafka, Cassandra and S3 answering. In a deployment of its own
(keyspace, bucket, topics; removed at the end) it publishes one snapshot of ``catalogue``
synthetic tracks (vectors of the configured model's length, built by the project's builder),
starts an in-process query node, and then produces ``records`` ``features-extracted.v1`` records
for new track ids, ``rate`` a second, each vector near one catalogue track (cosine about 0.9:
its nearest neighbour, not a copy). For each record it measures the time from the record's Kafka
timestamp to the moment ``/recommend`` both knows the new track (200 for its id) and returns it
among the catalogue track's ten neighbours, polling every :data:`POLL_S`. No worker runs, so no
snapshot is built during the measurement: whatever the snapshot cadence (the indexer's
``SPOTREC_INDEX_REBUILD_AFTER_S``, 600 s by default), the latency is the fresh tier's. The
baseline, measured in the same run on the same records, is Kafka alone: a plain consumer of the
topic (no group, like the query node's) receiving each record. Writes nothing else.

Run from the repository root: ``.venv/bin/python -m bench.fresh [--records 100] [--rate 5]``,
or as part of ``bench/pipeline.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from api.app import create_app
from api.keys import fresh_key, holder_key
from bench.deployments import BenchError, isolated_deployment
from config.settings import Settings, load_settings
from features.versions import model_spec, model_version_of
from schemas.features import FeaturesExtractedV1
from snapshots.builder import TrackVector, write_snapshot
from snapshots.store import SnapshotStore
from stores.objects import ObjectStore
from streams.kafka_clients import started
from streams.names import FEATURES_EXTRACTED
from streams.partitions import partitions_of
from tests.pipelines import new_run_id

Client = TestClient[web.Request, web.Application]
F32 = npt.NDArray[np.float32]

#: Seconds between two looks at ``/recommend`` for one record: the figures' resolution.
POLL_S = 0.05
#: Records checked at once: each check is two ``/recommend`` requests to the node, which runs in
#: this process, so unbounded polling of many pending records would measure the polling itself.
CHECKS_AT_ONCE = 4
#: Seconds a record may take to be served before the run fails.
DEADLINE_S = 60.0
#: Neighbours asked of the catalogue track the new one is near.
K = 10
#: The issue's target for the p95.
TARGET_S = 5.0
#: Defaults: records per second, and tracks in the snapshot.
RATE = 5.0
CATALOGUE = 2000


@dataclass
class FreshLatency:
    """What one run measured, in seconds from each record's Kafka timestamp."""

    records: int
    catalogue: int
    rate: float
    dim: int
    model_version: str
    served_s: list[float] = field(default_factory=list)
    kafka_s: list[float] = field(default_factory=list)
    #: The snapshot served at the start and at the end (the same: no rebuild in between).
    snapshots: tuple[str, str] = ("", "")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation, as NumPy computes it."""
    return float(np.quantile(np.asarray(values, dtype=np.float64), q))


def _catalogue(count: int, dim: int, rng: np.random.Generator) -> list[TrackVector]:
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    return [TrackVector(f"bench:{i:06d}", vectors[i], name=f"track {i}") for i in range(count)]


async def _publish(settings: Settings, folder: Path, tracks: list[TrackVector]) -> str:
    built = await asyncio.to_thread(
        write_snapshot,
        folder,
        tracks,
        model_version=model_version_of(settings.model),
        trees=settings.index.trees,
        source_mark=len(tracks),
    )
    async with ObjectStore(settings.s3) as objects:
        return await SnapshotStore(objects).publish(built)


async def _served(api: Client, new_id: str, near_id: str) -> bool:
    """Whether ``/recommend`` knows ``new_id`` and lists it among ``near_id``'s neighbours."""
    async with api.get("/recommend", params={"track_id": new_id, "k": "1"}) as own:
        if own.status != 200:
            return False
    async with api.get("/recommend", params={"track_id": near_id, "k": str(K)}) as other:
        if other.status != 200:
            return False
        body = await other.json()
    return any(result["track_id"] == new_id for result in body["results"])


async def _until_served(api: Client, new_id: str, near_id: str, checks: asyncio.Semaphore) -> float:
    """Poll until served; returns the wall-clock time it first was."""
    end = time.monotonic() + DEADLINE_S
    while True:
        async with checks:
            if await _served(api, new_id, near_id):
                break
        if time.monotonic() > end:
            msg = f"{new_id} not served as {near_id}'s neighbour within {DEADLINE_S:.0f} s"
            raise BenchError(msg)
        await asyncio.sleep(POLL_S)
    return time.time()


class _KafkaWatch:
    """A plain consumer of the topic (no group): when each record reached a client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.kafka.topic(FEATURES_EXTRACTED)
        self.received: dict[str, float] = {}
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka.bootstrap, group_id=None, enable_auto_commit=False
        )

    async def start(self) -> None:
        await started(self._consumer)
        partitions = await partitions_of(self.settings.kafka.bootstrap, self.topic)
        assigned = [TopicPartition(self.topic, p) for p in partitions]
        self._consumer.assign(assigned)
        await self._consumer.seek_to_end(*assigned)
        for tp in assigned:  # resolve the end positions now, before anything is produced
            await self._consumer.position(tp)

    async def run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=1000)
            now = time.time()
            for messages in batches.values():
                for message in messages:
                    if message.key is not None:
                        self.received.setdefault(message.key.decode(), now)

    async def stop(self) -> None:
        await self._consumer.stop()


async def measure(
    base: Settings, folder: Path, *, records: int, rate: float, catalogue: int, seed: int = 7
) -> FreshLatency:
    """Run the measurement in a deployment of its own (see the module's docstring)."""
    run = new_run_id("benchfresh")
    rng = np.random.default_rng(seed)
    async with isolated_deployment(
        base,
        run=run,
        folder=folder / run,
        local_roots=[],
        # No worker runs: the indexer never ticks. The configured cadence is kept anyway.
        interval_s=base.index.interval_s,
        model=base.model.version,
    ) as d:
        settings = d.settings
        version = model_version_of(settings.model)
        dim = model_spec(version).dim
        result = FreshLatency(records, catalogue, rate, dim, version)
        tracks = _catalogue(catalogue, dim, rng)
        await _publish(settings, d.folder / "build", tracks)
        watch = _KafkaWatch(settings)
        async with TestClient(TestServer(create_app(settings))) as api:
            await asyncio.wait_for(api.app[fresh_key].assigned.wait(), DEADLINE_S)
            first = await _snapshot(api)
            await watch.start()
            watching = asyncio.create_task(watch.run())
            producer = await started(AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap))
            pollers: list[tuple[str, float, asyncio.Task[float]]] = []
            try:
                checks = asyncio.Semaphore(CHECKS_AT_ONCE)
                begun = time.monotonic()
                for i in range(records):
                    # On a fixed schedule, whatever each send took.
                    await asyncio.sleep(max(0.0, begun + i / rate - time.monotonic()))
                    near = tracks[int(rng.integers(catalogue))]
                    noise = rng.standard_normal(dim).astype(np.float32)
                    vector = near.vector + 0.5 * noise * (
                        np.linalg.norm(near.vector) / np.sqrt(dim)
                    )
                    new_id = f"benchnew:{i:06d}"
                    record = FeaturesExtractedV1(
                        track_id=new_id,
                        model_version=version,
                        embedding=[float(v) for v in vector],
                        audio_source="bench",
                        audio_sha256=f"{i:064x}",
                        tags=[["rock", 0.5]],
                        extracted_at=time.time(),
                    )
                    sent = await producer.send_and_wait(
                        watch.topic, record.dumps(), key=new_id.encode()
                    )
                    produced = sent.timestamp / 1000
                    task = asyncio.create_task(_until_served(api, new_id, near.track_id, checks))
                    pollers.append((new_id, produced, task))
                for new_id, produced, task in pollers:
                    result.served_s.append(await task - produced)
                    result.kafka_s.append(await _received(watch, new_id) - produced)
            finally:
                for _, _, task in pollers:
                    task.cancel()
                watching.cancel()
                await producer.stop()
                await watch.stop()
            result.snapshots = (first, await _snapshot(api))
            fresh = len(api.app[holder_key].fresh)
            if fresh != records:
                msg = f"the fresh segment holds {fresh} tracks, not the {records} produced"
                raise BenchError(msg)
        return result


async def _received(watch: _KafkaWatch, track_id: str) -> float:
    end = time.monotonic() + DEADLINE_S
    while track_id not in watch.received:
        if time.monotonic() > end:
            msg = f"the plain consumer never received {track_id}"
            raise BenchError(msg)
        await asyncio.sleep(POLL_S)
    return watch.received[track_id]


async def _snapshot(api: Client) -> str:
    async with api.get("/readyz") as response:
        if response.status != 200:
            msg = f"the query node is not ready: {await response.text()}"
            raise BenchError(msg)
        return str((await response.json())["snapshot"])


def report_lines(r: FreshLatency) -> list[str]:
    """The figures, one line each."""
    served, kafka = r.served_s, r.kafka_s
    verdict = "meets" if percentile(served, 0.95) <= TARGET_S else "MISSES"
    same = (
        "the same snapshot served throughout"
        if r.snapshots[0] == r.snapshots[1]
        else (f"snapshot changed from {r.snapshots[0]} to {r.snapshots[1]}")
    )
    return [
        f"{r.records} new tracks, {r.rate:g} records/s, over a {r.catalogue}-track snapshot of"
        f" {r.model_version} ({r.dim}-d); {same}, no indexer running",
        f"features-extracted record -> /recommend knows the track and returns it among the"
        f" neighbours (k={K}) of the track it is near: p50 {percentile(served, 0.5):.2f} s,"
        f" p95 {percentile(served, 0.95):.2f} s, max {max(served):.2f} s"
        f" (each polled every {POLL_S:g} s, {CHECKS_AT_ONCE} at once);"
        f" target p95 <= {TARGET_S:g} s: {verdict}",
        f"baseline, Kafka alone (a plain consumer receiving the same records): p50"
        f" {percentile(kafka, 0.5):.2f} s, p95 {percentile(kafka, 0.95):.2f} s, max"
        f" {max(kafka):.2f} s; fresh tier / Kafka at the median:"
        f" {statistics.median(served) / max(statistics.median(kafka), 1e-3):.1f}x",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The query node's fresh-tier latency.")
    parser.add_argument("--records", type=int, default=100, help="new tracks produced")
    parser.add_argument("--rate", type=float, default=RATE, help="records per second")
    parser.add_argument("--catalogue", type=int, default=CATALOGUE, help="tracks in the snapshot")
    args = parser.parse_args(argv)
    if args.records < 1 or args.rate <= 0 or args.catalogue < K + 1:
        parser.error("--records >= 1, --rate > 0 and --catalogue > 10 are needed")
    with tempfile.TemporaryDirectory(prefix="bench-fresh-") as tmp:
        result = asyncio.run(
            measure(
                load_settings(),
                Path(tmp),
                records=args.records,
                rate=args.rate,
                catalogue=args.catalogue,
            )
        )
    print("fresh tier:")
    for line in report_lines(result):
        print(f"   {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
