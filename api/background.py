"""Stopping the query node's background tasks (followers, view builders, connectors).

Reads and writes nothing: cancels a task and waits for it to end, so that whatever it held
(a consumer, a session) is released before the caller closes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (none: nothing to do) and wait until it has ended."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
