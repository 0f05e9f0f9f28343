"""The leader's timers: the indexer, the retention sweeper and the retry-schedule sweeper.

The indexer builds an ANNOY snapshot when vectors changed and broadcasts it (``snapshots.indexer``
does the work; it also holds a Cassandra lease, since leadership can briefly be doubled during a
rebalance). The retention sweeper deletes stored audio older than the retention period. The
retry sweeper re-sends the scheduled retries that are due (``streams.schedule``).

A tick that fails (a server down, anything unexpected) is logged and counted in the worker's
``stats.timer_failures`` and tried again at the next tick: a timer never takes the worker down.
"""

from __future__ import annotations

from streams.app import app, settings
from streams.schedule import resend_due
from streams.services import service
from streams.timers import index_once, sweep_audio, tick


@app.timer(interval=settings.index.interval_s, on_leader=True)  # type: ignore[untyped-decorator]  # faust
async def build_index_snapshot() -> None:
    """Build and publish a snapshot if the vectors changed since the newest one."""
    res = await service.ready()
    await tick(res, "indexer", lambda: index_once(res))


@app.timer(interval=max(settings.audio.retention_s / 4, 60.0), on_leader=True)  # type: ignore[untyped-decorator]  # faust
async def sweep_retained_audio() -> None:
    """Delete audio objects older than the retention period (when one is configured)."""
    if settings.audio.retention_s == 0:
        return
    res = await service.ready()
    await tick(res, "retention", lambda: sweep_audio(res))


@app.timer(interval=settings.retry.sweep_interval_s, on_leader=True)  # type: ignore[untyped-decorator]  # faust
async def resend_due_retries() -> None:
    """Send the scheduled retries that are due back to their topics."""
    res = await service.ready()
    await tick(res, "retry-schedule", lambda: resend_due(res))
