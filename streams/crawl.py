"""The playlist agent's work: crawl a playlist and emit one ``track-discovered.v1`` per track.

Reads a raw playlist reference; reads Spotify, Deezer or a local folder through the crawler, and
each track's status in Cassandra; emits every track that is not already settled (extracted by
the current model version, or known to have no audio). A playlist that does not exist or may not
be read is parked for good; one whose source stayed unreachable after its bounded retries goes
to the retry schedule, so it never holds the partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from functools import partial

from schemas.errors import InvalidRecord
from schemas.playlists import PlaylistRef, parse_playlist_ref
from sources.crawler import CrawlStats
from sources.errors import SourceError
from streams.handling import Parked, attempt_of
from streams.names import TRACK_DISCOVERED
from streams.resources import Resources
from streams.schedule import schedule_retry

logger = logging.getLogger(__name__)


async def handle_playlist(
    res: Resources,
    value: bytes,
    key: bytes | None = None,
    headers: Mapping[str, bytes] | Sequence[tuple[str, bytes]] | None = None,
) -> Parked | None:
    """Process one ``playlists.v1`` record: ``None`` when done, else why it never can be."""
    try:
        ref = parse_playlist_ref(value)
    except InvalidRecord as exc:
        return Parked(str(exc), exc)
    stats = CrawlStats()
    try:
        sent, known = await crawl_playlist(res, ref, stats)
    except SourceError as exc:
        if not exc.retriable:
            return Parked(f"{ref}: {exc}", exc)
        # Tracks already sent are sent again by the retry: every step downstream is idempotent.
        return await schedule_retry(
            res, "playlist", str(ref), key, value, attempt_of(headers), f"{ref}: {exc}"
        )
    logger.info("playlist %s: %d sent, %d already known; %s", ref, sent, known, stats)
    return None


async def crawl_playlist(res: Resources, ref: PlaylistRef, stats: CrawlStats) -> tuple[int, int]:
    """Emit the unsettled tracks of a playlist; returns how many were sent and already known.

    Raises:
        SourceError: The playlist cannot be read (``retriable`` when only for now).
    """
    sent = known = 0
    async for track in res.crawler.tracks(ref, stats):
        settled = partial(res.tracks.settled, track.track_id, res.model_version)
        if await res.own("read a track's status", settled):
            known += 1
            continue
        track.playlist = str(ref)
        track.discovered_at = time.time()
        await res.emit(TRACK_DISCOVERED, track.track_id.encode(), track.dumps())
        sent += 1
    return sent, known
