"""The retry policies: one for the project's own servers, one for third-party APIs.

Reads and writes nothing; decides whether and when a failed call is tried again (tenacity).

- :func:`own_servers`: Kafka, Cassandra and S3. A retriable fault (``StoreError`` or
  ``TopicError`` with ``retriable``, or a raw driver exception :func:`own_server_fault` knows) is
  retried **for as long as it lasts**, with capped exponential back-off and jitter: an outage of
  one of our servers stalls the pipeline, which resumes by itself, and never turns good records
  into dead letters.
- :func:`third_party`: Deezer, Spotify, the CDNs. A retriable ``SourceError`` is retried a
  bounded number of times; then the caller hands the work to the retry schedule, so one source
  that stays unreachable never holds a partition for everything behind it.

Every other error is raised at once: retrying a permanent error only delays its dead letter.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_never,
)
from tenacity.wait import wait_base

from config.settings import RetrySettings
from sources.errors import SourceError
from stores.errors import StoreError, is_transient
from streams import metrics
from streams.errors import TopicError
from streams.stats import WorkerStats

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest wait between two in-place tries of a third-party call.
THIRD_PARTY_MAX_BACKOFF_S = 30.0
#: Exponents beyond this would overflow a float; the cap is reached long before anyway.
_MAX_EXPONENT = 60


def jittered_delay(attempt: int, base_s: float, cap_s: float) -> float:
    """Seconds to wait after failed try number ``attempt`` (1 for the first failure).

    The ceiling doubles per attempt from ``base_s`` up to ``cap_s``; the delay is drawn between
    half the ceiling and the ceiling ("equal jitter"), so that workers failing together do not
    retry together, yet never hammer a server with near-zero waits.
    """
    ceiling = min(cap_s, base_s * 2.0 ** min(max(attempt - 1, 0), _MAX_EXPONENT))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class wait_jittered(wait_base):  # lower case, as tenacity names its wait strategies
    """tenacity wait strategy for :func:`jittered_delay`."""

    def __init__(self, base_s: float, cap_s: float) -> None:
        self.base_s = base_s
        self.cap_s = cap_s

    def __call__(self, retry_state: RetryCallState) -> float:
        """The delay after the try ``retry_state`` describes."""
        return jittered_delay(retry_state.attempt_number, self.base_s, self.cap_s)


def own_server_fault(exc: BaseException) -> bool:
    """Whether ``exc`` says one of our own servers is unavailable for now."""
    if isinstance(exc, StoreError | TopicError):
        return exc.retriable
    if isinstance(exc, KafkaError):
        return bool(exc.retriable)
    if isinstance(exc, SourceError) or not isinstance(exc, Exception):
        return False
    return is_transient(exc)


def third_party_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is a third-party failure worth another try (network, 5xx, throttled)."""
    return isinstance(exc, SourceError) and exc.retriable


def _log_retry(
    what: str, stats: WorkerStats | None, level: int
) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        if stats is not None:
            stats.in_place_retries[what] += 1
        metrics.retried(what)
        logger.log(
            level,
            "%s failed (try %d): %s; retrying in %.1f s",
            what,
            state.attempt_number,
            exc,
            delay,
        )

    return before_sleep


def own_servers(
    settings: RetrySettings, what: str, stats: WorkerStats | None = None
) -> AsyncRetrying:
    """Unbounded retries of a call to Kafka, Cassandra or S3 while it fails for now."""
    return AsyncRetrying(
        retry=retry_if_exception(own_server_fault),
        stop=stop_never,
        wait=wait_jittered(settings.backoff_s, settings.max_backoff_s),
        before_sleep=_log_retry(what, stats, logging.WARNING),
        reraise=True,
    )


def third_party(
    retries: int, backoff_s: float, what: str, stats: WorkerStats | None = None
) -> AsyncRetrying:
    """At most ``retries`` more tries of a third-party call that failed for now."""
    return AsyncRetrying(
        retry=retry_if_exception(third_party_fault),
        stop=stop_after_attempt(retries + 1),
        wait=wait_jittered(backoff_s, THIRD_PARTY_MAX_BACKOFF_S),
        before_sleep=_log_retry(what, stats, logging.INFO),
        reraise=True,
    )


async def retried(policy: AsyncRetrying, call: Callable[[], Awaitable[T]]) -> T:
    """``await call()`` under ``policy``: a fresh awaitable per try."""

    # A coroutine function, so that tenacity awaits each try (it calls anything else plainly).
    async def attempt() -> T:
        return await call()

    result: T = await policy(attempt)
    return result
