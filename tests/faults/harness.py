"""Fault scenarios run against dedicated real servers, shared by ``tests/faults`` and the benchmark.

Reads the settings; writes generated clips and every process's log under a run folder, and a
deployment of its own (keyspace, bucket, topic prefix, consumer group) on the dedicated servers
of :mod:`tests.faults.servers`, removed at the end. Each scenario ingests two ``local:`` folders
of generated clips with a real ``spotrec worker`` while one fault happens:

- :func:`server_outage`: Kafka, Cassandra or SeaweedFS is killed with SIGKILL mid-ingest and
  started again :data:`OUTAGE_S` later;
- :func:`worker_crashes`: the worker kills itself with SIGKILL right after each per-track step
  in turn (the test-only hook ``SPOTREC_WORKER_CRASH_AFTER``) and is started again each time;
- :func:`query_node_outage`: a query node's object store is taken away (a TCP proxy between
  them is cut) while a new snapshot is built and announced, then brought back.

Each returns an :class:`Outcome`: tracks expected, indexed, duplicated and dead-lettered, the
seconds from the fault's end to the last track indexed, and how often the worker had to be
started again. A supervisor restarts a worker that exits, as a process manager would, and
counts it: a fault the pipeline survives needs none.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from cassandra.query import PreparedStatement

from bench.deployments import BenchWorker, Deployment, joined, tails
from bench.pipeline import write_clips
from config.settings import Settings
from features.versions import model_version_of
from infra.servers.pipeline import ApiProcess
from snapshots.store import SnapshotStore
from stores.cassandra import CassandraSession
from stores.migrations import EMBEDDING_BUCKETS
from stores.objects import ObjectStore, ensure_bucket
from streams.names import DEAD_LETTERS, PLAYLISTS
from streams.provision import ensure_topics
from tests.faults.servers import DedicatedServers
from tests.pipelines import new_run_id, run_scoped, start_worker
from tests.processes import terminate
from tests.tcp_proxy import TcpProxy, free_port

#: The fast model: frozen normalisation statistics, one batch at a time.
FAULT_MODEL = "choi2017-calibrated"
#: Clips in each of the two folders ingested: 2 x 50 = 100 tracks per scenario.
CLIPS_PER_FOLDER = 50
#: How long a killed server stays down before it is started again.
OUTAGE_S = 30.0
#: How long the query node's store stays away once the new snapshot has been announced.
NODE_OUTAGE_S = 10.0
#: A short indexer interval: a track is in a snapshot seconds after its vector.
INDEX_INTERVAL_S = 2.0
#: Seconds the pipeline gets, once the fault is over, to index every track.
RECOVERY_DEADLINE_S = 240.0
#: Seconds a worker gets to join its group and run its agents.
JOIN_DEADLINE_S = 180.0
#: Seconds until a worker embeds its first batch (it loads TensorFlow first).
FIRST_BATCH_DEADLINE_S = 180.0
#: Seconds a worker started with the crash hook gets to reach its step and die.
CRASH_DEADLINE_S = 180.0
#: Seconds to wait for a crash once every track has a vector (the last steps may be left).
CRASH_GRACE_S = 20.0
#: The per-track steps of the features agent, in order: a worker killed between any two of
#: them leaves a track that the replay must complete (the test kills it after each but the last).
TRACK_STEPS = ("features.upsert", "features.emit", "features.status", "features.delete")
CRASH_STEPS = TRACK_STEPS[:-1]
#: Every step a worker can be crashed after (the benchmark's list), in the order a track
#: passes them.
ALL_CRASH_STEPS = ("audio.put", "audio.status", "audio.emit", *TRACK_STEPS)
#: The tests' cap on the in-place retries' back-off (the default is 30 s): a stalled agent
#: notices a server's return within 2 s, so the figures measure the pipeline, not the cap.
TEST_ENV = {"SPOTREC_RETRY_MAX_BACKOFF_S": "2"}
#: The pollers' pace: the resolution of the recovery times.
POLL_S = 0.5
#: For every worker of a fault run: a crashed worker's partitions move on after 6 s (the
#: least Kafka accepts), small index builds, a snapshot cache of the run's own.
WORKER_ENV = {
    "SPOTREC_WORKER_SESSION_TIMEOUT_S": "6",
    "SPOTREC_WORKER_HEARTBEAT_INTERVAL_S": "2",
    "SPOTREC_INDEX_TREES": "10",
    "SPOTREC_LOG_LEVEL": "INFO",
}


@dataclass(frozen=True)
class Clips:
    """Two folders of generated clips, and the track ids each holds."""

    folders: tuple[Path, Path]
    ids: tuple[frozenset[str], frozenset[str]]

    @property
    def all_ids(self) -> frozenset[str]:
        """Every track of both folders."""
        return self.ids[0] | self.ids[1]


def write_fault_clips(root: Path, per_folder: int = CLIPS_PER_FOLDER) -> Clips:
    """Write ``2 * per_folder`` distinct 30 s clips into ``root/a`` and ``root/b``."""
    a = write_clips(root / "a", per_folder, first_seed=0)
    b = write_clips(root / "b", per_folder, first_seed=per_folder)
    return Clips((root / "a", root / "b"), (frozenset(a), frozenset(b)))


@dataclass
class Outcome:
    """What one fault scenario measured."""

    fault: str
    expected: int
    #: Expected tracks with a vector of the model, and in the newest complete snapshot.
    vectors: int = 0
    indexed: int = 0
    #: Vector rows beyond one per track and model.
    duplicated: int = 0
    dead_letters: int = 0
    #: Seconds from the fault's end (server answering again, store reachable again, last
    #: worker start) to the last vector stored and to a snapshot holding every track.
    vectors_s: float | None = None
    recovery_s: float | None = None
    worker_restarts: int = 0
    #: Worker exits by status (-9: SIGKILL).
    worker_exits: list[int] = field(default_factory=list)
    #: The query node's answers to ``/recommend`` during its fault, by status.
    answers: dict[int, int] = field(default_factory=dict)
    #: Facts worth showing beside the figures (what was seen, what timed out).
    notes: list[str] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every expected track has a vector and is in a snapshot."""
        return self.vectors == self.expected and self.indexed == self.expected

    def summary(self) -> str:
        """One line of figures, for test output and failure messages."""
        return (
            f"{self.fault}: expected {self.expected}, vectors {self.vectors}, indexed "
            f"{self.indexed}, duplicated {self.duplicated}, dead letters {self.dead_letters}, "
            f"back to last vector {_seconds(self.vectors_s)}, back to last indexed "
            f"{_seconds(self.recovery_s)}, worker restarts {self.worker_restarts}"
            + (f", answers {self.answers}" if self.answers else "")
            + "".join(f"; {note}" for note in self.notes)
        )

    def log_tails(self) -> str:
        """The end of every process log of the scenario, for a failure message."""
        return tails(self.logs)


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


class SupervisedWorker:
    """A ``spotrec worker`` started again whenever it exits, as a process manager would.

    ``crash_after`` lists the crash-hook step of each successive run: the first run gets the
    first, the run after its exit the second, and so on; runs after the list is used up get none.
    """

    def __init__(self, d: Deployment, env: dict[str, str], crash_after: Sequence[str] = ()) -> None:
        self.d = d
        self.env = env
        self.crash_after = list(crash_after)
        self.runs: list[BenchWorker] = []
        self.exits: list[int] = []
        self.started_at = 0.0
        self._stopping = False
        self._watch: asyncio.Task[None] | None = None

    @property
    def current(self) -> BenchWorker:
        """The worker running now (or last)."""
        return self.runs[-1]

    @property
    def logs(self) -> list[Path]:
        """Every run's log."""
        return [w.log for w in self.runs]

    @property
    def restarts(self) -> int:
        """How often the worker had to be started again."""
        return len(self.runs) - 1

    async def start(self) -> None:
        """Start the first run and the supervisor."""
        await self._spawn()
        self._watch = asyncio.create_task(self._supervise())

    async def _spawn(self) -> None:
        n = len(self.runs)
        env = dict(self.env)
        if n < len(self.crash_after):
            env["SPOTREC_WORKER_CRASH_AFTER"] = self.crash_after[n]
        log = self.d.folder / f"worker-{n}.log"
        process = await start_worker(env, self.d.folder / f"worker-{n}", log)
        self.started_at = time.time()
        self.runs.append(BenchWorker(str(n), process, log, time.monotonic()))

    async def _supervise(self) -> None:
        while True:
            status = await self.current.process.wait()
            if self._stopping:
                return
            self.exits.append(status)
            await self._spawn()

    async def stop(self) -> None:
        """Stop supervising, then stop the worker (SIGTERM, then SIGKILL)."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self.runs:
            await terminate(self.current.process, 30.0)


async def fault_deployment(servers: DedicatedServers, root: Path, name: str) -> Deployment:
    """A deployment of the scenario's own on the dedicated servers: a bucket, topic prefix and
    consumer group of its own, and the session's keyspace emptied.

    The keyspace is shared by the scenarios, which run one after another, because creating one
    costs Cassandra seconds of schema agreement each time; nothing is removed at the end, as
    the dedicated servers go away with their data.
    """
    folder = root / name
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    roots = (root / "clips",)
    scoped, env = run_scoped(servers.settings, new_run_id("f"), folder)
    settings = scoped.model_copy(
        update={
            "cassandra": servers.settings.cassandra,
            "model": scoped.model.model_copy(update={"version": FAULT_MODEL}),
            "audio": scoped.audio.model_copy(update={"local_roots": roots}),
            # Build as soon as vectors change: recovery is timed to the snapshot holding all.
            "index": scoped.index.model_copy(
                update={"interval_s": INDEX_INTERVAL_S, "rebuild_after_s": 0.0}
            ),
        }
    )
    env |= WORKER_ENV | servers.env()
    env |= {
        "SPOTREC_CASSANDRA_KEYSPACE": settings.cassandra.keyspace,
        "SPOTREC_MODEL_VERSION": FAULT_MODEL,
        "SPOTREC_AUDIO_LOCAL_ROOTS": json.dumps([str(r) for r in roots]),
        "SPOTREC_INDEX_INTERVAL_S": str(INDEX_INTERVAL_S),
        "SPOTREC_INDEX_REBUILD_AFTER_S": "0",
    }
    await servers.empty_keyspace()
    await ensure_bucket(settings.s3)
    await ensure_topics(settings)  # once here rather than raced for by workers
    return Deployment(folder.name, folder, settings, env)


async def produce(settings: Settings, folders: Iterable[Path]) -> None:
    """Send ``local:<folder>`` playlist references, as ``spotrec produce-playlists`` does."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await producer.start()
    try:
        topic = settings.kafka.topic(PLAYLISTS)
        for folder in folders:
            await producer.send_and_wait(topic, f"local:{folder}".encode())
    finally:
        await producer.stop()


class Progress:
    """Reads how far the deployment got: vectors in Cassandra, the newest complete snapshot.

    Every read tolerates a server that is down (it counts as no progress) and reconnects on
    the next read: the pollers run through the faults.
    """

    def __init__(self, d: Deployment) -> None:
        self.settings = d.settings
        self.model_version = model_version_of(d.settings.model)
        self._db: CassandraSession | None = None
        self._stmt: PreparedStatement | None = None
        #: The last error a read met, for the notes.
        self.last_error = ""

    async def close(self) -> None:
        """Close the Cassandra session."""
        if self._db is not None:
            await self._db.stop()
            self._db = None

    async def vector_rows(self) -> list[str] | None:
        """The track id of every vector row of the model (``None``: Cassandra did not answer)."""
        try:
            if self._db is None:
                self._db = CassandraSession(self.settings.cassandra)
                await self._db.start()
                self._stmt = await self._db.prepare(
                    f"SELECT track_id FROM {self.settings.cassandra.keyspace}.embeddings "
                    "WHERE model_version = ? AND bucket IN ?"
                )
            rows = await self._db.execute(
                self._stmt, [self.model_version, list(range(EMBEDDING_BUCKETS))]
            )
        except Exception as exc:  # noqa: BLE001  # down: no progress seen this time
            self.last_error = f"{type(exc).__name__}: {exc}"
            await self._reset()
            return None
        return [row["track_id"] for row in rows]

    async def _reset(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(Exception):
                await db.stop()

    async def snapshot_count(self) -> int | None:
        """Tracks in the newest complete snapshot (``None``: none, or S3 did not answer)."""
        try:
            async with ObjectStore(self.settings.s3) as objects:
                manifest = await SnapshotStore(objects).latest(self.model_version, complete=True)
        except Exception:  # noqa: BLE001  # down: no progress seen this time
            return None
        return None if manifest is None else manifest.count

    async def until_indexed(
        self, expected: frozenset[str], since: float, deadline_s: float, outcome: Outcome
    ) -> None:
        """Poll until every expected track has a vector and is in a snapshot, or the deadline.

        Records in ``outcome`` the seconds from ``since`` to each, and what was seen last.
        """
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if outcome.vectors_s is None:
                rows = await self.vector_rows()
                if rows is not None:
                    outcome.vectors = len(expected & set(rows))
                    if outcome.vectors == len(expected):
                        outcome.vectors_s = time.time() - since
            if outcome.vectors_s is not None:
                count = await self.snapshot_count()
                if count is not None:
                    outcome.indexed = min(count, len(expected))
                    if count >= len(expected):
                        outcome.recovery_s = time.time() - since
                        return
            await asyncio.sleep(POLL_S)
        outcome.notes.append(f"not every track indexed {deadline_s:.0f} s after the fault")

    async def finish(self, expected: frozenset[str], outcome: Outcome) -> None:
        """Count duplicated vector rows and dead letters once everything answers."""
        rows = await self.vector_rows()
        if rows is None:
            outcome.notes.append(f"Cassandra did not answer the final count: {self.last_error}")
        else:
            outcome.duplicated = len(rows) - len(set(rows))
            outcome.vectors = len(expected & set(rows))
        outcome.dead_letters = await dead_letters(self.settings)


async def dead_letters(settings: Settings) -> int:
    """How many records the deployment's dead-letter topic holds."""
    topic = settings.kafka.topic(DEAD_LETTERS)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    if not partitions:
        msg = f"{topic} has no partitions: {described}"
        raise RuntimeError(msg)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(ends[tp] - starts[tp] for tp in partitions)


async def first_batch(worker: SupervisedWorker, deadline_s: float) -> None:
    """Wait until the worker logged its first embedded batch: the ingest is under way."""
    end = time.monotonic() + deadline_s
    while not any(w.embedded() for w in worker.runs):
        if time.monotonic() > end:
            msg = f"no batch embedded within {deadline_s:.0f} s{tails(worker.logs)}"
            raise TimeoutError(msg)
        await asyncio.sleep(0.1)


async def no_fault(servers: DedicatedServers, clips: Clips, root: Path) -> Outcome:
    """The baseline: the same ingest without a fault, timed from the playlists being sent."""
    outcome = Outcome("none (the same ingest, timed from the playlists sent)", len(clips.all_ids))
    d = await fault_deployment(servers, root, "baseline")
    worker = SupervisedWorker(d, d.env)
    progress = Progress(d)
    try:
        await worker.start()
        await joined(d, [worker.current], JOIN_DEADLINE_S)
        sent = time.time()
        await produce(d.settings, clips.folders)
        await progress.until_indexed(clips.all_ids, sent, RECOVERY_DEADLINE_S, outcome)
        await progress.finish(clips.all_ids, outcome)
    finally:
        await worker.stop()
        await progress.close()
        outcome.worker_restarts = worker.restarts
        outcome.worker_exits = worker.exits
        outcome.logs = worker.logs
    return outcome


async def server_outage(
    servers: DedicatedServers, clips: Clips, root: Path, name: str, outage_s: float = OUTAGE_S
) -> Outcome:
    """Kill ``name`` (kafka, cassandra or seaweed) mid-ingest; start it ``outage_s`` later."""
    outcome = Outcome(f"{name} killed for {outage_s:.0f} s", len(clips.all_ids))
    d = await fault_deployment(servers, root, f"outage-{name}")
    worker = SupervisedWorker(d, d.env)
    progress = Progress(d)
    try:
        await worker.start()
        await produce(d.settings, clips.folders)  # read once the worker has joined
        await first_batch(worker, FIRST_BATCH_DEADLINE_S)
        await servers.kill(name)
        # The outage the scenario is about: a fixed time, not a wait for a condition.
        await asyncio.sleep(outage_s)
        back = await servers.restart(name)
        await progress.until_indexed(clips.all_ids, back, RECOVERY_DEADLINE_S, outcome)
        await progress.finish(clips.all_ids, outcome)
    finally:
        await worker.stop()
        await progress.close()
        outcome.worker_restarts = worker.restarts
        outcome.worker_exits = worker.exits
        outcome.logs = worker.logs
    return outcome


async def worker_crashes(
    servers: DedicatedServers, clips: Clips, root: Path, steps: Sequence[str] = CRASH_STEPS
) -> Outcome:
    """Crash the worker with SIGKILL right after each of ``steps`` in turn, then run it clean."""
    outcome = Outcome(f"worker killed after each of {len(steps)} steps", len(clips.all_ids))
    d = await fault_deployment(servers, root, "crashes")
    worker = SupervisedWorker(d, d.env, crash_after=steps)
    progress = Progress(d)
    try:
        await worker.start()
        await produce(d.settings, clips.folders)
        await _crashes(worker, progress, clips.all_ids, len(steps), outcome)
        # The clock starts with the last, clean run.
        await progress.until_indexed(clips.all_ids, worker.started_at, RECOVERY_DEADLINE_S, outcome)
        await progress.finish(clips.all_ids, outcome)
        outcome.notes.append(
            "crash hook fired in "
            f"{sum('crash hook' in w.text() for w in worker.runs)} of {len(steps)} runs"
        )
    finally:
        await worker.stop()
        await progress.close()
        outcome.worker_restarts = worker.restarts
        outcome.worker_exits = worker.exits
        outcome.logs = worker.logs
    return outcome


async def _crashes(
    worker: SupervisedWorker,
    progress: Progress,
    expected: frozenset[str],
    runs: int,
    outcome: Outcome,
) -> None:
    """Wait until ``runs`` worker runs have exited, or give up.

    Gives up when a run outlives :data:`CRASH_DEADLINE_S`, or when every track has a vector and
    no run exited for :data:`CRASH_GRACE_S` (a hook that never fires leaves nothing to wait for).
    """
    run_started = time.monotonic()
    seen = 0
    done_at: float | None = None
    while len(worker.exits) < runs:
        now = time.monotonic()
        if len(worker.exits) != seen:
            seen, run_started, done_at = len(worker.exits), now, None
        if now - run_started > CRASH_DEADLINE_S:
            outcome.notes.append(f"run {seen} did not exit within {CRASH_DEADLINE_S:.0f} s")
            return
        if done_at is None and expected <= set(await progress.vector_rows() or ()):
            done_at = now
        if done_at is not None and now - done_at > CRASH_GRACE_S:
            outcome.notes.append(f"every track had a vector after {seen} of {runs} crashes")
            return
        await asyncio.sleep(POLL_S)


class Asker:
    """Asks a query node for recommendations all the time and counts the answers by status."""

    def __init__(self, endpoint: str, track_id: str) -> None:
        self.url = f"{endpoint}/recommend"
        self.track_id = track_id
        self.answers: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Asker:
        self._task = asyncio.create_task(self._ask())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _ask(self) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                try:
                    params = {"track_id": self.track_id, "k": "5"}
                    async with http.get(self.url, params=params) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0  # no answer at all
                self.answers[status] = self.answers.get(status, 0) + 1
                await asyncio.sleep(0.1)


async def readyz(endpoint: str) -> tuple[int, dict[str, Any]]:
    """A query node's ``/readyz`` status and body."""
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(f"{endpoint}/readyz") as response,
    ):
        return response.status, await response.json()


async def serving(endpoint: str, count: int, deadline_s: float) -> float:
    """Wait until the node serves a snapshot of ``count`` tracks; returns when (``time.time()``)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            status, body = await readyz(endpoint)
            if status == 200 and body.get("count") == count:
                return time.time()
        await asyncio.sleep(POLL_S / 5)
    msg = f"the query node did not serve {count} tracks within {deadline_s:.0f} s"
    raise TimeoutError(msg)


async def query_node_outage(servers: DedicatedServers, clips: Clips, root: Path) -> Outcome:
    """Take a query node's object store away while a new snapshot is announced, then back."""
    outcome = Outcome("query node's object store away", len(clips.all_ids))
    first = len(clips.ids[0])
    d = await fault_deployment(servers, root, "node")
    env = d.env
    worker = SupervisedWorker(d, env)
    progress = Progress(d)
    proxy = TcpProxy(servers.settings.s3.port)
    await proxy.start()
    port = free_port()
    node_env = {
        **env,
        "SPOTREC_API_PORT": str(port),
        "SPOTREC_S3_PORT": str(proxy.port),
        "SPOTREC_INDEX_CACHE_DIR": str(d.folder / "node-cache"),
        "SPOTREC_API_FOLLOWER_BACKOFF_MAX_S": "2",
    }
    node_settings = d.settings.model_copy(
        update={"api": d.settings.api.model_copy(update={"port": port})}
    )
    node = ApiProcess(node_settings, d.folder, node_env)
    try:
        await asyncio.gather(worker.start(), node.start())
        await produce(d.settings, clips.folders[:1])
        outcome.logs = [*worker.logs, node.log_file]
        await serving(node.endpoint, first, FIRST_BATCH_DEADLINE_S + 60)
        async with Asker(node.endpoint, sorted(clips.ids[0])[0]) as asker:
            await proxy.cut()
            await produce(d.settings, clips.folders[1:])
            # The worker builds and announces the snapshot of all tracks meanwhile.
            end = time.monotonic() + RECOVERY_DEADLINE_S
            while (await progress.snapshot_count() or 0) < len(clips.all_ids):
                if time.monotonic() > end:
                    msg = f"no snapshot of every track was built{tails(outcome.logs)}"
                    raise TimeoutError(msg)
                await asyncio.sleep(POLL_S)
            await asyncio.sleep(NODE_OUTAGE_S)  # the outage: a fixed time on purpose
            status, body = await readyz(node.endpoint)
            outcome.notes.append(
                f"during the outage /readyz said {status} with "
                f"{body['follower']['failures']} follower failures and "
                f"{body.get('count')} tracks served"
            )
            await proxy.restore()
            back = time.time()
            try:
                at = await serving(node.endpoint, len(clips.all_ids), RECOVERY_DEADLINE_S)
                outcome.recovery_s = at - back
            except TimeoutError as exc:
                outcome.notes.append(str(exc))
            outcome.answers = dict(asker.answers)
        count = await progress.snapshot_count()
        outcome.indexed = min(count or 0, len(clips.all_ids))
        await progress.finish(clips.all_ids, outcome)
    finally:
        await node.stop()
        await proxy.stop()
        await worker.stop()
        await progress.close()
        outcome.worker_restarts = worker.restarts
        outcome.worker_exits = worker.exits
        outcome.logs = [*worker.logs, node.log_file]
    return outcome


def outcome_json(outcome: Outcome) -> str:
    """The figures of an outcome as one JSON line (for the benchmark's record)."""
    fields = ("fault", "expected", "vectors", "indexed", "duplicated", "dead_letters")
    data: dict[str, Any] = {name: getattr(outcome, name) for name in fields}
    data |= {
        "vectors_s": outcome.vectors_s,
        "recovery_s": outcome.recovery_s,
        "worker_restarts": outcome.worker_restarts,
        "answers": outcome.answers,
    }
    return json.dumps(data)
