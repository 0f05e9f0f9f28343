"""``features-extracted.v1``: a track's embedding, stored in Cassandra and carried on the topic.

The vector travels on the topic so that the vector store and every snapshot can be rebuilt by
replaying it, without fetching audio again.
"""

from __future__ import annotations

import math

import faust

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


def check_embedding(record: FeaturesExtractedV1, dim: int) -> None:
    """Faust does not look inside lists: check length and finiteness here.

    Raises:
        InvalidRecord: The vector has the wrong length or a non-finite value.
    """
    if len(record.embedding) != dim:
        msg = (
            f"track {record.track_id}: embedding of length {len(record.embedding)}, expected {dim}"
        )
        raise InvalidRecord(msg)
    if not all(math.isfinite(v) for v in record.embedding):
        msg = f"track {record.track_id}: embedding holds a NaN or infinite value"
        raise InvalidRecord(msg)
