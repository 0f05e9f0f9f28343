"""The work of the leader's timers, and the guard that keeps a failing tick from ending a worker.

Reads vectors from Cassandra and audio listings from the object store; writes snapshots (through
``snapshots.indexer``) and deletes expired audio. (The third timer's work, re-sending due
scheduled retries, is ``streams.schedule.resend_due``.)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.snapshots import IndexUpdatedV1
from snapshots import indexer
from streams import metrics
from streams.names import INDEX_UPDATED
from streams.resources import Resources

logger = logging.getLogger(__name__)


async def tick(res: Resources, timer: str, work: Callable[[], Awaitable[Any]]) -> bool:
    """Run one timer tick; a failure is logged and counted, never raised. Returns success."""
    try:
        await work()
    except Exception:
        res.stats.timer_failures[timer] += 1
        logger.exception(
            "%s tick failed (%d so far); trying again at the next tick",
            timer,
            res.stats.timer_failures[timer],
        )
        return False
    return True


async def index_once(res: Resources) -> IndexUpdatedV1 | None:
    """One indexer tick; returns the broadcast it sent, if any."""

    async def broadcast(update: IndexUpdatedV1) -> None:
        await res.emit(INDEX_UPDATED, res.model_version.encode(), update.dumps())

    return await metrics.timed_index_build(
        indexer.index_once(res.db, res.objects, res.settings, res.model_version, broadcast)
    )


async def sweep_audio(res: Resources) -> int:
    """Delete audio objects older than the retention period; returns how many."""
    retention = res.settings.audio.retention_s
    cutoff = datetime.now(UTC) - timedelta(seconds=retention)
    deleted = 0
    async for key, modified in res.objects.listing("audio/"):
        if modified < cutoff:
            await res.objects.delete(key)
            deleted += 1
    if deleted:
        logger.info("deleted %d audio objects older than %.0f s", deleted, retention)
    return deleted
