"""``features-extracted.v1``: a track's embedding, stored in Cassandra and carried on the topic.

The vector travels on the topic so that the vector store and every snapshot can be rebuilt by
replaying it, without fetching audio again. Its length is the one its model declares
(``features.versions``), so one topic carries the vectors of models of different lengths.
"""

from __future__ import annotations

import math

import faust

from features.errors import UnknownModel
from features.versions import model_spec
from schemas.errors import InvalidRecord


class FeaturesExtractedV1(
    faust.Record,
    serializer="json",
    namespace="spotrec.features_extracted.v1",
    validation=True,
):
    """One track's vector, its model version, its top tags and the audio's provenance."""

    track_id: str
    model_version: str
    embedding: list[float]
    audio_source: str
    audio_sha256: str
    #: The most probable tags, ``[name, probability]``, most probable first.
    tags: list[list[str | float]]
    extracted_at: float = 0.0


def check_embedding(record: FeaturesExtractedV1, dim: int | None = None) -> None:
    """Faust does not look inside lists: check length and finiteness here.

    Args:
        record: The record to check.
        dim: The length expected (e.g. a snapshot's); default: the one the record's model
            declares.

    Raises:
        InvalidRecord: No known model has the record's model version (when ``dim`` is not
            given), or the vector does not have the expected length, or holds a non-finite
            value.
    """
    if dim is None:
        try:
            dim = model_spec(record.model_version).dim
        except UnknownModel as exc:
            msg = f"track {record.track_id}: {exc}"
            raise InvalidRecord(msg) from exc
    if len(record.embedding) != dim:
        msg = (
            f"track {record.track_id}: embedding of length {len(record.embedding)}, expected "
            f"{dim} for model version {record.model_version}"
        )
        raise InvalidRecord(msg)
    if not all(math.isfinite(v) for v in record.embedding):
        msg = f"track {record.track_id}: embedding holds a NaN or infinite value"
        raise InvalidRecord(msg)
