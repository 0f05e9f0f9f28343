"""Cassandra connections and an asyncio bridge over cassandra-driver's callback futures.

Reads the ``cassandra`` settings group; opens a driver ``Cluster``/``Session`` to the configured
contact point. The driver runs its own I/O thread; :meth:`CassandraSession.execute` hands each
result back to the event loop, so agents and request handlers await queries without blocking.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeAlias

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy
from cassandra.query import PreparedStatement, dict_factory

from config.settings import CassandraSettings

Row = dict[str, Any]
Statement: TypeAlias = str | PreparedStatement

#: Longest wait between the driver's attempts to reconnect to a node that went down. The
#: driver's default grows to ten minutes, so a node back after a two-minute outage could sit
#: unused for minutes more while every query fails with ``NoHostAvailable``; an attempt every
#: few seconds costs one TCP connect.
RECONNECT_MAX_S = 2.0


def make_cluster(settings: CassandraSettings) -> Cluster:
    """A driver cluster object for the configured node (not yet connected)."""
    profile = ExecutionProfile(
        load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=settings.local_dc),
        # One replica per write is all a single node has; raise it with the replication factor.
        consistency_level=ConsistencyLevel.LOCAL_QUORUM
        if settings.replication_factor > 1
        else ConsistencyLevel.LOCAL_ONE,
        request_timeout=settings.request_timeout_s,
        row_factory=dict_factory,
    )
    auth = None
    if settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else ""
        auth = PlainTextAuthProvider(username=settings.username, password=password)
    return Cluster(
        [settings.host],
        port=settings.port,
        protocol_version=5,  # Cassandra 5.0; needed for the vector type's native encoding
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        auth_provider=auth,
        connect_timeout=settings.request_timeout_s,
        # Never give up on the node (the policy's default stops after 64 attempts).
        reconnection_policy=ExponentialReconnectionPolicy(
            base_delay=0.5, max_delay=RECONNECT_MAX_S, max_attempts=None
        ),
    )


class CassandraSession:
    """An open session with awaitable queries; use as ``async with CassandraSession(s) as db``."""

    def __init__(self, settings: CassandraSettings) -> None:
        self.settings = settings
        self._cluster: Cluster | None = None
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """The driver session; only valid between :meth:`start` and :meth:`stop`."""
        if self._session is None:
            msg = "CassandraSession used before start()"
            raise RuntimeError(msg)
        return self._session

    async def start(self) -> None:
        """Connect; the driver's connect is blocking, so it runs in a worker thread."""
        cluster = make_cluster(self.settings)
        try:
            self._session = await asyncio.to_thread(cluster.connect)
        except BaseException:
            # A failed connect leaves the driver's threads running: close them, so that a caller
            # retrying while the server is down does not leak a cluster per try.
            await asyncio.to_thread(cluster.shutdown)
            raise
        self._cluster = cluster

    async def stop(self) -> None:
        """Close every connection of the cluster."""
        if self._cluster is not None:
            await asyncio.to_thread(self._cluster.shutdown)
        self._cluster = self._session = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def prepare(self, query: str) -> PreparedStatement:
        """Prepare a statement (vectors must be bound through prepared statements)."""
        return await asyncio.to_thread(self.session.prepare, query)

    async def execute(self, statement: Statement, params: Sequence[Any] | None = None) -> list[Row]:
        """Run one statement and return all its rows (every page)."""
        return [row async for row in self.stream(statement, params)]

    async def stream(
        self, statement: Statement, params: Sequence[Any] | None = None
    ) -> AsyncIterator[Row]:
        """Run one statement and yield its rows page by page, fetching the next page lazily."""
        loop = asyncio.get_running_loop()
        future = self.session.execute_async(statement, params)
        while True:
            page: asyncio.Future[list[Row]] = loop.create_future()

            def _ok(rows: list[Row], page: asyncio.Future[list[Row]] = page) -> None:
                loop.call_soon_threadsafe(_settle, page, rows, None)

            def _err(exc: BaseException, page: asyncio.Future[list[Row]] = page) -> None:
                loop.call_soon_threadsafe(_settle, page, None, exc)

            future.add_callbacks(_ok, _err)
            for row in await page:
                yield row
            if not future.has_more_pages:
                return
            # Callbacks fire once per page; clear them before asking for the next one.
            future.clear_callbacks()
            future.start_fetching_next_page()


def _settle(
    page: asyncio.Future[list[Row]], rows: list[Row] | None, exc: BaseException | None
) -> None:
    if page.done():
        return
    if exc is not None:
        page.set_exception(exc)
    else:
        page.set_result(list(rows or []))
