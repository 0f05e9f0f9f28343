"""A named lease in Cassandra, taken with lightweight transactions and kept alive by a TTL.

Reads and writes one row of ``<keyspace>.leases``. ``INSERT ... IF NOT EXISTS USING TTL``
admits one owner; renewals and the release are conditional on ``owner``; a holder that crashes
stops renewing and its row expires after the TTL. Used so that exactly one indexer builds at a
time, however many workers run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from contextlib import suppress
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from cassandra import ConsistencyLevel, WriteTimeout
from cassandra.query import PreparedStatement

from snapshots.errors import LeaseHeld, LeaseLost
from snapshots.source import checked_keyspace
from stores.cassandra import CassandraSession

logger = logging.getLogger(__name__)


def default_owner() -> str:
    """An owner id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """One named lease; ``async with Lease(...)`` holds it and renews it in the background.

    Example::

        async with Lease(db, keyspace, "indexer", ttl_s=60) as lease:
            built = await build_snapshot(...)
            lease.check()  # do not publish if the lease was lost meanwhile
            await store.publish(built)

    Entering raises :class:`LeaseHeld` when another owner holds the lease.
    """

    def __init__(
        self,
        db: CassandraSession,
        keyspace: str,
        name: str,
        *,
        owner: str | None = None,
        ttl_s: int = 60,
        renew_every_s: float | None = None,
    ) -> None:
        """Describe a lease; nothing is sent until :meth:`acquire` or ``async with``.

        Args:
            db: An open session.
            keyspace: The keyspace holding ``leases``.
            name: The lease's name (e.g. ``"indexer"``).
            owner: Our owner id (default: :func:`default_owner`).
            ttl_s: Seconds the lease lives without a renewal (whole seconds, at least 2).
                Cassandra expires cells on whole-second boundaries, so a lease written at
                ``t`` lasts between ``ttl_s - 1`` and ``ttl_s`` seconds.
            renew_every_s: Renewal period while held with ``async with`` (default: a third of
                ``ttl_s - 1``, so two renewals can fail before it lapses).
        """
        if ttl_s < 2:
            msg = f"ttl_s must be at least 2 seconds, got {ttl_s}"
            raise ValueError(msg)
        self.db = db
        self.keyspace = checked_keyspace(keyspace)
        self.name = name
        self.owner = owner or default_owner()
        self.ttl_s = int(ttl_s)
        self.renew_every_s = renew_every_s if renew_every_s is not None else (ttl_s - 1) / 3
        self._acquired_at: datetime | None = None
        self._renewed = 0.0  # monotonic time of the last successful acquire or renew
        self._lost = False
        self._renewer: asyncio.Task[None] | None = None
        self._stmts: dict[str, PreparedStatement] = {}

    @property
    def held(self) -> bool:
        """Whether we hold the lease, as far as our own clock can tell."""
        return (
            self._acquired_at is not None
            and not self._lost
            # The guaranteed lifetime is one second short of the TTL (see __init__).
            and time.monotonic() - self._renewed < self.ttl_s - 1
        )

    def check(self) -> None:
        """Raise unless we still hold the lease; call it before an irreversible step.

        Raises:
            LeaseLost: The lease was lost, released, or not renewed within its TTL.
        """
        if not self.held:
            msg = f"lease {self.name!r} is no longer held by {self.owner}"
            raise LeaseLost(msg)

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; returns whether we now hold it."""
        now = datetime.now(UTC)
        stmt = await self._stmt(
            "INSERT INTO {ks}.leases (name, owner, acquired_at) VALUES (?, ?, ?) "
            "IF NOT EXISTS USING TTL ?"
        )
        if not await self._cas(stmt, (self.name, self.owner, now, self.ttl_s)):
            return False
        self._acquired_at, self._renewed, self._lost = now, time.monotonic(), False
        logger.info("lease %r acquired by %s for %d s", self.name, self.owner, self.ttl_s)
        return True

    async def renew(self) -> None:
        """Extend the lease by its TTL from now.

        Raises:
            LeaseLost: We do not hold the lease (it expired, or another owner took it).
        """
        if self._acquired_at is None:
            msg = f"lease {self.name!r} renewed by {self.owner} without being acquired"
            raise LeaseLost(msg)
        # Both cells are rewritten: a TTL applies per cell, and the row lives while any does.
        stmt = await self._stmt(
            "UPDATE {ks}.leases USING TTL ? SET owner = ?, acquired_at = ? "
            "WHERE name = ? IF owner = ?"
        )
        started = time.monotonic()
        params = (self.ttl_s, self.owner, self._acquired_at, self.name, self.owner)
        if not await self._cas(stmt, params):
            self._lost = True
            msg = f"lease {self.name!r} expired or was taken over before {self.owner} renewed it"
            raise LeaseLost(msg)
        self._renewed = started

    async def release(self) -> bool:
        """Give the lease up; returns False when it was no longer ours."""
        stmt = await self._stmt("DELETE FROM {ks}.leases WHERE name = ? IF owner = ?")
        released = await self._cas(stmt, (self.name, self.owner))
        self._acquired_at = None
        if released:
            logger.info("lease %r released by %s", self.name, self.owner)
        return released

    async def holder(self) -> str | None:
        """The current owner of the lease (a serial read, so it sees every committed change)."""
        stmt = await self._stmt(
            "SELECT owner FROM {ks}.leases WHERE name = ?", ConsistencyLevel.SERIAL
        )
        rows = await self.db.execute(stmt, (self.name,))
        return rows[0]["owner"] if rows else None

    async def __aenter__(self) -> Self:
        if not await self.acquire():
            raise LeaseHeld(self.name, await self.holder(), self.ttl_s)
        self._renewer = asyncio.create_task(self._keep_renewed(), name=f"lease-{self.name}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        await self.release()

    async def _keep_renewed(self) -> None:
        while True:
            await asyncio.sleep(self.renew_every_s)
            try:
                await self.renew()
            except LeaseLost:
                logger.warning("lease %r lost by %s", self.name, self.owner)
                return
            except Exception:  # a failed renewal is retried until the TTL runs out
                logger.warning("renewing lease %r failed; retrying", self.name, exc_info=True)

    async def _stmt(self, query: str, consistency: Any = None) -> PreparedStatement:
        if query not in self._stmts:
            stmt = await self.db.prepare(query.format(ks=self.keyspace))
            # Paxos across every data centre: the lease is global, not per data centre.
            stmt.serial_consistency_level = ConsistencyLevel.SERIAL
            if consistency is not None:
                stmt.consistency_level = consistency
            self._stmts[query] = stmt
        return self._stmts[query]

    async def _cas(self, stmt: PreparedStatement, params: tuple[Any, ...]) -> bool:
        try:
            rows = await self.db.execute(stmt, params)
        except WriteTimeout:
            # A timed-out lightweight transaction may or may not have applied; a serial read
            # tells which.
            holder = await self.holder()
            applied = holder == self.owner if "DELETE" not in stmt.query_string else holder is None
            logger.warning("lease %r: transaction timed out; applied=%s", self.name, applied)
            return applied
        return bool(rows and rows[0].get("[applied]"))
