"""One indexer tick: build, publish and announce a snapshot if the vectors changed and one is due.

Reads vectors and metadata from Cassandra; writes a snapshot to the object store and hands the
announcement to a ``broadcast`` callable (the worker sends it through Faust, ``spotrec reindex``
through a plain producer). Holds the ``indexer`` lease while it works, so exactly one build runs
at a time however many processes try. Changed vectors wait for the cadence of
:mod:`snapshots.cadence` (a schedule, or enough new tracks), unless the build is forced.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiokafka import AIOKafkaProducer

from config.settings import Settings
from schemas.snapshots import IndexUpdatedV1
from snapshots.builder import BuildOptions, build_snapshot
from snapshots.cadence import due
from snapshots.errors import LeaseHeld, NothingToIndex
from snapshots.lease import Lease
from snapshots.source import current_mark, vectors_changed_since
from snapshots.store import SnapshotStore
from stores.cassandra import CassandraSession
from stores.objects import ObjectStore
from streams.kafka_clients import started
from streams.names import INDEX_UPDATED

logger = logging.getLogger(__name__)

#: Seconds between attempts at a held lease.
LEASE_RETRY_S = 0.5

Broadcast = Callable[[IndexUpdatedV1], Awaitable[None]]

#: (keyspace, model version) -> the change mark of the newest snapshot this process built or
#: found published: while the mark has not moved past it, a tick has nothing to do.
_indexed_marks: dict[tuple[str, str], int | None] = {}


async def index_once(
    db: CassandraSession,
    objects: ObjectStore,
    settings: Settings,
    model_version: str,
    broadcast: Broadcast,
    *,
    force: bool = False,
    lease_wait_s: float = 0.0,
) -> IndexUpdatedV1 | None:
    """Build a snapshot of ``model_version`` if its vectors changed (or ``force``), and announce it.

    Args:
        db: An open Cassandra session.
        objects: An open object store.
        settings: The settings (keyspace, index settings, run folder).
        model_version: The model version to index.
        broadcast: Sends the announcement.
        force: Build even if the vectors did not change (e.g. new index settings).
        lease_wait_s: How long to keep trying while another indexer holds the lease; a worker's
            tick skips at once (another tick follows), a one-off rebuild waits.

    Returns:
        The announcement sent, or ``None`` when nothing changed, nothing is stored yet, or
        another indexer held the lease for longer than ``lease_wait_s``.
    """
    deadline = time.monotonic() + lease_wait_s
    while True:
        try:
            return await _index_once(db, objects, settings, model_version, broadcast, force=force)
        except LeaseHeld as exc:
            if time.monotonic() >= deadline:
                logger.info("another indexer is building (%s); skipping", exc)
                return None
            await asyncio.sleep(LEASE_RETRY_S)


async def _index_once(
    db: CassandraSession,
    objects: ObjectStore,
    settings: Settings,
    model_version: str,
    broadcast: Broadcast,
    *,
    force: bool,
) -> IndexUpdatedV1 | None:
    ks = settings.cassandra.keyspace
    store = SnapshotStore(objects)
    seen = (ks, model_version)
    if not force:
        # A tick with nothing new costs one Cassandra read: no lease, no object-store listing.
        now = await current_mark(db, ks, model_version)
        if now is None or _indexed_marks.get(seen) == now:
            return None
    async with Lease(db, ks, "indexer", ttl_s=settings.index.lease_ttl_s) as lease:
        newest = None if force else await store.latest(model_version)
        mark = newest.source_mark if newest else None
        if newest is not None and not await vectors_changed_since(db, ks, model_version, mark):
            _indexed_marks[seen] = mark  # another indexer built it
            return None
        if not force and not await due(settings, newest):
            return None  # changed, but not enough yet: the fresh tier serves the new tracks
        workroot = settings.path(settings.run_dir) / "indexer"
        workroot.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=workroot) as workdir:
            started = time.monotonic()
            try:
                built = await build_snapshot(
                    db,
                    ks,
                    model_version,
                    settings.index.trees,
                    Path(workdir),
                    jobs=settings.index.build_jobs,
                    options=build_options(settings),
                )
            except NothingToIndex:
                return None
            lease.check()  # a holder that lost its lease must not publish
            manifest_key = await store.publish(built)
        manifest = built.manifest
        _indexed_marks[seen] = manifest.source_mark
        update = IndexUpdatedV1(
            version=manifest.version,
            model_version=model_version,
            manifest_key=manifest_key,
            count=manifest.count,
            built_at=manifest.built_at.timestamp(),
            complete=manifest.complete,
        )
        await broadcast(update)
        logger.info(
            "snapshot %s: %d tracks, built and published in %.1f s (%s)",
            manifest.version,
            manifest.count,
            time.monotonic() - started,
            "complete" if manifest.complete else f"{manifest.missing} tracks still missing",
        )
        await store.prune_remote(model_version, settings.index.keep_remote)
        return update


def build_options(settings: Settings) -> BuildOptions:
    """The neighbour-list length and recall target of the settings."""
    return BuildOptions(
        neighbours=settings.index.neighbours,
        recall_target=settings.index.recall_target,
        recall_sample=settings.index.recall_sample,
    )


async def rebuild_now(
    db: CassandraSession, objects: ObjectStore, settings: Settings, model_version: str
) -> IndexUpdatedV1 | None:
    """Build, publish and announce a snapshot now, from outside a worker (``spotrec reindex``).

    Sends the announcement through a plain producer, and waits for a running worker's indexer
    to release the lease rather than skipping.
    """
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await started(producer)
    try:

        async def broadcast(update: IndexUpdatedV1) -> None:
            await producer.send_and_wait(
                settings.kafka.topic(INDEX_UPDATED), update.dumps(), key=model_version.encode()
            )

        wait = settings.index.lease_ttl_s + 5.0
        return await index_once(
            db, objects, settings, model_version, broadcast, force=True, lease_wait_s=wait
        )
    finally:
        await producer.stop()
