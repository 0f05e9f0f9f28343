"""The indexer: on a timer, builds an ANNOY snapshot when vectors changed, and broadcasts it.

Reads vectors and track metadata from Cassandra; writes the snapshot to the object store
(manifest last, so a half-written snapshot is never visible) and announces it on
``index-updated.v1``. It runs only on the Faust leader and, because leadership can briefly be
doubled during a rebalance, also holds a Cassandra lease: exactly one build at a time, however
many workers run. A second timer deletes stored audio older than the retention period.
"""

from __future__ import annotations

import logging
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from features.versions import model_version_of
from schemas.snapshots import IndexUpdatedV1
from snapshots.builder import build_snapshot, vectors_changed_since
from snapshots.errors import LeaseHeld, NothingToIndex
from snapshots.lease import Lease
from snapshots.store import SnapshotStore
from streams.app import app, settings
from streams.services import resources
from streams.topics import index_updated_topic

logger = logging.getLogger(__name__)

#: Resolved once: a missing or corrupt calibration file stops the worker at start-up.
MODEL_VERSION = model_version_of(settings.model)


@app.timer(interval=settings.index.interval_s, on_leader=True)  # type: ignore[untyped-decorator]  # faust
async def build_index_snapshot() -> None:
    """Build and publish a snapshot if the vectors changed since the newest one."""
    await resources.ready()
    await index_once()


async def index_once() -> IndexUpdatedV1 | None:
    """One indexer tick; returns the broadcast it sent, if any."""
    model_version = MODEL_VERSION
    ks = settings.cassandra.keyspace
    store = SnapshotStore(resources.objects)
    try:
        async with Lease(resources.db, ks, "indexer", ttl_s=settings.index.lease_ttl_s) as lease:
            newest = await store.latest(model_version)
            mark = newest.source_mark if newest else None
            if not await vectors_changed_since(resources.db, ks, model_version, mark):
                return None
            workroot = settings.path(settings.run_dir) / "indexer"
            workroot.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=workroot) as workdir:
                started = time.monotonic()
                try:
                    built = await build_snapshot(
                        resources.db, ks, model_version, settings.index.trees, Path(workdir)
                    )
                except NothingToIndex:
                    return None
                lease.check()  # a holder that lost its lease must not publish
                manifest_key = await store.publish(built)
            manifest = built.manifest
            update = IndexUpdatedV1(
                version=manifest.version,
                model_version=model_version,
                manifest_key=manifest_key,
                count=manifest.count,
                built_at=manifest.built_at.timestamp(),
            )
            await index_updated_topic.send(key=model_version.encode(), value=update.dumps())
            logger.info(
                "snapshot %s: %d tracks, built and published in %.1f s",
                manifest.version,
                manifest.count,
                time.monotonic() - started,
            )
            await store.prune_remote(model_version, settings.index.keep_remote)
            return update
    except LeaseHeld as exc:
        logger.info("another indexer is building (%s); skipping this tick", exc)
        return None


@app.timer(interval=max(settings.audio.retention_s / 4, 60.0), on_leader=True)  # type: ignore[untyped-decorator]  # faust
async def sweep_retained_audio() -> None:
    """Delete audio objects older than the retention period (when one is configured)."""
    if settings.audio.retention_s == 0:
        return
    await resources.ready()
    cutoff = datetime.now(UTC) - timedelta(seconds=settings.audio.retention_s)
    deleted = 0
    async for key, modified in resources.objects.listing("audio/"):
        if modified < cutoff:
            await resources.objects.delete(key)
            deleted += 1
    if deleted:
        logger.info(
            "deleted %d audio objects older than %.0f s", deleted, settings.audio.retention_s
        )
