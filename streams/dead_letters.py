"""Sends a message an agent could not process to ``dead-letters.v1``, with where it was and why.

Reads the failed event; writes one :class:`~schemas.errors.DeadLetterV1` keyed like the original.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from faust.types import EventT

from schemas.errors import DeadLetterV1
from streams.topics import dead_letters_topic

logger = logging.getLogger(__name__)


def unexpected(exc: BaseException) -> str:
    """The dead-letter reason for an error no branch of the agent expected."""
    return f"unexpected {type(exc).__name__}: {exc}"


async def dead_letter(event: EventT[Any], reason: str, agent: str) -> None:
    """Park ``event`` on the dead-letter topic; the agent then moves on to the next event."""
    message = event.message
    value = message.value if isinstance(message.value, bytes) else b""
    key = message.key if isinstance(message.key, bytes) else None
    record = DeadLetterV1(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        reason=reason,
        payload=value.decode("utf-8", errors="replace"),
        key=key.decode("utf-8", errors="replace") if key is not None else None,
        agent=agent,
        failed_at=time.time(),
    )
    logger.warning(
        "%s: dead-lettered %s[%d]@%d: %s",
        agent,
        message.topic,
        message.partition,
        message.offset,
        reason,
    )
    await dead_letters_topic.send(key=key, value=record.dumps())
