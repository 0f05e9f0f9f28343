"""Builds an immutable ANNOY snapshot of one model version's vectors into a local folder.

Reads the model version's change mark, vectors and track metadata from Cassandra (through
:mod:`snapshots.source`) and how much of the catalogue they cover (:mod:`snapshots.coverage`);
writes ``index.ann``, ``tracks.jsonl`` and ``manifest.json`` into the
work folder. Rows are dense ids ``0..n-1`` in sorted track-id order; row ``i`` of the index is line
``i`` of ``tracks.jsonl``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from annoy import AnnoyIndex

from features.versions import RetrievalSpace
from snapshots.coverage import measure
from snapshots.errors import NothingToIndex
from snapshots.local import digest_file
from snapshots.manifest import (
    INDEX_NAME,
    MANIFEST_NAME,
    METRIC,
    MODEL_VERSION_RE,
    TRACKS_NAME,
    Manifest,
    new_version,
)
from snapshots.projection import project_2d
from snapshots.source import checked_keyspace, current_mark, read_metadata, read_vectors
from snapshots.transform import fit_transform, retrieval_space_of
from stores.cassandra import CassandraSession

logger = logging.getLogger(__name__)

#: Fixed ANNOY seed: the same vectors, trees and ``jobs`` give the same index file.
SEED = 2017


@dataclass(frozen=True)
class TrackVector:
    """One track to index: its vector, and the metadata stored beside its row."""

    track_id: str
    vector: npt.NDArray[np.float32]
    name: str | None = None
    artists: tuple[str, ...] = ()
    album: str | None = None
    tags: Mapping[str, float] = field(default_factory=dict)
    isrc: str | None = None
    audio_sha256: str | None = None


@dataclass(frozen=True)
class BuiltSnapshot:
    """A snapshot written to a local folder, ready to publish.

    Attributes:
        folder: Holds ``manifest.json`` and the files it lists.
        manifest: The snapshot's manifest (also in ``folder``).
    """

    folder: Path
    manifest: Manifest


async def build_snapshot(
    db: CassandraSession,
    keyspace: str,
    model_version: str,
    trees: int,
    workdir: Path,
    *,
    jobs: int = 1,
) -> BuiltSnapshot:
    """Read every vector of a model version and build a snapshot of them into ``workdir``.

    The change mark is read before the vectors, so a vector written during the build moves the
    mark past the manifest's ``source_mark`` and the next check triggers another build.

    Args:
        db: An open session.
        keyspace: The keyspace holding the tables.
        model_version: The model version to index.
        trees: ANNOY trees to build (more: better recall, bigger file).
        workdir: Folder to write into (created if needed; the three files are overwritten).
        jobs: Threads building trees; the index is reproducible only for the same ``jobs``.

    Returns:
        The snapshot written to ``workdir``.

    Raises:
        NothingToIndex: The model version has no usable vectors; nothing was written.
    """
    ks = checked_keyspace(keyspace)
    _check_model_version(model_version)
    built_at = datetime.now(UTC)
    mark = await current_mark(db, ks, model_version)
    vectors, skipped = await read_vectors(db, ks, model_version)
    if not vectors:
        msg = (
            f"model version {model_version!r} has no usable vectors in {ks}.embeddings "
            f"({len(skipped)} skipped); nothing to build"
        )
        raise NothingToIndex(msg)
    coverage = await measure(db, ks, model_version, vectors.keys())
    meta = await read_metadata(db, ks, vectors.keys())
    tracks = [
        TrackVector(
            track_id=track_id,
            vector=vector,
            tags=tags,
            audio_sha256=digest,
            **meta.get(track_id, {}),
        )
        for track_id, (vector, tags, digest) in vectors.items()
    ]
    del vectors
    return await asyncio.to_thread(
        write_snapshot,
        workdir,
        tracks,
        model_version=model_version,
        trees=trees,
        source_mark=mark,
        built_at=built_at,
        jobs=jobs,
        missing=coverage.missing,
    )


def write_snapshot(
    workdir: Path,
    tracks: Sequence[TrackVector],
    *,
    model_version: str,
    trees: int,
    source_mark: int | None,
    built_at: datetime | None = None,
    version: str | None = None,
    jobs: int = 1,
    space: RetrievalSpace | None = None,
    missing: int = 0,
) -> BuiltSnapshot:
    """Write a snapshot of ``tracks`` into ``workdir`` (blocking; run it in a thread).

    Rows are assigned in sorted track-id order, so the same tracks always get the same rows.

    Args:
        workdir: Folder to write into (created if needed).
        tracks: The tracks; ids must be unique and vectors all of one length.
        model_version: Recorded in the manifest.
        trees: ANNOY trees to build.
        source_mark: Recorded in the manifest (see :class:`Manifest`).
        built_at: Build time (default: now); also dates the version.
        version: The snapshot version (default: a new one dated ``built_at``).
        jobs: Threads building trees.
        space: The retrieval space (default: the one the model version declares): ``zscore``
            indexes z-scored vectors, with the statistics fitted on ``tracks``; ``cosine``
            indexes them as they are. The manifest's ``transform`` records which (see
            :mod:`snapshots.transform`).
        missing: Recorded in the manifest: tracks of other model versions not in ``tracks``.

    Returns:
        The snapshot written.

    Raises:
        NothingToIndex: ``tracks`` is empty.
        ValueError: The model version is not a plain name, a track id repeats, or a vector has
            the wrong length or is not finite.
    """
    _check_model_version(model_version)
    if not tracks:
        msg = f"no tracks given for model version {model_version!r}; nothing to build"
        raise NothingToIndex(msg)
    if trees < 1:
        msg = f"trees must be at least 1, got {trees}"
        raise ValueError(msg)
    built_at = built_at or datetime.now(UTC)
    ordered = sorted(tracks, key=lambda t: t.track_id)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.track_id == after.track_id:
            msg = f"track {after.track_id!r} is given twice; rows need unique track ids"
            raise ValueError(msg)
    workdir.mkdir(parents=True, exist_ok=True)

    # The first vector sets the length; the manifest records it for the query nodes.
    dim = int(ordered[0].vector.shape[0]) if ordered[0].vector.ndim == 1 else 0
    for track in ordered:
        if dim < 1 or track.vector.shape != (dim,) or not np.isfinite(track.vector).all():
            msg = f"track {track.track_id!r}: vector must be {dim} finite floats"
            raise ValueError(msg)
    vectors = np.stack([t.vector for t in ordered]).astype(np.float32)
    transform = fit_transform(space or retrieval_space_of(model_version), vectors)
    indexed = transform.apply(vectors)

    index = AnnoyIndex(dim, METRIC)
    index.set_seed(SEED)
    for row, vector in enumerate(indexed):
        index.add_item(row, vector.tolist())
    index.build(trees, n_jobs=jobs)
    index.save(str(workdir / INDEX_NAME))
    index.unload()

    coords = project_2d(indexed)  # each track's place on the catalogue map
    with (workdir / TRACKS_NAME).open("w", encoding="utf-8") as out:
        for track, xy in zip(ordered, coords.tolist(), strict=True):
            out.write(json.dumps({**_track_line(track), "xy": xy}, ensure_ascii=False))
            out.write("\n")

    manifest = Manifest(
        version=version or new_version(built_at),
        model_version=model_version,
        count=len(ordered),
        dim=dim,
        trees=trees,
        files={name: digest_file(workdir / name) for name in (INDEX_NAME, TRACKS_NAME)},
        built_at=built_at,
        source_mark=source_mark,
        transform=transform.to_dict(),
        missing=missing,
    )
    (workdir / MANIFEST_NAME).write_bytes(manifest.to_json())
    logger.info(
        "built snapshot %s of %s: %d tracks, %d trees, %s",
        manifest.version,
        model_version,
        manifest.count,
        trees,
        "complete" if manifest.complete else f"incomplete ({missing} tracks missing)",
    )
    return BuiltSnapshot(workdir, manifest)


def _check_model_version(model_version: str) -> None:
    # Checked before any work: the name becomes part of object keys and local folder names.
    if not MODEL_VERSION_RE.match(model_version):
        msg = f"model version must match {MODEL_VERSION_RE.pattern}, got {model_version!r}"
        raise ValueError(msg)


def _track_line(track: TrackVector) -> dict[str, Any]:
    # Fixed key order; tags as [tag, score] pairs best first (a list, because JSON objects carry
    # no order), so "top tags" are a prefix. 4 decimals is all a tag score carries.
    tags = sorted(track.tags.items(), key=lambda kv: (-kv[1], kv[0]))
    line: dict[str, Any] = {
        "track_id": track.track_id,
        "name": track.name,
        "artists": list(track.artists),
        "album": track.album,
        "tags": [[tag, round(float(score), 4)] for tag, score in tags],
    }
    # Written only when known, so rows (and snapshots) without them stay byte-identical; the
    # query node collapses copies of one recording by these.
    if track.isrc is not None:
        line["isrc"] = track.isrc
    if track.audio_sha256 is not None:
        line["audio_sha256"] = track.audio_sha256
    return line
