"""The worker's resources as a Faust service: opened once when the worker starts, closed at stop.

Reads the settings through ``streams.app``; builds the one :class:`~streams.resources.Resources`
of this worker process, whose records are produced through the Faust app's topics (each send
awaited until the broker has it), and registers it with the app. Agents wait for
:meth:`ResourcesService.ready` before their first event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import faust
from faust.types import EventT, TopicT

from streams.app import app, model_version, settings
from streams.errors import topic_error
from streams.names import (
    AUDIO_STORED,
    FEATURES_EXTRACTED,
    INDEX_UPDATED,
    PLAYLISTS,
    TRACK_DISCOVERED,
)
from streams.resources import Headers, Resources
from streams.topics import (
    audio_stored_topic,
    features_extracted_topic,
    index_updated_topic,
    playlists_topic,
    track_discovered_topic,
)

_TOPICS: Mapping[str, TopicT] = {
    PLAYLISTS: playlists_topic,
    TRACK_DISCOVERED: track_discovered_topic,
    AUDIO_STORED: audio_stored_topic,
    FEATURES_EXTRACTED: features_extracted_topic,
    INDEX_UPDATED: index_updated_topic,
}


async def faust_emit(topic: str, key: bytes | None, value: bytes, headers: Headers = ()) -> None:
    """Produce through the app's producer and wait for the broker's acknowledgement.

    ``send`` only queues the record; awaiting the future it returns is what confirms delivery,
    so an agent never acknowledges its input before its output is safely in Kafka.
    """
    channel = _TOPICS[topic]
    try:
        delivery = await channel.send(key=key, value=value, headers=list(headers) or None)
        await delivery
    except Exception as exc:
        raise topic_error(exc, channel.get_topic_name()) from exc


async def flush_produced() -> None:
    """Wait until every record queued on the app's producer has been sent.

    For sends whose future the agent does not hold (the dead-letter helper queues its record):
    called before the agent moves on, so the input is not acknowledged ahead of its output.
    """
    await app.producer.flush()


def headers_of(event: EventT[Any]) -> dict[str, bytes]:
    """An event's headers as a name -> bytes mapping."""
    headers = event.headers or {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(k): bytes(v) for k, v in items if isinstance(v, bytes | bytearray)}


class ResourcesService(faust.Service):
    """Starts and stops the worker's :class:`Resources` with the Faust worker."""

    def __init__(self, resources: Resources, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]  # mode.Service keyword arguments
        self.resources = resources
        self._ready = asyncio.Event()

    async def on_start(self) -> None:
        """Open every connection before any agent runs."""
        await self.resources.start()
        self._ready.set()

    async def ready(self) -> Resources:
        """Wait until every connection is open, and return the resources.

        Faust starts services like this one after the agents, so each agent waits here before
        taking its first event.
        """
        await self._ready.wait()
        return self.resources

    async def on_stop(self) -> None:
        """Close every connection."""
        await self.resources.stop()


resources = Resources(settings, model_version, faust_emit)
service = ResourcesService(resources)
# faust types app.service() as taking a class; it accepts an instance as well (and returns it).
app.service(service)  # type: ignore[arg-type]  # see the comment above
