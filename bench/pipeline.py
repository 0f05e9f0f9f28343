"""Throughput, indexing latency and reindex time of the whole pipeline on the local servers.

Reads the settings and needs Kafka, Cassandra and S3 answering (``spotrec up``). Writes N
distinct generated 30 s WAV clips (and a few warm-up clips) into a temporary run folder and
ingests them as ``local:`` playlists with real ``spotrec worker`` processes. Every deployment
has a keyspace, bucket, topic prefix, consumer group and run folder of its own, all removed at
the end. Prints, for N tracks:

1. throughput with one worker and with two: tracks per second from the playlist record being
   produced to all N vectors being in Cassandra (and to a snapshot holding all N being served).
   The clock starts once the workers have joined the group and each has embedded a warm-up
   clip (the extractor loads TensorFlow and the weights on its first batch), so start-up,
   reported apart, is not counted;
2. latency from a track's ``features-extracted.v1`` record to an in-process query node
   answering ``/recommend`` for it, over a sample of tracks;
3. ``spotrec reindex --from features`` (after truncating the vector store) and
   ``spotrec reindex --from tracks`` (re-extracting with a new model version), per 1,000 tracks;
4. the fresh tier (``bench/fresh.py``): from a ``features-extracted.v1`` record to ``/recommend``
   knowing the new track and returning it as a neighbour, p50/p95/max over new tracks, with no
   snapshot built meanwhile, beside Kafka's own delivery of the same records.

Writes nothing else. Run from the repository root:
``.venv/bin/python -m bench.pipeline [--tracks 200] [--sample 20] [--index-interval S]
[--only one two model fresh]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cassandra.query import PreparedStatement

from api.app import create_app
from bench import fresh
from bench.deployments import (
    BenchError,
    BenchWorker,
    Deployment,
    isolated_deployment,
    joined,
    read_topic,
    running_workers,
    tails,
)
from cli.demo_audio import FAMILIES, RATE, SECONDS
from config.settings import Settings, load_settings
from features.versions import FAITHFUL, model_version_of
from schemas.decoding import decode
from schemas.features import FeaturesExtractedV1
from stores.cassandra import CassandraSession
from stores.migrations import EMBEDDING_BUCKETS
from streams.names import FEATURES_EXTRACTED, PLAYLISTS
from tests.pipelines import new_run_id, spotrec, until

Client = TestClient[web.Request, web.Application]
#: One part of the benchmark in a deployment of its own, recording into the results.
Section = Callable[[Settings, Path, dict[str, Path], "Results"], Awaitable[None]]

#: Joining the group: importing the agents and the rebalances, two workers on the same cores.
JOIN_DEADLINE_S = 240.0
#: Warm-up: the first batch loads TensorFlow and the weights, in every worker at once.
WARM_DEADLINE_S = 240.0
#: Warm-up clips per round and worker, and rounds before giving up: a clip lands on whichever
#: worker owns its partition, so with two workers a round may miss one of them.
WARM_CLIPS_PER_WORKER = 4
WARM_ROUNDS = 4
#: Seeds of warm-up clips start here, far from the measured clips' seeds 0..N-1.
WARM_SEED = 10**6
#: Seconds between looks at the query node's ``/readyz``, and at Cassandra's vectors: the
#: resolution of the figures. Cassandra is looked at less often, as it serves the workers too.
POLL_S = 0.1
CASSANDRA_POLL_S = 0.25
#: Extra seconds allowed for anything that must wait for an indexer tick.
SNAPSHOT_SLACK_S = 90.0


def write_clips(folder: Path, count: int, first_seed: int = 0) -> dict[str, Path]:
    """Write ``count`` distinct 30 s mono WAV clips; returns them by track id.

    The demo catalogue's four families of sounds, each clip with a parameter of its own and a
    faint noise floor: a local track's id is the sha256 of its file, so clips that shared their
    bytes would collapse into one track.
    """
    folder.mkdir(parents=True, exist_ok=True)
    families = list(FAMILIES.values())
    clips: dict[str, Path] = {}
    for i in range(first_seed, first_seed + count):
        make, params = families[i % len(families)]
        rng = np.random.default_rng(i)
        base = params[(i // len(families)) % len(params)]
        signal = make(base * rng.uniform(0.8, 1.25), rng)
        signal = signal + 0.01 * float(np.max(np.abs(signal))) * rng.standard_normal(signal.size)
        peak = float(np.max(np.abs(signal))) or 1.0
        path = folder / f"clip {i:05d}.wav"
        sf.write(path, (0.8 * signal / peak).astype(np.float32), RATE, subtype="PCM_16")
        clips[f"local:{hashlib.sha256(path.read_bytes()).hexdigest()}"] = path
    if len(clips) != count:
        msg = f"only {len(clips)} of {count} generated clips are distinct"
        raise BenchError(msg)
    return clips


async def run_cli(env: dict[str, str], *args: str, deadline_s: float) -> tuple[int, str, float]:
    """Run ``spotrec ARGS``; returns its exit status, output and wall time in seconds.

    A command that outlives ``deadline_s`` is killed and reported with status -9.
    """
    started = time.monotonic()
    status, text = await spotrec(env, *args, deadline_s=deadline_s)
    return status, text, time.monotonic() - started


class Vectors:
    """The track ids that have a vector of one model version in the deployment's Cassandra."""

    def __init__(self, db: CassandraSession, d: Deployment) -> None:
        self.db = db
        self.keyspace = d.settings.cassandra.keyspace
        self.version = model_version_of(d.settings.model)
        self._stmt: PreparedStatement | None = None

    async def ids(self) -> set[str]:
        """One partition read per bucket of the version: no table scan while workers write."""
        if self._stmt is None:
            self._stmt = await self.db.prepare(
                f"SELECT track_id FROM {self.keyspace}.embeddings "
                "WHERE model_version = ? AND bucket IN ?"
            )
        rows = await self.db.execute(self._stmt, [self.version, list(range(EMBEDDING_BUCKETS))])
        return {row["track_id"] for row in rows}


@dataclass
class SnapshotWatch:
    """When an in-process query node first serves every track, and each sampled one.

    Records the moment a snapshot holding all ``total`` tracks is loaded, and the moment each
    sampled track first answers ``/recommend`` with 200.

    Asks ``/readyz`` every ``POLL_S`` and the sampled tracks only when a new snapshot is loaded:
    a snapshot is swapped in whole, so a track becomes answerable only at such a swap, and the
    polling stays light beside workers that need both cores.
    """

    api: Client
    total: int
    sample: list[str]
    answered: dict[str, float] = field(default_factory=dict)
    complete_at: float | None = None

    def done(self) -> bool:
        """Every sampled track answered and a complete snapshot served."""
        return self.complete_at is not None and len(self.answered) == len(self.sample)

    async def run(self) -> None:
        """Poll until done (or cancelled)."""
        seen = None
        while not self.done():
            async with self.api.get("/readyz") as response:
                body = await response.json() if response.status == 200 else {}
            if body and body["snapshot"] != seen:
                seen = body["snapshot"]
                if int(body["count"]) >= self.total and self.complete_at is None:
                    self.complete_at = time.time()
                for track in [t for t in self.sample if t not in self.answered]:
                    params = {"track_id": track, "k": "1"}
                    async with self.api.get("/recommend", params=params) as response:
                        if response.status == 200:
                            self.answered[track] = time.time()
            await asyncio.sleep(POLL_S)


@dataclass
class Ingest:
    """What one ingest of the clips measured."""

    workers: int
    tracks: int
    vectors_s: float
    #: Worker start to every worker in the group, and to every worker warm.
    joined_s: float = 0.0
    warm_s: float = 0.0
    #: Warm-up tracks ingested before the clock started (in the snapshot, not in the rate).
    warm_tracks: int = 0
    snapshot_s: float | None = None
    embedded: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Tracks per second, playlist produced to every vector stored."""
        return self.tracks / self.vectors_s


def say(text: str) -> None:
    """A progress line, printed at once so a slow step shows where it is."""
    print(text, flush=True)


async def produce(d: Deployment, folder: Path) -> float:
    """Send ``local:<folder>`` with ``spotrec produce-playlists``; returns when it was written.

    The moment is the playlist record's Kafka timestamp, not the command's start: the command's
    own start-up (about a second of imports) is not the pipeline's.
    """
    status, out, _ = await run_cli(d.env, "produce-playlists", f"local:{folder}", deadline_s=60.0)
    if status != 0:
        msg = f"produce-playlists failed ({status}): {out}"
        raise BenchError(msg)
    return float(max(r.timestamp for r in await read_topic(d.settings, PLAYLISTS))) / 1000


async def stored(d: Deployment, ids: Iterable[str], deadline_s: float, logs: list[Path]) -> float:
    """Wait until every one of ``ids`` has a vector of the model; returns when, in seconds."""
    wanted = set(ids)
    async with CassandraSession(d.settings.cassandra) as db:
        vectors = Vectors(db, d)

        async def check() -> float | None:
            return time.time() if await vectors.ids() >= wanted else None

        return await until(
            check, deadline_s, f"{len(wanted)} vectors in Cassandra", logs, CASSANDRA_POLL_S
        )


async def _logged(check: Callable[[], bool], wait_s: float = 10.0) -> bool:
    """Whether ``check`` of the workers' logs holds within ``wait_s``.

    A worker logs a batch after its Cassandra writes, so the line may trail the stored vectors.
    """
    end = time.monotonic() + wait_s
    while not check():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(POLL_S)
    return True


async def warm_up(d: Deployment, workers: list[BenchWorker], audio: Path, first_seed: int) -> int:
    """Ingest warm-up clips until every worker has embedded one; returns how many were sent.

    The extractor is loaded on a worker's first batch, so until then a worker would spend the
    measured time importing TensorFlow. Clips from ``first_seed`` on: a clip the deployment
    already ingested would be skipped as settled, and warm nothing.
    """
    logs = [w.log for w in workers]
    sent = 0
    for _ in range(WARM_ROUNDS):
        seed = first_seed + sent
        folder = audio / f"warmup-{d.run}-{seed}"
        count = 1 if len(workers) == 1 else WARM_CLIPS_PER_WORKER * len(workers)
        clips = await asyncio.to_thread(write_clips, folder, count, seed)
        sent += count
        await produce(d, folder)
        await stored(d, clips, WARM_DEADLINE_S, logs)
        if await _logged(lambda: all(w.embedded() for w in workers)):
            return sent
    msg = f"a worker embedded none of {sent} warm-up clips{tails(logs)}"
    raise BenchError(msg)


async def start_warm(
    d: Deployment, workers: list[BenchWorker], audio: Path, first_seed: int = WARM_SEED
) -> tuple[float, float, int]:
    """Wait for the workers to join and warm up.

    Returns:
        Seconds from the first worker's start to joined and to warm, and the warm-up tracks.
    """
    joined_s = await joined(d, workers, JOIN_DEADLINE_S)
    say(f"  {len(workers)} worker(s) in the group after {joined_s:.1f} s; warming up")
    warm_tracks = await warm_up(d, workers, audio, first_seed)
    warm_s = time.monotonic() - min(w.started for w in workers)
    say(f"  warm after {warm_s:.1f} s ({warm_tracks} warm-up track(s))")
    return joined_s, warm_s, warm_tracks


async def ingest(
    d: Deployment,
    workers: list[BenchWorker],
    clips: dict[str, Path],
    *,
    indexed: int,
    api: Client | None,
    sample: list[str],
) -> Ingest:
    """Produce the clips' folder as a playlist and time it until every vector is stored.

    With a query node, also until a snapshot of all ``indexed`` tracks (the clips and any
    warm-up tracks) is served and each sampled track answers ``/recommend``.
    """
    n = len(clips)
    folder = next(iter(clips.values())).parent
    logs = [w.log for w in workers]
    before = {w.name: w.embedded() for w in workers}
    watch = SnapshotWatch(api, indexed, sample) if api else None
    task = asyncio.create_task(watch.run()) if watch else None
    try:
        produced_at = await produce(d, folder)
        stored_at = await stored(d, clips, 120.0 + 0.5 * n, logs)
        result = Ingest(len(workers), n, stored_at - produced_at)
        await _logged(lambda: sum(w.embedded() - before[w.name] for w in workers) >= n)
        result.embedded = {w.name: w.embedded() - before[w.name] for w in workers}
        if watch and task:
            deadline = d.settings.index.interval_s * 2 + SNAPSHOT_SLACK_S
            try:
                async with asyncio.timeout(deadline):
                    await task
            except TimeoutError:
                msg = f"no snapshot with all {indexed} tracks served within {deadline:.0f} s"
                raise BenchError(msg + tails(logs)) from None
            assert watch.complete_at is not None
            result.snapshot_s = watch.complete_at - produced_at
            if sample:
                stamps = await extracted_at(d)
                missing = [t for t in sample if t not in stamps]
                if missing:
                    msg = f"no features-extracted record for {len(missing)} sampled tracks"
                    raise BenchError(msg)
                result.latencies_s = [watch.answered[t] - stamps[t] for t in sample]
        return result
    finally:
        if task:
            task.cancel()


async def extracted_at(d: Deployment) -> dict[str, float]:
    """When each track's first ``features-extracted.v1`` record of the model was produced.

    The record's Kafka timestamp, in seconds: set by the worker as it sends the record, after
    the Cassandra write.
    """
    version = model_version_of(d.settings.model)
    stamps: dict[str, float] = {}
    for record in await read_topic(d.settings, FEATURES_EXTRACTED):
        features = decode(FeaturesExtractedV1, record.value)
        if features.model_version == version:
            at = record.timestamp / 1000
            stamps[features.track_id] = min(at, stamps.get(features.track_id, at))
    return stamps


@dataclass
class Reindex:
    """One timed ``spotrec reindex`` run."""

    mode: str
    #: Tracks the deployment holds: the N clips and its warm-up tracks.
    tracks: int
    status: int
    seconds: float
    output: str
    #: Vectors of the model in Cassandra after the command.
    vectors: int = 0
    note: str = ""


async def reindex_from_features(d: Deployment, tracks: int) -> Reindex:
    """Lose the vector store (truncate tracks and embeddings), then time the rebuild."""
    ks = d.settings.cassandra.keyspace
    async with CassandraSession(d.settings.cassandra) as db:
        await db.execute(f"TRUNCATE {ks}.embeddings")
        await db.execute(f"TRUNCATE {ks}.tracks")
    status, out, seconds = await run_cli(
        d.env, "reindex", "--from", "features", deadline_s=120.0 + tracks
    )
    async with CassandraSession(d.settings.cassandra) as db:
        vectors = len(await Vectors(db, d).ids())
    return Reindex("features", tracks, status, seconds, out, vectors)


async def reindex_from_tracks(d: Deployment, tracks: int) -> Reindex:
    """Time the re-extraction of every track with the deployment's (new) model."""
    status, out, seconds = await run_cli(
        d.env, "reindex", "--from", "tracks", deadline_s=180.0 + 2.0 * tracks
    )
    async with CassandraSession(d.settings.cassandra) as db:
        vectors = len(await Vectors(db, d).ids())
    return Reindex("tracks", tracks, status, seconds, out, vectors)


async def reindex_modes(env: dict[str, str]) -> list[str]:
    """The ``--from`` choices this checkout's ``spotrec reindex`` accepts."""
    _, out, _ = await run_cli(env, "reindex", "--help", deadline_s=60.0)
    found = re.search(r"--from \{([^}]*)\}", out)
    return found.group(1).split(",") if found else []


@dataclass
class Results:
    """Everything measured, for the summary."""

    n: int
    sample: int
    interval_s: float
    one: Ingest | None = None
    two: Ingest | None = None
    fresh_records: int = 100
    faithful: Ingest | None = None
    restart_s: float | None = None
    command_start_s: float | None = None
    reindexes: list[Reindex] = field(default_factory=list)
    fresh: fresh.FreshLatency | None = None
    #: Sections not run, and sections that failed (their error was printed when it happened).
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _sample(ids: Sequence[str], size: int) -> list[str]:
    """``size`` ids spread over the sorted ids (sha256 order: effectively random)."""
    ordered = sorted(ids)
    step = len(ordered) / max(1, min(size, len(ordered)))
    return [ordered[int(i * step)] for i in range(min(size, len(ordered)))]


@asynccontextmanager
async def _deployment(
    base: Settings, audio: Path, r: Results, prefix: str, model: str
) -> AsyncIterator[Deployment]:
    """A deployment of its own that reads the clips' folder, with the run's index interval."""
    run = new_run_id(prefix)
    async with isolated_deployment(
        base,
        run=run,
        folder=audio.parent / run,
        local_roots=[audio],
        interval_s=r.interval_s,
        model=model,
    ) as d:
        yield d


async def _throughput(
    d: Deployment,
    workers: list[BenchWorker],
    audio: Path,
    clips: dict[str, Path],
    r: Results,
    *,
    api: Client | None,
    sample: list[str],
) -> Ingest:
    """Warm the workers, then time the ingest of the clips (see :func:`ingest`)."""
    joined_s, warm_s, warm_tracks = await start_warm(d, workers, audio)
    say(f"  ingesting {r.n} tracks with model {d.settings.model.version}")
    result = await ingest(
        d, workers, clips, indexed=r.n + warm_tracks if api else 0, api=api, sample=sample
    )
    result.joined_s, result.warm_s, result.warm_tracks = joined_s, warm_s, warm_tracks
    return result


async def one_worker(base: Settings, audio: Path, clips: dict[str, Path], r: Results) -> None:
    """One worker: throughput and latency; then, the worker stopped, reindex --from features."""
    async with _deployment(base, audio, r, "benchone", base.model.version) as d:
        async with (
            running_workers(d, ["a"]) as workers,
            TestClient(TestServer(create_app(d.settings))) as api,
        ):
            sample = _sample(list(clips), r.sample)
            r.one = await _throughput(d, workers, audio, clips, r, api=api, sample=sample)
        say(f"  {r.n} tracks stored in {r.one.vectors_s:.1f} s; worker stopped")
        _, _, r.command_start_s = await run_cli(d.env, "reindex", "--help", deadline_s=60.0)
        say("  truncated tracks and embeddings; running reindex --from features")
        r.reindexes.append(await reindex_from_features(d, r.n + r.one.warm_tracks))


async def two_workers(base: Settings, audio: Path, clips: dict[str, Path], r: Results) -> None:
    """Two workers: throughput."""
    async with _deployment(base, audio, r, "benchtwo", base.model.version) as d:
        async with (
            running_workers(d, ["a", "b"]) as workers,
            TestClient(TestServer(create_app(d.settings))) as api,
        ):
            r.two = await _throughput(d, workers, audio, clips, r, api=api, sample=[])
        say(f"  {r.n} tracks stored in {r.two.vectors_s:.1f} s; workers stopped")


async def new_model(base: Settings, audio: Path, clips: dict[str, Path], r: Results) -> None:
    """Ingest with the faithful model; restart with the configured one; time reindex."""
    async with _deployment(base, audio, r, "benchmodel", FAITHFUL) as d:
        async with running_workers(d, ["old"]) as workers:
            r.faithful = await _throughput(d, workers, audio, clips, r, api=None, sample=[])
        current = d.with_model(base.model.version)
        say(f"  {r.n} tracks stored; worker restarted with model {base.model.version}")
        async with running_workers(current, ["new"]) as workers:
            # Warm the new worker too, so the reindex does not time TensorFlow's import.
            _, r.restart_s, more = await start_warm(current, workers, audio, 2 * WARM_SEED)
            r.faithful.warm_tracks += more
            say("  running reindex --from tracks")
            result = await reindex_from_tracks(current, r.n + r.faithful.warm_tracks)
            if result.status != 0:
                result.note = tails(w.log for w in workers)
            r.reindexes.append(result)


async def fresh_tier(base: Settings, audio: Path, clips: dict[str, Path], r: Results) -> None:
    """The fresh tier's latency, in a deployment of its own (``bench/fresh.py``)."""
    r.fresh = await fresh.measure(
        base, audio.parent, records=r.fresh_records, rate=fresh.RATE, catalogue=fresh.CATALOGUE
    )


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.rstrip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return "\n".join(f"      | {line}" for line in lines[-count:])


def note(text: str, indent: str = "   ", first: str | None = None) -> None:
    """Print a paragraph wrapped to the width of the other lines."""
    print(textwrap.fill(text, 100, initial_indent=first or indent, subsequent_indent=indent))


def _ingest(x: Ingest, label: str) -> None:
    shares = ", ".join(f"{name} {count}" for name, count in x.embedded.items())
    note(
        f"{x.rate:.1f} tracks/s ({x.tracks} tracks in {x.vectors_s:.1f} s; embedded per"
        f" worker: {shares})",
        "      ",
        f"   {label}: ",
    )
    note(
        f"start-up (not in the rate): in the group {x.joined_s:.1f} s after start, warm"
        f" {x.warm_s:.1f} s after start (TensorFlow and weights loaded by {x.warm_tracks}"
        " warm-up track(s))",
        "      ",
    )
    if x.snapshot_s is not None:
        note(
            f"a snapshot with all {x.tracks} (and the warm-up tracks) served by a query node"
            f" {x.snapshot_s:.1f} s after the playlist record",
            "      ",
        )


def report(r: Results, settings: Settings) -> None:
    """Print every figure with its unit and N."""
    n = r.n
    cores = os.cpu_count() or 1
    print(f"\n=== results, N = {n} tracks (generated {SECONDS} s mono WAV clips, {RATE} Hz) ===")
    note(
        f"model {model_version_of(settings.model)}, batch {settings.model.batch_size},"
        f" {settings.model.threads} TensorFlow threads per worker; {cores} cores; indexer"
        f" interval {r.interval_s:g} s (SPOTREC_INDEX_INTERVAL_S), {settings.index.trees} trees",
        "",
    )
    if not (r.one or r.two or r.faithful or r.reindexes):
        _fresh_report(r)
        return
    print("\n1. throughput: playlist record produced -> all N vectors in Cassandra")
    for x, label in ((r.one, "1 worker "), (r.two, "2 workers")):
        if x is not None:
            _ingest(x, label)
    if r.one and r.two:
        note(
            f"two/one: {r.two.rate / r.one.rate:.2f}x on {cores} cores. One worker already runs"
            f" the network on {settings.model.threads} threads, so a second worker on this"
            " machine only fills the time the first spends off the cores (reading files, S3,"
            " Cassandra, Kafka, waiting for a batch to fill): the ratio is bounded by the cores,"
            " not by the pipeline, and says little about workers on machines of their own."
        )
    if r.faithful:
        note(
            f"(for reindex --from tracks, 1 worker with model {FAITHFUL}: {r.faithful.rate:.1f}"
            f" tracks/s, {n} tracks in {r.faithful.vectors_s:.1f} s)"
        )

    print("\n2. latency: features-extracted record (Kafka timestamp) -> /recommend answers 200")
    if r.one and r.one.latencies_s:
        lat = r.one.latencies_s
        note(
            f"{len(lat)} sampled tracks of {n}, 1 worker: median {statistics.median(lat):.1f} s,"
            f" max {max(lat):.1f} s, min {min(lat):.1f} s (query node polled every {POLL_S:g} s)"
        )
        note(
            f"indexer interval {r.interval_s:g} s: it dominates, as a track waits up to one"
            " interval for the next build, then the build, the broadcast and the query node's"
            " download and load"
        )

    print("\n3. reindex: wall time of the command")
    start = r.command_start_s or 0.0
    if r.command_start_s is not None:
        note(f"the command's start-up alone (reindex --help): {start:.1f} s")
    for rx in r.reindexes:
        if rx.status == 0:
            per_k = rx.seconds * 1000 / rx.tracks
            without = (rx.seconds - start) * 1000 / rx.tracks
            note(
                f"{rx.seconds:.1f} s for {rx.tracks} tracks ({n} + {rx.tracks - n} warm-up):"
                f" {per_k:.0f} s per 1,000 tracks scaled linearly, {without:.0f} s per 1,000"
                f" without the start-up; {rx.vectors} vectors of the model afterwards",
                "      ",
                f"   --from {rx.mode:<8}: ",
            )
            print(_last_lines(rx.output, 1))
        else:
            note(f"--from {rx.mode}: FAILED with status {rx.status} after {rx.seconds:.1f} s")
            print(_last_lines(rx.output, 8))
            if rx.note:
                print(_last_lines(rx.note, 15))
    if any(x.mode == "features" and x.status == 0 for x in r.reindexes):
        note(
            "(--from features: after the 1-worker run, its worker stopped and the tracks and"
            " embeddings tables truncated; it replays both topics and builds a snapshot)"
        )
    if any(x.mode == "tracks" and x.status == 0 for x in r.reindexes):
        restart = f"{r.restart_s:.1f} s" if r.restart_s is not None else "-"
        note(
            f"(--from tracks: ingested with {FAITHFUL}; the worker was restarted with"
            f" {settings.model.version} and warm ({restart}) before the clock started; it"
            " fetches and embeds every track again)"
        )
    _fresh_report(r)


def _fresh_report(r: Results) -> None:
    print("\n4. fresh tier: features-extracted record -> /recommend serves the new track")
    if r.fresh is not None:
        for line in fresh.report_lines(r.fresh):
            note(line)
    for line in r.skipped + r.failed:
        note(line)


async def run(args: argparse.Namespace) -> Results:
    settings = load_settings()
    interval = args.index_interval or settings.index.interval_s
    r = Results(args.tracks, args.sample, interval, fresh_records=args.fresh_records)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        audio = Path(tmp) / "audio"
        started = time.monotonic()
        clips: dict[str, Path] = {}
        if set(args.only) - {"fresh"}:
            clips = await asyncio.to_thread(write_clips, audio / "clips", args.tracks)
            say(f"wrote {len(clips)} distinct clips in {time.monotonic() - started:.1f} s")
        sections: list[tuple[str, Section]] = []
        if "one" in args.only:
            sections.append(("one worker", one_worker))
        if "two" in args.only:
            sections.append(("two workers", two_workers))
        modes = await reindex_modes({**os.environ}) if "model" in args.only else []
        if "tracks" in modes:
            sections.append(("reindex --from tracks", new_model))
        elif "model" in args.only:
            r.skipped.append(
                "--from tracks: not measured, this checkout's `spotrec reindex --from` accepts"
                f" only {', '.join(modes) or 'nothing'}"
            )
        if "fresh" in args.only:
            sections.append(("fresh tier", fresh_tier))
        for name, section in sections:
            say(f"{name}:")
            try:
                await section(settings, audio, clips, r)
            except (BenchError, AssertionError) as exc:  # AssertionError: a wait timed out
                # The other sections are deployments of their own: report this one, go on.
                say(f"  FAILED: {exc}")
                r.failed.append(f"{name}: FAILED, see above")
    return r


#: The sections ``--only`` may name.
SECTIONS = ("one", "two", "model", "fresh")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Whole-pipeline benchmark on the local servers.")
    parser.add_argument("--tracks", type=int, default=200, help="N, clips ingested per run")
    parser.add_argument("--sample", type=int, default=20, help="tracks timed for latency")
    parser.add_argument(
        "--index-interval",
        type=float,
        default=None,
        help="SPOTREC_INDEX_INTERVAL_S for the runs (default: the configured one)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="the sections to run (default: all): one worker, two workers, the model change"
        " (reindex --from tracks), the fresh tier",
    )
    parser.add_argument(
        "--fresh-records", type=int, default=100, help="new tracks timed in the fresh tier"
    )
    args = parser.parse_args(argv)
    if args.tracks < 1 or args.sample < 1 or args.fresh_records < 1:
        parser.error("--tracks and --sample must be at least 1")
    started = time.monotonic()
    results = asyncio.run(run(args))
    report(results, load_settings())
    print(f"\n(whole benchmark: {time.monotonic() - started:.0f} s)")
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
