"""The retry schedule in Cassandra: records that failed for now, each with the time it is due.

Reads and writes ``<keyspace>.retry_schedule``. An agent whose third-party source stayed
unreachable adds the record it could not finish (its topic, key and exact value bytes) with the
try it will be and when; the leader's sweeper sends the due ones back to their topic and removes
them. Rows are keyed by kind (``track``, ``playlist``), item and try, so a sweeper removing the
row it re-sent never removes the next try's row written meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cassandra.query import PreparedStatement

from stores.cassandra import CassandraSession, Row
from stores.errors import DRIVER_ERRORS, store_error


@dataclass(frozen=True)
class ScheduledRetry:
    """One record waiting for its next try.

    Attributes:
        kind: What it is: ``track`` or ``playlist``.
        item_id: The track id or playlist reference.
        attempt: The try it will be when re-sent (1 for the first retry).
        due_at: When it may be re-sent (UTC).
        topic: The logical topic it goes back to (e.g. ``track-discovered.v1``).
        key: The original record's key bytes.
        payload: The original record's value bytes, unchanged.
        reason: Why the last try failed.
    """

    kind: str
    item_id: str
    attempt: int
    due_at: datetime
    topic: str
    key: bytes | None
    payload: bytes
    reason: str


class RetrySchedule:
    """Add, list and remove scheduled retries in one keyspace; open the session first."""

    def __init__(self, db: CassandraSession, keyspace: str) -> None:
        self.db = db
        self.ks = keyspace
        self._prepared: dict[str, PreparedStatement] = {}

    async def _run(self, query: str, params: Sequence[Any]) -> list[Row]:
        try:
            if query not in self._prepared:
                self._prepared[query] = await self.db.prepare(query.format(ks=self.ks))
            return await self.db.execute(self._prepared[query], params)
        except DRIVER_ERRORS as exc:
            raise store_error(exc, f"Cassandra {query.split()[0]} retry_schedule") from exc

    async def add(self, retry: ScheduledRetry) -> None:
        """Schedule ``retry`` (an upsert: scheduling the same try twice keeps one row)."""
        await self._run(
            "INSERT INTO {ks}.retry_schedule (kind, item_id, attempt, due_at, topic, item_key, "
            "payload, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                retry.kind,
                retry.item_id,
                retry.attempt,
                retry.due_at,
                retry.topic,
                retry.key,
                retry.payload,
                retry.reason,
            ),
        )

    async def pending(self, kind: str) -> list[ScheduledRetry]:
        """Every scheduled retry of ``kind``, due or not."""
        rows = await self._run(
            "SELECT kind, item_id, attempt, due_at, topic, item_key, payload, reason "
            "FROM {ks}.retry_schedule WHERE kind = ?",
            (kind,),
        )
        return [
            ScheduledRetry(
                kind=row["kind"],
                item_id=row["item_id"],
                attempt=row["attempt"],
                due_at=row["due_at"].replace(tzinfo=UTC),
                topic=row["topic"],
                key=row["item_key"],
                payload=row["payload"] or b"",
                reason=row["reason"] or "",
            )
            for row in rows
        ]

    async def due(self, kind: str, now: datetime) -> list[ScheduledRetry]:
        """The scheduled retries of ``kind`` due at ``now``, earliest first."""
        return sorted(
            (r for r in await self.pending(kind) if r.due_at <= now), key=lambda r: r.due_at
        )

    async def remove(self, retry: ScheduledRetry) -> None:
        """Remove one try's row (after it was re-sent)."""
        await self._run(
            "DELETE FROM {ks}.retry_schedule WHERE kind = ? AND item_id = ? AND attempt = ?",
            (retry.kind, retry.item_id, retry.attempt),
        )
