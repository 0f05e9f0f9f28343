"""One track's pipeline state as Cassandra holds it, and the pipeline's counts by status.

Reads ``<keyspace>.tracks``, ``<keyspace>.embeddings`` and ``<keyspace>.model_versions``;
writes nothing. Used by the query node's ``/tracks/{id}``, ``/tracks/{id}/audio`` and
``/status``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import get_args

from cassandra.query import PreparedStatement

from stores.cassandra import CassandraSession
from stores.tracks import AudioStatus, bucket_of

#: Statuses counted by :meth:`TrackStateReader.counts` (``pending`` is never written today).
COUNTED: tuple[str, ...] = tuple(s for s in get_args(AudioStatus) if s != "pending")


@dataclass(frozen=True)
class TrackState:
    """Where one track stands in the pipeline."""

    track_id: str
    name: str | None
    artists: list[str]
    album: str | None
    duration_ms: int | None
    isrc: str | None
    source: str | None
    #: ``discovered`` until the audio agent records a status.
    status: str
    reason: str | None
    audio_source: str | None
    #: The track's audio locators (``deezer:<id>``, ``isrc:<ISRC>``, ``file:<path>``, ``url:``).
    audio_refs: list[str]
    discovered_at: datetime | None
    status_at: datetime | None
    #: Model versions a vector of the track is stored for.
    model_versions: list[str]


class TrackStateReader:
    """Prepared reads over one keyspace; the session must be open."""

    def __init__(self, db: CassandraSession, keyspace: str) -> None:
        self.db = db
        self.ks = keyspace
        self._prepared: dict[str, PreparedStatement] = {}

    async def _stmt(self, query: str) -> PreparedStatement:
        if query not in self._prepared:
            self._prepared[query] = await self.db.prepare(query.format(ks=self.ks))
        return self._prepared[query]

    async def model_versions(self) -> list[str]:
        """Every model version a vector was ever written for (a small table)."""
        rows = await self.db.execute(f"SELECT model_version FROM {self.ks}.model_versions")
        return sorted(row["model_version"] for row in rows)

    async def state(self, track_id: str) -> TrackState | None:
        """The track's state, or ``None`` when Cassandra knows no such track."""
        stmt = await self._stmt(
            "SELECT track_id, name, artists, album, duration_ms, isrc, source, audio_ref, "
            "audio_status, audio_error, audio_source, discovered_at, status_at "
            "FROM {ks}.tracks WHERE track_id = ?"
        )
        rows = await self.db.execute(stmt, (track_id,))
        if not rows:
            return None
        row = rows[0]
        vectors = await self.versions_of(track_id)
        return TrackState(
            track_id=row["track_id"],
            name=row["name"],
            artists=list(row["artists"] or []),
            album=row["album"],
            duration_ms=row["duration_ms"],
            isrc=row["isrc"],
            source=row["source"],
            status=row["audio_status"] or "discovered",
            reason=row["audio_error"],
            audio_source=row["audio_source"],
            audio_refs=(row["audio_ref"] or "").split(),
            discovered_at=row["discovered_at"],
            status_at=row["status_at"],
            model_versions=vectors,
        )

    async def versions_of(self, track_id: str) -> list[str]:
        """The model versions a vector of the track is stored for."""
        stmt = await self._stmt(
            "SELECT track_id FROM {ks}.embeddings "
            "WHERE model_version = ? AND bucket = ? AND track_id = ?"
        )
        versions = await self.model_versions()
        found = await asyncio.gather(
            *(self.db.execute(stmt, (v, bucket_of(track_id), track_id)) for v in versions)
        )
        return [v for v, rows in zip(versions, found, strict=True) if rows]

    async def counts(self) -> dict[str, int]:
        """How many tracks are in each recorded status (through the SAI index on the status)."""
        stmt = await self._stmt("SELECT COUNT(*) AS n FROM {ks}.tracks WHERE audio_status = ?")
        found = await asyncio.gather(*(self.db.execute(stmt, (s,)) for s in COUNTED))
        return {s: int(rows[0]["n"]) for s, rows in zip(COUNTED, found, strict=True)}
