"""Consumes ``playlists.v1`` (playlist references from users); emits ``track-discovered.v1``.

A thin loop: the work is :func:`streams.crawl.handle_playlist`; a record it parks (unreadable,
a playlist that does not exist or may not be read) goes to ``dead-letters.v1``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from faust.types import StreamT

from streams.app import app
from streams.crawl import handle_playlist
from streams.dead_letters import dead_letter
from streams.handling import guarded
from streams.services import flush_produced, headers_of, service
from streams.topics import playlists_topic

AGENT = "crawl_playlists"


@app.agent(playlists_topic)
async def crawl_playlists(stream: StreamT[Any]) -> None:
    """Turn each playlist reference into track-discovered events."""
    res = await service.ready()
    async for event in stream.events():
        message = event.message
        work = partial(handle_playlist, res, message.value, message.key, headers_of(event))
        parked = await guarded(res, AGENT, work)
        if parked is not None:
            res.stats.dead_letters[AGENT] += 1
            park = partial(
                dead_letter, event, parked.reason, AGENT, exc=parked.error, attempts=parked.attempts
            )
            await res.own("dead-letter", park)
            await res.own("deliver the dead letter", flush_produced)
