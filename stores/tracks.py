"""Tracks and their vectors in Cassandra: what the agents write and the API lists.

Reads and writes ``<keyspace>.tracks``, ``<keyspace>.embeddings`` and
``<keyspace>.model_versions``. Every write is an upsert keyed by track id (and model version),
so a replayed event rewrites the same row: at-least-once delivery never duplicates a track.
A vector goes to the ``embeddings`` column of its length, and the model version's row records
that length. Driver errors leave as ``stores.errors`` types (``StoreUnavailable`` is retriable).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cassandra.query import PreparedStatement

from schemas.features import FeaturesExtractedV1
from schemas.tracks import TrackDiscoveredV1
from stores.cassandra import CassandraSession, Row
from stores.errors import DRIVER_ERRORS, store_error
from stores.migrations import EMBEDDING_BUCKETS, EMBEDDING_COLUMNS, embedding_column

#: Where a track stands. ``unavailable``: no audio could be had, for a reason that retrying
#: will not change; ``failed``: a transient failure, retried when the track is ingested again.
AudioStatus = Literal["pending", "stored", "extracted", "unavailable", "failed"]


def bucket_of(track_id: str) -> int:
    """The embeddings partition bucket of a track: stable across processes and restarts."""
    return zlib.crc32(track_id.encode()) % EMBEDDING_BUCKETS


@dataclass(frozen=True)
class TrackRow:
    """A track's metadata and status as stored."""

    track_id: str
    name: str | None
    artists: list[str]
    album: str | None
    audio_status: str | None
    audio_error: str | None


class TrackStore:
    """Prepared statements over one keyspace; open the session first."""

    def __init__(self, db: CassandraSession, keyspace: str) -> None:
        self.db = db
        self.ks = keyspace
        self._prepared: dict[str, PreparedStatement] = {}

    async def _stmt(self, query: str) -> PreparedStatement:
        # Prepared once per store: vectors must be bound through prepared statements anyway.
        if query not in self._prepared:
            try:
                self._prepared[query] = await self.db.prepare(query.format(ks=self.ks))
            except DRIVER_ERRORS as exc:
                raise store_error(exc, "Cassandra prepare") from exc
        return self._prepared[query]

    async def _execute(self, stmt: PreparedStatement, params: Sequence[Any]) -> list[Row]:
        try:
            return await self.db.execute(stmt, params)
        except DRIVER_ERRORS as exc:
            raise store_error(exc, f"Cassandra {stmt.query_string.split()[0]}") from exc

    async def _stream(self, stmt: PreparedStatement, params: Sequence[Any]) -> AsyncIterator[Row]:
        try:
            async for row in self.db.stream(stmt, params):
                yield row
        except DRIVER_ERRORS as exc:
            raise store_error(exc, f"Cassandra {stmt.query_string.split()[0]}") from exc

    async def upsert_track(
        self,
        *,
        track_id: str,
        name: str,
        artists: Sequence[str],
        album: str | None,
        duration_ms: int | None,
        isrc: str | None,
        source: str,
        source_ref: str,
        audio_refs: Sequence[str],
    ) -> None:
        """Write a track's metadata, leaving its status as it is."""
        stmt = await self._stmt(
            "UPDATE {ks}.tracks SET name = ?, artists = ?, album = ?, duration_ms = ?, isrc = ?, "
            "source = ?, source_ref = ?, audio_ref = ?, updated_at = toTimestamp(now()), "
            "discovered_at = toTimestamp(now()) WHERE track_id = ?"
        )
        await self._execute(
            stmt,
            (
                name,
                list(artists),
                album,
                duration_ms,
                isrc,
                source,
                source_ref,
                " ".join(audio_refs),
                track_id,
            ),
        )

    async def upsert_discovered(self, track: TrackDiscoveredV1) -> None:
        """Write the metadata a ``track-discovered.v1`` record carries."""
        await self.upsert_track(
            track_id=track.track_id,
            name=track.name,
            artists=track.artists,
            album=track.album,
            duration_ms=track.duration_ms,
            isrc=track.isrc,
            source=track.source,
            source_ref=track.source_ref,
            audio_refs=track.audio_refs,
        )

    async def set_status(
        self,
        track_id: str,
        status: AudioStatus,
        *,
        error: str | None = None,
        audio_source: str | None = None,
    ) -> None:
        """Record where a track stands and, when it failed, why."""
        stmt = await self._stmt(
            "UPDATE {ks}.tracks SET audio_status = ?, audio_error = ?, audio_source = ?, "
            "status_at = toTimestamp(now()) WHERE track_id = ?"
        )
        await self._execute(stmt, (status, error, audio_source, track_id))

    async def status(self, track_id: str) -> str | None:
        """The track's status, or ``None`` if the track is unknown."""
        stmt = await self._stmt("SELECT audio_status FROM {ks}.tracks WHERE track_id = ?")
        rows = await self._execute(stmt, (track_id,))
        return rows[0]["audio_status"] if rows else None

    async def settled(self, track_id: str, model_version: str) -> bool:
        """Whether the pipeline has nothing left to do for the track under ``model_version``.

        Settled: its audio is known to be unusable, or it has a vector of that model version.
        A track extracted only by another model version is not: after a model change it goes
        through the pipeline again, and its new vector is written beside the old one.
        """
        status = await self.status(track_id)
        if status == "unavailable":
            return True
        return status == "extracted" and await self.has_embedding(track_id, model_version)

    async def with_status(self, status: AudioStatus, offset: int, limit: int) -> list[TrackRow]:
        """A page of the tracks in one status (through the SAI index on ``audio_status``)."""
        stmt = await self._stmt(
            "SELECT track_id, name, artists, album, audio_status, audio_error "
            "FROM {ks}.tracks WHERE audio_status = ?"
        )
        page: list[TrackRow] = []
        seen = 0
        async for row in self._stream(stmt, (status,)):
            if seen >= offset:
                page.append(_row(row))
                if len(page) == limit:
                    break
            seen += 1
        return page

    async def rows(self, track_ids: Sequence[str]) -> list[TrackRow]:
        """The stored rows of the given tracks (unknown ids are left out)."""
        if not track_ids:
            return []
        stmt = await self._stmt(
            "SELECT track_id, name, artists, album, audio_status, audio_error "
            "FROM {ks}.tracks WHERE track_id IN ?"
        )
        return [_row(row) for row in await self.db.execute(stmt, (list(track_ids),))]

    async def has_embedding(self, track_id: str, model_version: str) -> bool:
        """Whether a vector of this model version is stored for the track."""
        stmt = await self._stmt(
            "SELECT track_id FROM {ks}.embeddings "
            "WHERE model_version = ? AND bucket = ? AND track_id = ?"
        )
        rows = await self._execute(stmt, (model_version, bucket_of(track_id), track_id))
        return bool(rows)

    async def upsert_embedding(
        self,
        *,
        track_id: str,
        model_version: str,
        embedding: Sequence[float],
        tags: dict[str, float],
        audio_source: str,
        audio_sha256: str,
        extracted_at: datetime,
    ) -> None:
        """Store one vector; :meth:`store_features` stores a batch and moves the mark.

        Raises:
            ValueError: No column holds vectors of this length.
        """
        column = embedding_column(len(embedding))
        stmt = await self._stmt(
            f"INSERT INTO {{ks}}.embeddings (model_version, bucket, track_id, {column}, tags, "
            "audio_source, audio_sha256, extracted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        await self._execute(
            stmt,
            (
                model_version,
                bucket_of(track_id),
                track_id,
                [float(v) for v in embedding],
                tags,
                audio_source,
                audio_sha256,
                extracted_at,
            ),
        )

    async def store_vectors(self, records: Sequence[FeaturesExtractedV1]) -> None:
        """Store a batch of vectors and move their model versions' change marks.

        The model version's change mark moves after the vectors are written and before any
        track is marked extracted: a crash in between leaves the tracks unsettled, so the
        replayed events complete the batch and move the mark again, and the indexer never
        misses a vector.

        Raises:
            ValueError: The vectors of one model version differ in length, or no column holds
                vectors of their length; nothing was written.
        """
        dims: dict[str, int] = {}
        for r in records:
            dim = dims.setdefault(r.model_version, len(r.embedding))
            if len(r.embedding) != dim:
                msg = (
                    f"model version {r.model_version}: vectors of lengths {dim} and "
                    f"{len(r.embedding)} in one batch (track {r.track_id})"
                )
                raise ValueError(msg)
        for dim in dims.values():
            embedding_column(dim)
        await asyncio.gather(
            *(
                self.upsert_embedding(
                    track_id=r.track_id,
                    model_version=r.model_version,
                    embedding=r.embedding,
                    tags={str(name): float(p) for name, p in r.tags},
                    audio_source=r.audio_source,
                    audio_sha256=r.audio_sha256,
                    extracted_at=datetime.fromtimestamp(r.extracted_at, UTC),
                )
                for r in records
            )
        )
        for model_version, dim in dims.items():
            await self.touch_model_version(model_version, dim)

    async def mark_extracted(self, records: Sequence[FeaturesExtractedV1]) -> None:
        """Settle the tracks of stored vectors (status ``extracted``)."""
        await asyncio.gather(
            *(
                self.set_status(r.track_id, "extracted", audio_source=r.audio_source)
                for r in records
            )
        )

    async def store_features(self, records: Sequence[FeaturesExtractedV1]) -> None:
        """Store a batch of vectors as ``features-extracted.v1`` carries them, and settle them.

        Raises:
            ValueError: As :meth:`store_vectors`.
        """
        await self.store_vectors(records)
        await self.mark_extracted(records)

    async def features(self, track_id: str, model_version: str) -> FeaturesExtractedV1 | None:
        """The stored vector of a track as ``features-extracted.v1`` carries it, if any."""
        columns = ", ".join(EMBEDDING_COLUMNS.values())
        stmt = await self._stmt(
            f"SELECT {columns}, tags, audio_source, audio_sha256, extracted_at "
            "FROM {ks}.embeddings WHERE model_version = ? AND bucket = ? AND track_id = ?"
        )
        rows = await self._execute(stmt, (model_version, bucket_of(track_id), track_id))
        if not rows:
            return None
        row = rows[0]
        vector = next((row[c] for c in EMBEDDING_COLUMNS.values() if row[c] is not None), None)
        if vector is None:
            return None
        tags = sorted((row["tags"] or {}).items(), key=lambda item: -item[1])
        extracted = row["extracted_at"]
        return FeaturesExtractedV1(
            track_id=track_id,
            model_version=model_version,
            embedding=[float(v) for v in vector],
            audio_source=row["audio_source"] or "",
            audio_sha256=row["audio_sha256"] or "",
            tags=[[str(name), float(p)] for name, p in tags],
            extracted_at=extracted.replace(tzinfo=UTC).timestamp() if extracted else 0.0,
        )

    async def discovered(self, track_id: str) -> TrackDiscoveredV1 | None:
        """The ``track-discovered.v1`` record of a known track, rebuilt from its row."""
        stmt = await self._stmt(
            "SELECT name, artists, album, duration_ms, isrc, source, source_ref, audio_ref "
            "FROM {ks}.tracks WHERE track_id = ?"
        )
        rows = await self._execute(stmt, (track_id,))
        if not rows or rows[0]["source"] is None:
            return None
        row = rows[0]
        return TrackDiscoveredV1(
            track_id=track_id,
            name=row["name"] or "",
            artists=list(row["artists"] or []),
            source=row["source"],
            source_ref=row["source_ref"] or "",
            audio_refs=(row["audio_ref"] or "").split(),
            album=row["album"],
            duration_ms=row["duration_ms"],
            isrc=row["isrc"],
        )

    async def touch_model_version(self, model_version: str, dim: int) -> None:
        """Move the model version's change mark to now, after writing a batch of its vectors.

        The indexer reads the mark before the vectors, so a mark moved after the writes makes
        it rebuild at the next tick. ``dim``, the length of the vectors written, tells readers
        which column holds them.
        """
        stmt = await self._stmt(
            "UPDATE {ks}.model_versions SET updated_at = toTimestamp(now()), dim = ? "
            "WHERE model_version = ?"
        )
        await self._execute(stmt, (dim, model_version))


def _row(row: dict[str, Any]) -> TrackRow:
    return TrackRow(
        track_id=row["track_id"],
        name=row["name"],
        artists=list(row["artists"] or []),
        album=row["album"],
        audio_status=row["audio_status"],
        audio_error=row["audio_error"],
    )
