"""What an agent does with one input: finish it, or park it with a reason; read and write nothing.

Every work function returns ``None`` when its input is done (stored, settled, or handed to the
retry schedule) or a :class:`Parked` saying why the input can never be processed, which the
agent's loop sends to the dead-letter topic. :func:`guarded` runs a work function the way every
agent does: faults of our own servers are retried in place for as long as they last (the agent
holds its partition), anything unexpected is parked rather than crashing the agent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from streams.resources import Resources

logger = logging.getLogger(__name__)

#: Header of a record re-sent by the retry schedule: which scheduled try it is (1, 2, ...).
ATTEMPT_HEADER = "spotrec-attempt"


@dataclass(frozen=True)
class Parked:
    """An input that can never be processed, and why (the dead letter's reason).

    Attributes:
        reason: What was wrong with it, for people.
        error: The exception behind it, if any (its class goes into the dead letter).
        attempts: How many times it was tried (more than 1 after scheduled retries).
    """

    reason: str
    error: BaseException | None = None
    attempts: int = 1


def unexpected(exc: BaseException) -> str:
    """The reason for an error no branch of the agent expected."""
    return f"unexpected {type(exc).__name__}: {exc}"


def attempt_of(headers: Mapping[str, bytes] | Sequence[tuple[str, bytes]] | None) -> int:
    """The scheduled try a record is (0 for a record never re-sent), from its headers."""
    if not headers:
        return 0
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        if name == ATTEMPT_HEADER:
            try:
                return max(int(bytes(value).decode("ascii")), 0)
            except (UnicodeDecodeError, ValueError):
                return 0
    return 0


async def guarded(
    res: Resources, agent: str, work: Callable[[], Awaitable[Parked | None]]
) -> Parked | None:
    """Run ``work`` for ``agent``: retried in place on our servers' faults, parked if it breaks."""
    try:
        return await res.own(agent, work)
    except Exception as exc:
        logger.exception("%s failed unexpectedly", agent)
        return Parked(unexpected(exc), exc)
