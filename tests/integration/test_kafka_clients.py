"""Starting Kafka clients against the real broker: a start that is cancelled leaves no open
connection behind (checked by collecting garbage and recording ResourceWarnings)."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from config.settings import Settings
from streams.kafka_clients import close, started


def _unclosed_after_collecting() -> list[str]:
    """ResourceWarnings raised while collecting what is no longer referenced."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


async def test_a_start_cancelled_at_any_point_leaves_no_connection_open(
    servers: Settings,
) -> None:
    assert _unclosed_after_collecting() == []
    cancelled = 0
    # Cancel after 0, 1, 2, ... turns of the loop: one of them lands inside the bootstrap's
    # metadata request, where aiokafka holds the connection in a local variable.
    for turns in range(40):
        admin = AIOKafkaAdminClient(bootstrap_servers=servers.kafka.bootstrap)
        task = asyncio.create_task(started(admin))
        for _ in range(turns):
            await asyncio.sleep(0)
        if task.done():
            await close(await task)
            continue
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        cancelled += 1
        del admin, task
    assert cancelled > 0
    assert _unclosed_after_collecting() == []
