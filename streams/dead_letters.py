"""Sends a message an agent could not process to ``dead-letters.v1``, whole, with why.

Reads the failed event; writes one :class:`~schemas.dead_letters.DeadLetterV2` keyed like the
original: the exact key, value and header bytes, the timestamp, where it was read, the agent,
the error class, the reason (signed URLs scrubbed) and the attempts, so ``spotrec dead-letters
redrive`` can send it back unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from faust.types import EventT

from schemas.dead_letters import dead_letter_record
from sources.redaction import scrub_urls
from streams import metrics
from streams.topics import dead_letters_topic

logger = logging.getLogger(__name__)


def unexpected(exc: BaseException) -> str:
    """The dead-letter reason for an error no branch of the agent expected."""
    return f"unexpected {type(exc).__name__}: {exc}"


def _headers(
    raw: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None,
) -> list[tuple[str, bytes]]:
    items = raw.items() if isinstance(raw, Mapping) else (raw or ())
    return [(str(name), value if isinstance(value, bytes) else b"") for name, value in items]


async def dead_letter(
    event: EventT[Any],
    reason: str,
    agent: str,
    *,
    exc: BaseException | None = None,
    attempts: int = 1,
) -> None:
    """Park ``event`` on the dead-letter topic; the agent then moves on to the next event.

    Args:
        event: The event that could not be processed.
        reason: Why, for people: what was wrong with it.
        agent: The agent's name.
        exc: The exception that made it fail, if any (its class is recorded).
        attempts: How many times processing was tried.
    """
    message = event.message
    key = message.key if isinstance(message.key, bytes) else None
    reason = scrub_urls(reason) or (type(exc).__name__ if exc else "no reason given")
    record = dead_letter_record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        reason=reason,
        agent=agent,
        value=message.value if isinstance(message.value, bytes) else b"",
        key=key,
        headers=_headers(message.headers),
        timestamp_ms=round(message.timestamp * 1000) if message.timestamp else None,
        error=type(exc).__name__ if exc is not None else None,
        attempts=attempts,
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
    metrics.dead_lettered(agent, exc)
