"""A minimal Faust app run as a real worker process by the Kafka tests.

Consumes ``<app id>-in`` as raw bytes and produces each value upper-cased to ``<app id>-out``
with the same key. The app id comes from ``SPOTREC_WORKER_APP_ID`` (through the settings), so
each test gets its own consumer group and topics. Run: ``python -m tests.integration.echo_worker
worker --without-web``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import faust
from faust.types import EventT, StreamT

from config.settings import load_settings

settings = load_settings()
app = faust.App(
    settings.worker.app_id,
    broker=settings.kafka.url,
    store="memory://",
    topic_partitions=settings.kafka.topic_partitions,
    web_enabled=False,
    # Commit often so a test sees progress quickly; the default waits for 10,000 events.
    broker_commit_every=1,
)
source = app.topic(f"{settings.worker.app_id}-in", key_type=bytes, value_serializer="raw")
sink = app.topic(f"{settings.worker.app_id}-out", key_type=bytes, value_serializer="raw")


@app.agent(source)
async def shout(stream: StreamT[bytes]) -> AsyncIterator[bytes]:
    """Upper-case every value and forward it with its key."""
    event: EventT[bytes]
    async for event in stream.events():
        value = event.value
        assert isinstance(value, bytes)
        await sink.send(key=event.key, value=value.upper())
        yield value


if __name__ == "__main__":
    app.main()
