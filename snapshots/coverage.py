"""How much of the catalogue a model version covers: what makes a snapshot complete.

Reads ``<keyspace>.model_versions`` (which versions exist), the track ids of every version's
``embeddings`` rows and the tracks whose audio is known to be unusable (``tracks`` through the
SAI index on ``audio_status``); writes nothing.

After a model change, vectors of the new version are written beside the old ones while
``spotrec reindex --from tracks`` runs. A track is *missing* from the new version while it has a
vector of another version and none of this one, unless its audio turned out unusable on this
pass (``unavailable``: it would otherwise hold back the switch for ever). A track whose audio
only ``failed`` for now is not excused: the retry schedule tries it again until it is indexed or,
after ``SPOTREC_RETRY_LIMIT`` tries, recorded ``unavailable``. A snapshot built with nothing
missing is complete; query nodes switch model versions only to a complete snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from snapshots.source import PAGE_ROWS, checked_keyspace
from stores.cassandra import CassandraSession
from stores.migrations import EMBEDDING_BUCKETS

#: Statuses that excuse a track from the new version: its audio cannot be had or used. ``failed``
#: is not one: such a track is retried on a schedule until it is indexed or given up on.
EXCUSED = ("unavailable",)


@dataclass(frozen=True)
class Coverage:
    """Tracks with a vector of one model version, and tracks still without one."""

    model_version: str
    have: int
    missing: int

    @property
    def total(self) -> int:
        """Tracks the model version should cover."""
        return self.have + self.missing

    @property
    def complete(self) -> bool:
        """Whether nothing indexed under another version is missing from this one."""
        return self.missing == 0


async def track_ids(db: CassandraSession, keyspace: str, model_version: str) -> set[str]:
    """The ids of the tracks with a vector of ``model_version``."""
    ks = checked_keyspace(keyspace)
    stmt = await db.prepare(
        f"SELECT track_id FROM {ks}.embeddings WHERE model_version = ? AND bucket = ?"
    )
    stmt.fetch_size = PAGE_ROWS * 10  # ids only: ten times the rows of a vector page
    found: set[str] = set()

    async def read_bucket(bucket: int) -> None:
        async for row in db.stream(stmt, (model_version, bucket)):
            found.add(row["track_id"])

    await asyncio.gather(*(read_bucket(b) for b in range(EMBEDDING_BUCKETS)))
    return found


async def model_versions(db: CassandraSession, keyspace: str) -> list[str]:
    """Every model version that ever had a vector written, sorted."""
    ks = checked_keyspace(keyspace)
    rows = await db.execute(f"SELECT model_version FROM {ks}.model_versions")
    return sorted(row["model_version"] for row in rows)


async def indexed_elsewhere(db: CassandraSession, keyspace: str, model_version: str) -> set[str]:
    """The ids of the tracks with a vector of any model version but ``model_version``."""
    found: set[str] = set()
    for other in await model_versions(db, keyspace):
        if other != model_version:
            found |= await track_ids(db, keyspace, other)
    return found


async def measure(
    db: CassandraSession,
    keyspace: str,
    model_version: str,
    have: Iterable[str] | None = None,
    others: set[str] | None = None,
) -> Coverage:
    """The coverage of ``model_version``.

    Args:
        db: An open session.
        keyspace: The keyspace holding the tables.
        model_version: The model version to measure.
        have: The ids of its vectors when the caller read them already (the indexer did).
        others: The ids with a vector of another version (:func:`indexed_elsewhere`), when
            the caller measures again and again while only this version is being written.
    """
    ks = checked_keyspace(keyspace)
    present = set(have) if have is not None else await track_ids(db, ks, model_version)
    if others is None:
        others = await indexed_elsewhere(db, ks, model_version)
    candidates = others - present
    if candidates:
        # Usually few: the SAI index reads only the excused rows, not the whole table.
        stmt = await db.prepare(f"SELECT track_id FROM {ks}.tracks WHERE audio_status = ?")
        for status in EXCUSED:
            async for row in db.stream(stmt, (status,)):
                candidates.discard(row["track_id"])
    return Coverage(model_version, have=len(present), missing=len(candidates))
