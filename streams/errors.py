"""Errors of producing to Kafka, one tree with ``retriable``; reads and writes nothing.

::

    TopicError                 retriable=False
    ├── TopicUnavailable       True: no leader, broker down or unreachable, request timed out
    └── TopicRejected          False: the broker refused the record (too large, not authorised)

aiokafka marks its own errors ``retriable`` (``NotLeaderForPartitionError``,
``RequestTimedOutError``, ``KafkaConnectionError``...); :func:`topic_error` keeps that verdict
and adds the producer's own timeout (a batch that expired while the broker was away), which
aiokafka does not mark but which is worth sending again.
"""

from __future__ import annotations

from aiokafka.errors import KafkaError, KafkaTimeoutError


class TopicError(Exception):
    """Base of every error of producing a record."""

    retriable: bool = False


class TopicUnavailable(TopicError):
    """The broker could not take the record now; the same send may work later."""

    retriable = True


class TopicRejected(TopicError):
    """The broker refused the record; sending it again will fail the same way."""


def topic_error(exc: BaseException, topic: str) -> TopicError:
    """The typed error for an exception raised while producing to ``topic``."""
    if isinstance(exc, TopicError):
        return exc
    message = f"producing to {topic}: {type(exc).__name__}: {exc}"
    transient = isinstance(exc, KafkaTimeoutError | TimeoutError | ConnectionError) or bool(
        isinstance(exc, KafkaError) and exc.retriable
    )
    return TopicUnavailable(message) if transient else TopicRejected(message)
