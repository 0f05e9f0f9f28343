"""Consumes ``track-discovered.v1``; stores each track's audio in S3 and emits ``audio-stored.v1``.

A thin loop: the work is :func:`streams.fetch.handle_track`; a record it parks (malformed) goes
to ``dead-letters.v1``. Tracks whose audio failed for now go to the retry schedule instead.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from faust.types import StreamT

from streams.app import app
from streams.dead_letters import dead_letter
from streams.fetch import handle_track
from streams.handling import guarded
from streams.services import flush_produced, headers_of, service
from streams.topics import track_discovered_topic

AGENT = "fetch_track_audio"


@app.agent(track_discovered_topic, concurrency=4)  # I/O-bound: several downloads in flight
async def fetch_track_audio(stream: StreamT[Any]) -> None:
    """Fetch and store the audio of each discovered track."""
    res = await service.ready()
    async for event in stream.events():
        message = event.message
        work = partial(handle_track, res, message.value, message.key, headers_of(event))
        parked = await guarded(res, AGENT, work)
        if parked is not None:
            res.stats.dead_letters[AGENT] += 1
            park = partial(
                dead_letter, event, parked.reason, AGENT, exc=parked.error, attempts=parked.attempts
            )
            await res.own("dead-letter", park)
            await res.own("deliver the dead letter", flush_produced)
