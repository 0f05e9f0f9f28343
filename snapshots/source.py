"""Reads one model version's vectors, metadata and change mark from Cassandra.

Reads ``<keyspace>.model_versions`` (the change mark and the vectors' length), every bucket of
``<keyspace>.embeddings`` for the model version (the column of that length), and
names/artists/albums from ``<keyspace>.tracks``; writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from snapshots.lines import NO_FIELDS, Slots, encode_fields, encode_optional, encode_tags
from stores.cassandra import CassandraSession
from stores.migrations import EMBEDDING_BUCKETS, LEGACY_DIM, embedding_column

logger = logging.getLogger(__name__)

#: Rows per Cassandra page while reading vectors (about 0.7 MB of vectors per page).
PAGE_ROWS = 1000
_KEYSPACE_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_mark(value: datetime) -> int:
    """A Cassandra ``timestamp`` as integer milliseconds since the epoch (exact, comparable)."""
    if value.tzinfo is None:  # the driver returns naive datetimes in UTC
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(milliseconds=1)


async def current_mark(db: CassandraSession, keyspace: str, model_version: str) -> int | None:
    """The model version's change mark: ``model_versions.updated_at`` in ms since the epoch.

    Returns:
        The mark, or ``None`` when no vector of this model version was ever recorded.
    """
    ks = checked_keyspace(keyspace)
    rows = await db.execute(
        f"SELECT updated_at FROM {ks}.model_versions WHERE model_version = %s",
        (model_version,),
    )
    if not rows or rows[0]["updated_at"] is None:
        return None
    return to_mark(rows[0]["updated_at"])


async def vectors_changed_since(
    db: CassandraSession, keyspace: str, model_version: str, mark: int | None
) -> bool:
    """Whether vectors were written since the build that read ``mark``.

    Args:
        db: An open session.
        keyspace: The keyspace holding ``model_versions``.
        model_version: The model version to check.
        mark: The newest snapshot's ``source_mark`` (``None`` when there is no snapshot).

    Returns:
        True when the mark moved (any change, not only forwards, so a writer with a clock behind
        ours is not missed); False when nothing was ever written or nothing changed.
    """
    now = await current_mark(db, keyspace, model_version)
    return now is not None and now != mark


async def stored_dim(db: CassandraSession, keyspace: str, model_version: str) -> int:
    """The length of the model version's stored vectors, as its writers recorded it.

    A model version written before lengths were recorded (or never written) has
    :data:`~stores.migrations.LEGACY_DIM`, the only length there was.
    """
    ks = checked_keyspace(keyspace)
    rows = await db.execute(
        f"SELECT dim FROM {ks}.model_versions WHERE model_version = %s", (model_version,)
    )
    dim = rows[0]["dim"] if rows else None
    return LEGACY_DIM if dim is None else int(dim)


def checked_keyspace(name: str) -> str:
    """The keyspace name, if it is a plain identifier (it is interpolated into CQL)."""
    if not _KEYSPACE_RE.match(name):
        msg = f"keyspace must match {_KEYSPACE_RE.pattern}, got {name!r}"
        raise ValueError(msg)
    return name


@dataclass
class ReadColumns:
    """A model version's vectors as columns: ids, one float32 array, encoded tags and digests.

    Attributes:
        ids: Track ids, in the order read.
        vectors: ``(len(ids), dim)`` float32, row ``i`` for ``ids[i]``.
        tags: Row ``i``'s top tags, encoded (:func:`snapshots.lines.encode_tags`).
        digests: Row ``i``'s audio sha256 when recorded, encoded
            (:func:`snapshots.lines.encode_optional`: empty when not).
        skipped: Ids whose vector was not ``dim`` finite floats.
    """

    ids: list[str]
    vectors: npt.NDArray[np.float32]
    tags: Slots = field(default_factory=Slots)
    digests: Slots = field(default_factory=Slots)
    skipped: list[str] = field(default_factory=list)


class _Rows:
    """A float32 array that grows by doubling: vectors land in it as they are read."""

    def __init__(self, dim: int) -> None:
        self.data = np.empty((1024, dim), dtype=np.float32)
        self.count = 0

    def append(self, vector: npt.NDArray[np.float32]) -> int:
        if self.count == self.data.shape[0]:
            grown = np.empty((self.data.shape[0] * 2, self.data.shape[1]), dtype=np.float32)
            grown[: self.count] = self.data[: self.count]
            self.data = grown
        self.data[self.count] = vector
        self.count += 1
        return self.count - 1


async def read_columns(db: CassandraSession, ks: str, model_version: str) -> ReadColumns:
    """Every usable vector of a model version, streamed page by page into one float32 array.

    No per-track vector object outlives its page: a million 160-d vectors take 640 MB plus the
    array's spare room while growing (at most twice that, once). Vectors that are not as many
    finite floats as the model version's recorded length (:func:`stored_dim`) are skipped.
    """
    dim = await stored_dim(db, ks, model_version)
    stmt = await db.prepare(
        f"SELECT track_id, {embedding_column(dim)} AS embedding, tags, extracted_at, "
        f"audio_sha256 FROM {ks}.embeddings WHERE model_version = ? AND bucket = ?"
    )
    stmt.fetch_size = PAGE_ROWS
    rows = _Rows(dim)
    # Tags and digests are encoded as they are read: one buffer each, not objects per track.
    digests = Slots()
    ids: list[str] = []
    tags = Slots()
    where: dict[str, tuple[int, datetime]] = {}
    skipped: list[str] = []

    async def read_bucket(bucket: int) -> None:
        async for row in db.stream(stmt, (model_version, bucket)):
            track_id = row["track_id"]
            vector = np.asarray(row["embedding"] or (), dtype=np.float32)
            if vector.shape != (dim,) or not np.isfinite(vector).all():
                skipped.append(track_id)
                continue
            at = row["extracted_at"] or datetime.min
            seen = where.get(track_id)
            if seen is not None:
                # A track sits in one bucket unless a writer bucketed differently; keep its
                # newest vector, in the row it already has.
                if seen[1] >= at:
                    continue
                rows.data[seen[0]] = vector
                tags.set(seen[0], encode_tags(row["tags"] or {}))
                digests.set(seen[0], encode_optional(row["audio_sha256"]))
                where[track_id] = (seen[0], at)
                continue
            where[track_id] = (rows.append(vector), at)
            ids.append(track_id)
            tags.append(encode_tags(row["tags"] or {}))
            digests.append(encode_optional(row["audio_sha256"]))

    await asyncio.gather(*(read_bucket(b) for b in range(EMBEDDING_BUCKETS)))
    if skipped:
        logger.warning(
            "model version %s: %d vectors skipped (not %d finite floats), e.g. %s",
            model_version,
            len(skipped),
            dim,
            sorted(skipped)[:5],
        )
    return ReadColumns(ids, rows.data[: rows.count], tags, digests, skipped)


@dataclass
class Metadata:
    """Name, artists, album and ISRC of tracks, encoded, row ``i`` for the ``i``-th wanted id.

    Attributes:
        fields: :func:`snapshots.lines.encode_fields` of each row (:data:`NO_FIELDS` for a
            track the ``tracks`` table lacks).
        isrc: :func:`snapshots.lines.encode_optional` of each row's ISRC.
        found: How many of the wanted tracks the table holds.
    """

    fields: Slots
    isrc: Slots
    found: int


async def read_metadata(db: CassandraSession, ks: str, wanted: Sequence[str]) -> Metadata:
    """Name, artists, album and ISRC of the ``wanted`` tracks, in their order, encoded."""
    # One paged scan of the table is far cheaper than a query per track for a whole catalogue.
    stmt = await db.prepare(f"SELECT track_id, name, artists, album, isrc FROM {ks}.tracks")
    stmt.fetch_size = PAGE_ROWS
    rows = {track_id: row for row, track_id in enumerate(wanted)}
    fields, isrc = Slots(), Slots()
    for _ in wanted:
        fields.append(NO_FIELDS)
        isrc.append(b"")
    found = 0
    async for record in db.stream(stmt):
        row = rows.pop(record["track_id"], None)
        if row is None:
            continue
        found += 1
        fields.set(row, encode_fields(record["name"], record["artists"] or (), record["album"]))
        isrc.set(row, encode_optional(record["isrc"]))
    return Metadata(fields, isrc, found)
