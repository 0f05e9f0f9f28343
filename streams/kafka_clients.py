"""Starting aiokafka clients without leaking their connections.

An aiokafka client opens its bootstrap connections inside ``start()``; when ``start()`` then
fails (a broker that went away half-way, a timeout) or the task running it is cancelled (a node
shutting down while it subscribes), nothing else holds the client, so its sockets stay open
until the garbage collector finds them. ``started`` closes such a client before re-raising.
Reads and writes nothing itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

#: How long a cancelled start may still run to end cleanly (a bootstrap against a live
#: broker takes milliseconds; a dead one refuses at once).
START_GRACE_S = 10.0

Client = TypeVar("Client", AIOKafkaConsumer, AIOKafkaProducer, AIOKafkaAdminClient)


async def started(client: Client) -> Client:
    """``client`` started; if starting fails or is cancelled, it is closed and the error raised.

    A cancellation waits (a bounded time) for ``start()`` to end before closing: aiokafka's
    bootstrap holds its first connection in a local variable while it asks for metadata, so
    cancelling it there would leave that socket open where ``close()`` cannot reach it.
    """
    starting = asyncio.ensure_future(client.start())
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        await asyncio.wait({starting}, timeout=START_GRACE_S)
        starting.cancel()
        if starting.done() and not starting.cancelled():
            starting.exception()  # seen here: the caller is told of the cancellation
        with contextlib.suppress(Exception):
            await close(client)
        raise
    except BaseException:
        with contextlib.suppress(Exception):
            await close(client)
        raise
    # Let a consumer's background task run once: aiokafka 0.14 raises CancelledError from
    # stop() when that task is cancelled before it ever ran.
    await asyncio.sleep(0)
    return client


async def close(client: AIOKafkaConsumer | AIOKafkaProducer | AIOKafkaAdminClient) -> None:
    """Stop a consumer or producer, or close an admin client (their one way out)."""
    if isinstance(client, AIOKafkaAdminClient):
        await client.close()
    else:
        await client.stop()
