"""Consumes ``audio-stored.v1``; stores vectors in Cassandra and emits ``features-extracted.v1``.

A thin loop over batches: the work is :func:`streams.embed.embed_or_park`. A record that cannot
be decoded, or one whose own work breaks on an unexpected error, goes to ``dead-letters.v1``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from faust.types import StreamT

from schemas.audio import AudioStoredV1
from streams import metrics
from streams.app import app, settings
from streams.dead_letters import dead_letter
from streams.embed import decode_batch, embed_or_park
from streams.handling import Parked
from streams.services import flush_produced, service
from streams.topics import audio_stored_topic

AGENT = "extract_features"
#: Seconds to wait for a batch to fill before running a smaller one.
BATCH_WINDOW_S = 2.0


@app.agent(audio_stored_topic)
async def extract_features(stream: StreamT[Any]) -> None:
    """Embed stored audio in batches."""
    res = await service.ready()
    batches = stream.take_events(  # type: ignore[attr-defined]  # missing from faust's StreamT
        settings.model.batch_size, within=BATCH_WINDOW_S
    )
    async for events in batches:
        metrics.batch(AGENT, len(events))
        decoded = decode_batch([event.message.value for event in events])
        batch = [item for item in decoded if isinstance(item, AudioStoredV1)]
        outcomes = iter(await embed_or_park(res, AGENT, batch))
        for event, item in zip(events, decoded, strict=True):
            parked = item if isinstance(item, Parked) else next(outcomes)
            if parked is not None:
                res.stats.dead_letters[AGENT] += 1
                park = partial(
                    dead_letter,
                    event,
                    parked.reason,
                    AGENT,
                    exc=parked.error,
                    attempts=parked.attempts,
                )
                await res.own("dead-letter", park)
                await res.own("deliver the dead letter", flush_produced)
