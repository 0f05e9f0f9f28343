"""The query node's current snapshot, and the task that follows ``index-updated.v1``.

Reads broadcasts from Kafka and snapshots from the object store; writes verified copies under
the index cache folder. A new snapshot is downloaded, checked against its manifest, loaded and
warmed before one reference is swapped, so requests never see a half-loaded index; a snapshot
that fails any step is refused and the current one keeps serving.

A node serves its configured model version once a complete snapshot of it exists. Until then
(a reindex to a new model is under way) it serves the newest complete snapshot of another
version, and it never switches to an incomplete one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from config.settings import Settings
from features.versions import model_version_of
from schemas.decoding import decode
from schemas.errors import InvalidRecord
from schemas.snapshots import IndexUpdatedV1
from snapshots.errors import SnapshotError
from snapshots.index import LoadedSnapshot, load_snapshot
from snapshots.local import prune_local
from snapshots.store import download, to_serve
from stores.objects import ObjectStore
from streams.names import INDEX_UPDATED
from streams.provision import create_missing

logger = logging.getLogger(__name__)

#: Seconds a replaced snapshot stays open, so a request that picked it up can finish.
RETIRE_AFTER_S = 30.0


class SnapshotHolder:
    """The snapshot that answers requests; ``None`` until the first one is loaded."""

    def __init__(self) -> None:
        self.current: LoadedSnapshot | None = None
        self.refused: list[tuple[str, str]] = []
        #: Snapshots swapped in so far (a metric).
        self.swaps = 0

    def swap(self, snapshot: LoadedSnapshot) -> None:
        """Serve ``snapshot`` from now on; close the previous one after a grace period."""
        old, self.current = self.current, snapshot
        self.swaps += 1
        if old is not None:
            asyncio.get_running_loop().call_later(RETIRE_AFTER_S, old.close)

    def close(self) -> None:
        """Close the current snapshot (at shutdown)."""
        if self.current is not None:
            self.current.close()
            self.current = None


class SnapshotFollower:
    """Loads the newest snapshot at start, then every newer one that is broadcast."""

    def __init__(self, settings: Settings, objects: ObjectStore, holder: SnapshotHolder) -> None:
        self.settings = settings
        self.objects = objects
        self.holder = holder
        self.model_version = model_version_of(settings.model)
        self.cache_dir = settings.path(settings.index.cache_dir)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe first, then load the newest snapshot: no broadcast can fall in between."""
        topic = self.settings.kafka.topic(INDEX_UPDATED)
        await create_missing(self.settings.kafka.bootstrap, {topic: 1})  # before any worker
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka.bootstrap,
            group_id=None,  # every query node must see every broadcast
            enable_auto_commit=False,
        )
        await consumer.start()
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_end(partition)
        self._consumer = consumer
        try:
            manifest_key = await to_serve(self.objects, self.model_version)
        except SnapshotError as exc:
            logger.warning("no snapshot loaded at start: %s", exc)
        else:
            if manifest_key is not None:
                await self.load(manifest_key)
        self._task = asyncio.create_task(self._follow(), name="snapshot-follower")

    async def stop(self) -> None:
        """Stop following; cancel, then await the task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _follow(self) -> None:
        assert self._consumer is not None
        async for message in self._consumer:
            try:
                update = decode(IndexUpdatedV1, message.value or b"")
            except InvalidRecord as exc:
                logger.warning("ignoring a malformed %s message: %s", INDEX_UPDATED, exc)
                continue
            if self.wanted(update):
                await self.load(update.manifest_key)

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
        """Download, verify, load, warm and swap in one snapshot; ``False`` if refused."""
        previous = self.holder.current
        try:
            folder: Path = await download(self.objects, manifest_key, self.cache_dir)
            snapshot = await load_snapshot(folder)
            if not snapshot.manifest.complete:  # rare: followers skip incomplete broadcasts
                snapshot.close()
                msg = f"incomplete: {snapshot.manifest.missing} tracks of other versions missing"
                raise SnapshotError(msg)
        except SnapshotError as exc:
            logger.error(
                "refused snapshot %s, still serving the previous one: %s", manifest_key, exc
            )
            self.holder.refused.append((manifest_key, str(exc)))
            return False
        self.holder.swap(snapshot)
        # Keep the newest few copies; never the one being served or the one being retired.
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
