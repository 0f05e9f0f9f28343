"""The indexer: on a timer, builds an ANNOY snapshot when vectors changed, and broadcasts it.

Reads vectors and track metadata from Cassandra; writes the snapshot to the object store
(manifest last, so a half-written snapshot is never visible) and announces it on
``index-updated.v1``. It runs only on the Faust leader and, because leadership can briefly be
doubled during a rebalance, also holds a Cassandra lease: exactly one build at a time, however
many workers run. A second timer deletes stored audio older than the retention period.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from schemas.snapshots import IndexUpdatedV1
from snapshots import indexer
from streams import metrics
from streams.app import app, model_version, settings
from streams.services import resources
from streams.topics import index_updated_topic

logger = logging.getLogger(__name__)


@app.timer(interval=settings.index.interval_s, on_leader=True)  # type: ignore[untyped-decorator]  # faust
async def build_index_snapshot() -> None:
    """Build and publish a snapshot if the vectors changed since the newest one."""
    await resources.ready()
    await index_once()


async def index_once() -> IndexUpdatedV1 | None:
    """One indexer tick; returns the broadcast it sent, if any."""

    async def broadcast(update: IndexUpdatedV1) -> None:
        await index_updated_topic.send(key=model_version.encode(), value=update.dumps())

    return await metrics.timed_index_build(
        indexer.index_once(resources.db, resources.objects, settings, model_version, broadcast)
    )


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
