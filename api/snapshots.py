"""The query node's current snapshot, and the task that follows ``index-updated.v1``.

Reads broadcasts from Kafka and snapshots from the object store; writes verified copies under
the index cache folder. A new snapshot is downloaded, checked against its manifest, loaded and
warmed before one reference is swapped, so requests never see a half-loaded index; a snapshot
that fails any step is refused and the current one keeps serving.

A node serves its configured model version once a complete snapshot of it exists. Until then
(a reindex to a new model is under way) it serves the newest complete snapshot of another
version, and it never switches to an incomplete one.

The follower outlives any outage of Kafka or of the object store: it retries with capped
exponential back-off and jitter, keeps serving what it has, records its health for ``/readyz``
and catches up with the newest snapshot once they answer again.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from api.background import cancel_and_wait
from api.health import Health, describe
from config.settings import Settings
from features.versions import model_version_of
from schemas.decoding import decode
from schemas.errors import InvalidRecord
from schemas.snapshots import IndexUpdatedV1
from snapshots.errors import SnapshotError
from snapshots.fresh import FreshSegment, FreshTrack
from snapshots.index import LoadedSnapshot, load_snapshot
from snapshots.local import prune_local
from snapshots.serving import ServingView
from snapshots.store import SnapshotStore, download, to_serve
from stores.objects import ObjectStore
from streams.kafka_clients import started
from streams.names import INDEX_UPDATED
from streams.provision import create_missing

logger = logging.getLogger(__name__)

#: Most tracks the fresh segment keeps before a snapshot takes them in.
FRESH_LIMIT = 200_000
#: Seconds before the first retry after a failure; doubled each time up to the configured cap.
BACKOFF_FIRST_S = 0.5
#: Seconds one poll of ``index-updated.v1`` waits for a broadcast.
POLL_S = 5.0
#: Seconds the broker gets to answer the liveness question asked after an empty poll.
PROBE_TIMEOUT_S = 10.0


class SnapshotHolder:
    """What answers requests: the served snapshot merged with the fresh segment.

    ``current`` is ``None`` until the first snapshot is loaded. A swap replaces one reference;
    the replaced snapshot is unloaded when the last request holding it lets go (Python's
    reference count, not a timer), so at most one extra copy lives, only while it is used.
    """

    def __init__(self, fresh_limit: int = FRESH_LIMIT) -> None:
        self.current: ServingView | None = None
        self.refused: list[tuple[str, str]] = []
        self.fresh = FreshSegment(None, None, fresh_limit)
        #: Snapshots swapped in so far (a metric).
        self.swaps = 0

    def swap(self, snapshot: LoadedSnapshot) -> None:
        """Serve ``snapshot`` from now on; the fresh tracks it holds leave the segment."""
        dropped = self.fresh.rebase(
            snapshot.transform, snapshot.manifest.model_version, snapshot.__contains__
        )
        self.current = ServingView(snapshot, self.fresh)
        self.swaps += 1
        if dropped:
            logger.info("%d fresh tracks are now in snapshot %s", dropped, snapshot.version)

    def add_fresh(self, tracks: list[FreshTrack]) -> int:
        """Take newly extracted tracks into the fresh segment; returns how many were new."""
        current = self.current
        known = current.snapshot.__contains__ if current is not None else _nothing
        return self.fresh.add(tracks, known)

    def close(self) -> None:
        """Close the served snapshot (at shutdown)."""
        if self.current is not None:
            self.current.snapshot.close()
            self.current = None


def _nothing(track_id: str) -> bool:
    return False


class SnapshotFollower:
    """Loads the newest snapshot at start, then every newer one that is broadcast.

    Runs as one background task that never ends by itself: a failure of Kafka or of the object
    store (the broker down, a connection refused, an S3 5xx, a snapshot whose files are not
    there yet) is recorded in :attr:`health`, waited out with capped exponential back-off and
    jitter, and tried again; the snapshot being served keeps answering meanwhile. After any
    failure the follower asks the object store which snapshot to serve before anything else,
    so a broadcast it could not act on (or missed) is caught up with once the store answers.
    Only a snapshot that is refused for good (corrupt, incomplete) is given up on.
    """

    def __init__(self, settings: Settings, objects: ObjectStore, holder: SnapshotHolder) -> None:
        self.settings = settings
        self.objects = objects
        self.holder = holder
        self.model_version = model_version_of(settings.model)
        self.cache_dir = settings.path(settings.index.cache_dir)
        self.health = Health()
        self._consumer: AIOKafkaConsumer | None = None
        self._partition = TopicPartition(settings.kafka.topic(INDEX_UPDATED), 0)
        #: Ask the store which snapshot to serve before following broadcasts further.
        self._resync = True
        #: A snapshot to load as soon as the store answers.
        self._pending: str | None = None
        self._first_round = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start following; return after the first round, whether it succeeded or not.

        The first round subscribes first and then loads the newest snapshot, so no broadcast
        can fall in between. When Kafka or the store does not answer, the node starts anyway
        (``/readyz`` says why it is not ready) and the follower keeps trying in the background.
        """
        self._task = asyncio.create_task(self._run(), name="snapshot-follower")
        waiter = asyncio.create_task(self._first_round.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()

    async def stop(self) -> None:
        """Stop following; cancel, then await the task."""
        await cancel_and_wait(self._task)
        await self._close_consumer()

    def unhealthy(self) -> str | None:
        """Why the follower counts as unhealthy, or ``None``: failing for longer than the limit."""
        limit = self.settings.api.follower_unhealthy_after_s
        failing = self.health.failing_for_s()
        if self.health.failures == 0 or failing < limit:
            return None
        return (
            f"the snapshot follower has been failing for {failing:.0f} s "
            f"({self.health.failures} attempts; limit {limit:g} s): {self.health.last_error}"
        )

    async def _run(self) -> None:
        wait = wait_exponential_jitter(
            multiplier=BACKOFF_FIRST_S,
            jitter=BACKOFF_FIRST_S,
            max=self.settings.api.follower_backoff_max_s,
        )
        while True:  # a new retry policy after every success: the back-off starts over
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(Exception),
                wait=wait,
                before_sleep=self._failed,
            ):
                with attempt:
                    await self._round()

    def _failed(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is None:  # pragma: no cover  # tenacity calls this only after a failure
            return
        self.health.failed(exc)
        # Whatever failed, the store decides what to serve once it answers again.
        self._resync = True
        delay = state.upcoming_sleep
        logger.warning(
            "snapshot follower: %s (failure %d in a row; trying again in %.1f s)",
            describe(exc),
            self.health.failures,
            delay,
        )
        self._first_round.set()

    async def _round(self) -> None:
        """Subscribe if needed, catch up with the store if needed, then follow one poll."""
        kafka_error: Exception | None = None
        if self._consumer is None:
            try:
                self._consumer = await self._subscribe()
            except Exception as exc:  # noqa: BLE001  # raised below, once the store was asked
                kafka_error = exc
            self._resync = True
        if self._resync:
            # Subscribed first (when Kafka answers), so no broadcast falls in between.
            key = await to_serve(self.objects, self.model_version)
            if key is not None and not self._serving(key):
                self._pending = key
            self._resync = False
        if self._pending is not None:
            # Refused for good (corrupt, incomplete): forgotten. A transient failure raises, and
            # the resync that follows finds the newest snapshot again.
            await self.load(self._pending)
            self._pending = None
        if kafka_error is not None:
            # Without Kafka the node still serves the newest snapshot in the store.
            raise kafka_error
        self.health.succeeded()
        self._first_round.set()
        consumer = self._consumer
        assert consumer is not None  # subscribed above, or kafka_error was raised
        batch = await consumer.getmany(self._partition, timeout_ms=int(POLL_S * 1000))
        if not batch:
            # A poll returns nothing both when nothing was broadcast and when the broker is
            # down (the client reconnects quietly): ask the broker something, to know which.
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                await consumer.end_offsets([self._partition])
        for message in batch.get(self._partition, []):
            try:
                update = decode(IndexUpdatedV1, message.value or b"")
            except InvalidRecord as exc:
                logger.warning("ignoring a malformed %s message: %s", INDEX_UPDATED, exc)
                continue
            if self.wanted(update):
                self._pending = update.manifest_key
        self.health.succeeded()

    async def _subscribe(self) -> AIOKafkaConsumer:
        """A consumer at the end of ``index-updated.v1`` (the topic created if missing)."""
        await create_missing(self.settings.kafka.bootstrap, {self._partition.topic: 1})
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka.bootstrap,
            group_id=None,  # every query node must see every broadcast
            enable_auto_commit=False,
        )
        await started(consumer)
        try:
            consumer.assign([self._partition])
            await consumer.seek_to_end(self._partition)
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def _close_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    def _serving(self, manifest_key: str) -> bool:
        current = self.holder.current
        if current is None:
            return False
        model_version, version = SnapshotStore(self.objects).parse_manifest_key(manifest_key)
        manifest = current.manifest
        return (manifest.model_version, manifest.version) == (model_version, version)

    def wanted(self, update: IndexUpdatedV1) -> bool:
        """Whether a broadcast snapshot should replace the one being served.

        Only complete snapshots are taken. One of the configured model version replaces any
        older one and any snapshot of another version; one of another version is taken only
        while no snapshot of the configured version is served (the old model keeps serving
        through a reindex, and follows its own rebuilds meanwhile).
        """
        if not update.complete:
            return False
        current = self.holder.current
        if current is None:
            return True
        serving = current.manifest
        if update.model_version == self.model_version:
            return serving.model_version != self.model_version or update.version > serving.version
        return serving.model_version != self.model_version and update.version > serving.version

    async def load(self, manifest_key: str) -> bool:
        """Download, verify, load, warm and swap in one snapshot; ``False`` if refused.

        Raises:
            Exception: The store or the disk failed in a way that may pass (a connection error,
                an S3 5xx, a file not there yet): the snapshot is neither refused nor served.
        """
        previous = self.holder.current
        try:
            folder: Path = await download(self.objects, manifest_key, self.cache_dir)
            snapshot = await load_snapshot(folder)
            if not snapshot.manifest.complete:  # rare: followers skip incomplete broadcasts
                snapshot.close()
                msg = f"incomplete: {snapshot.manifest.missing} tracks of other versions missing"
                raise SnapshotError(msg)
        except SnapshotError as exc:
            if exc.retriable:
                raise
            logger.error(
                "refused snapshot %s, still serving the previous one: %s", manifest_key, exc
            )
            self.holder.refused.append((manifest_key, str(exc)))
            return False
        self.holder.swap(snapshot)
        # Keep the newest few copies; never the one being served or the one being replaced.
        protect = frozenset({folder} | ({previous.folder} if previous else set()))
        await asyncio.to_thread(
            prune_local, self.cache_dir, self.settings.index.keep_local, protect=protect
        )
        manifest = snapshot.manifest
        logger.info(
            "serving snapshot %s of %s (%d tracks)%s",
            manifest.version,
            manifest.model_version,
            manifest.count,
            ""
            if manifest.model_version == self.model_version
            else f", until one of {self.model_version} is complete",
        )
        return True
