"""Consumes ``playlists.v1`` (playlist references from users); emits ``track-discovered.v1``.

Reads each raw message as a playlist reference, crawls every page of it, and sends one event per
track that is not already settled (extracted by the current model version, or known to have no
audio). Unreadable messages and playlists that do not exist go to ``dead-letters.v1``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from faust.types import StreamT

from schemas.errors import InvalidRecord
from schemas.playlists import PlaylistRef, parse_playlist_ref
from sources.crawler import CrawlStats
from sources.errors import SourceError
from streams.app import app, model_version
from streams.dead_letters import dead_letter, unexpected
from streams.services import resources
from streams.topics import playlists_topic, track_discovered_topic

logger = logging.getLogger(__name__)


@app.agent(playlists_topic)
async def crawl_playlists(stream: StreamT[Any]) -> None:
    """Turn each playlist reference into track-discovered events."""
    await resources.ready()
    async for event in stream.events():
        try:
            ref = parse_playlist_ref(event.value)
        except InvalidRecord as exc:
            await dead_letter(event, str(exc), "crawl_playlists")
            continue
        stats = CrawlStats()
        try:
            sent, known = await _crawl(ref, stats)
        except SourceError as exc:
            # The source clients already retried each request with back-off: this is final.
            await dead_letter(event, f"{ref}: {exc}", "crawl_playlists")
            continue
        except Exception as exc:
            # A crashed agent acks the event it was on: park it instead, so it is never lost.
            logger.exception("crawl_playlists failed on %s", ref)
            await dead_letter(event, f"{ref}: {unexpected(exc)}", "crawl_playlists")
            continue
        logger.info("playlist %s: %d sent, %d already known; %s", ref, sent, known, stats)


async def _crawl(ref: PlaylistRef, stats: CrawlStats) -> tuple[int, int]:
    sent = known = 0
    async for track in resources.crawler.tracks(ref, stats):
        if await resources.tracks.settled(track.track_id, model_version):
            known += 1
            continue
        track.playlist = str(ref)
        track.discovered_at = time.time()
        await track_discovered_topic.send(key=track.track_id.encode(), value=track.dumps())
        sent += 1
    return sent, known
