"""The retry schedule's two halves: handing a record to it, and re-sending it when it is due.

Reads and writes ``<keyspace>.retry_schedule`` (``stores.schedule``) and track statuses;
produces the due records back to their topic with an ``spotrec-attempt`` header. A track whose
audio failed for now (a timeout, a 5xx, a source that stayed unreachable after its bounded
retries) is recorded ``failed`` with the reason and scheduled with a doubling, jittered delay
(``SPOTREC_RETRY_DELAY_S`` up to ``SPOTREC_RETRY_MAX_DELAY_S``); after ``SPOTREC_RETRY_LIMIT``
scheduled tries it is recorded ``unavailable`` with the last reason. A playlist that cannot be
read for now is scheduled the same way and parked for good after the limit.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Literal

from stores.schedule import ScheduledRetry
from streams.handling import ATTEMPT_HEADER, Parked
from streams.names import PLAYLISTS, TRACK_DISCOVERED
from streams.resources import Resources
from streams.retries import jittered_delay

logger = logging.getLogger(__name__)

Kind = Literal["track", "playlist"]
KINDS: tuple[Kind, ...] = ("track", "playlist")
_TOPICS = {"track": TRACK_DISCOVERED, "playlist": PLAYLISTS}


async def schedule_retry(
    res: Resources,
    kind: Kind,
    item_id: str,
    key: bytes | None,
    payload: bytes,
    attempt: int,
    reason: str,
) -> Parked | None:
    """Schedule the next try of a record whose try number ``attempt`` failed for now.

    Args:
        res: The worker's resources.
        kind: ``track`` (a ``track-discovered.v1`` record) or ``playlist``.
        item_id: The track id or playlist reference.
        key: The record's key, as it was.
        payload: The record's value bytes, as they were.
        attempt: The scheduled try that just failed (0: the record's first processing).
        reason: Why it failed.

    Returns:
        ``None`` once scheduled (a track is recorded ``failed``) or, past the limit, once a track
        is recorded ``unavailable``; for a playlist past the limit, the :class:`Parked` verdict.
    """
    limit = res.settings.retry.limit
    if attempt >= limit:
        res.stats.gave_up[kind] += 1
        final = f"gave up after {attempt} scheduled retries: {reason}"
        logger.warning("%s %s: %s", kind, item_id, final)
        if kind == "playlist":
            return Parked(final, attempts=attempt + 1)
        unavailable = partial(res.tracks.set_status, item_id, "unavailable", error=final)
        await res.own("record a track's status", unavailable)
        return None
    retry = res.settings.retry
    delay = jittered_delay(attempt + 1, retry.delay_s, retry.max_delay_s)
    scheduled = ScheduledRetry(
        kind=kind,
        item_id=item_id,
        attempt=attempt + 1,
        due_at=datetime.now(UTC) + timedelta(seconds=delay),
        topic=_TOPICS[kind],
        key=key,
        payload=payload,
        reason=reason,
    )
    if kind == "track":
        failed = partial(res.tracks.set_status, item_id, "failed", error=reason)
        await res.own("record a track's status", failed)
    await res.own("schedule a retry", partial(res.schedule.add, scheduled))
    res.stats.scheduled_retries[kind] += 1
    logger.info(
        "%s %s failed for now (%s); try %d of %d in %.0f s",
        kind,
        item_id,
        reason,
        attempt + 1,
        limit,
        delay,
    )
    return None


async def resend_due(res: Resources, now: datetime | None = None) -> int:
    """Send every due scheduled record back to its topic; returns how many were sent.

    Each is produced (and delivered) before its row is removed: a crash in between sends it
    twice, which the agents' idempotent steps absorb, and never loses it.
    """
    sent = 0
    when = now or datetime.now(UTC)
    for kind in KINDS:
        due = await res.own("read the retry schedule", partial(res.schedule.due, kind, when))
        for retry in due:
            headers = [(ATTEMPT_HEADER, str(retry.attempt).encode())]
            await res.emit(retry.topic, retry.key, retry.payload, headers)
            await res.own("remove a sent retry", partial(res.schedule.remove, retry))
            sent += 1
    if sent:
        logger.info("re-sent %d scheduled retries", sent)
    return sent
