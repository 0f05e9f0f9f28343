"""The query node's optional Cassandra connection, opened in the background and retried.

Reads the ``cassandra`` settings group; opens a session for the one route that needs it
(``/tracks/unavailable``). Recommendations are served from snapshots alone, so a node starts
and serves without Cassandra: the connection is tried at start and then again with capped
exponential back-off and jitter until it opens, and the route answers 503 meanwhile. Once open,
the driver reconnects by itself after an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cassandra import CoordinationFailure, OperationTimedOut, Timeout, Unavailable
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from api.background import cancel_and_wait
from api.health import Health, describe
from config.settings import Settings
from stores.cassandra import CassandraSession
from stores.tracks import TrackStore

logger = logging.getLogger(__name__)

#: Seconds before the first reconnection; doubled each time up to the configured cap.
BACKOFF_FIRST_S = 0.5

#: What the driver raises when Cassandra cannot be reached or does not answer in time.
UNREACHABLE: tuple[type[Exception], ...] = (
    NoHostAvailable,
    OperationTimedOut,
    Timeout,
    Unavailable,
    CoordinationFailure,
    ConnectionException,
    OSError,
)


class CassandraUnavailable(RuntimeError):
    """Cassandra cannot be reached now; the message says since when and why."""


class CassandraConnector:
    """Opens a session in the background and hands out the track store once it is open."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.health = Health()
        self._session: CassandraSession | None = None
        self._store: TrackStore | None = None
        self._task: asyncio.Task[None] | None = None
        #: Set once the first connection attempt has ended, however it ended.
        self._tried = asyncio.Event()

    def start(self) -> None:
        """Begin connecting; returns at once."""
        self._task = asyncio.create_task(self._connect(), name="cassandra-connector")

    async def stop(self) -> None:
        """Stop trying and close the session if it was opened."""
        await cancel_and_wait(self._task)
        if self._session is not None:
            await self._session.stop()
        self._session = self._store = None

    async def store(self) -> TrackStore:
        """The track store, or :class:`CassandraUnavailable` while no session is open.

        A request that comes while the first connection attempt is still under way waits for
        it (at most a request timeout).
        """
        if not self._tried.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.cassandra.request_timeout_s):
                    await self._tried.wait()
        if self._store is None:
            error = self.health.last_error or "still connecting"
            msg = f"Cassandra is not reachable yet ({error}); try again shortly"
            raise CassandraUnavailable(msg)
        return self._store

    async def _connect(self) -> None:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(Exception),  # a wrong password too: never give up
            wait=wait_exponential_jitter(
                multiplier=BACKOFF_FIRST_S,
                jitter=BACKOFF_FIRST_S,
                max=self.settings.api.follower_backoff_max_s,
            ),
            before_sleep=self._failed,
        ):
            with attempt:
                session = CassandraSession(self.settings.cassandra)
                await session.start()
        self._session = session
        self._store = TrackStore(session, self.settings.cassandra.keyspace)
        self.health.succeeded()
        self._tried.set()
        logger.info("connected to Cassandra at %s", self.settings.cassandra.host)

    def _failed(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is None:  # pragma: no cover  # tenacity calls this only after a failure
            return
        self.health.failed(exc)
        self._tried.set()
        logger.warning(
            "cannot connect to Cassandra: %s (attempt %d; trying again in %.1f s)",
            describe(exc),
            self.health.failures,
            state.upcoming_sleep,
        )
