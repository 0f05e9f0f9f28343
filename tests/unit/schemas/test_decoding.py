"""Strict decoding: exactly the requested record, every field of the right type."""

from __future__ import annotations

import math
from typing import Any

import pytest

from features.versions import MODELS, model_spec
from schemas.audio import AudioStoredV1
from schemas.decoding import decode
from schemas.errors import InvalidRecord
from schemas.features import FeaturesExtractedV1, check_embedding
from schemas.tracks import TrackDiscoveredV1, check_track


def _track(**overrides: object) -> TrackDiscoveredV1:
    fields: dict[str, Any] = {
        "track_id": "isrc:QZSPR2600001",
        "name": "Vibe Ace",
        "artists": ["Kevin MacLeod"],
        "source": "spotify",
        "source_ref": "6rqhFgbbKwnb9MLmUQDhG6",
        "audio_refs": ["isrc:QZSPR2600001"],
    }
    fields.update(overrides)
    return TrackDiscoveredV1(**fields)


def test_round_trip_keeps_every_field() -> None:
    track = _track(album="Jazz Sampler", duration_ms=61460, isrc="QZSPR2600001")
    assert decode(TrackDiscoveredV1, track.dumps()) == track


def test_another_record_type_is_refused() -> None:
    stored = AudioStoredV1(
        track_id="t:1", object_key="audio/t", sha256="0" * 64, size=3, audio_source="file:x"
    )
    with pytest.raises(InvalidRecord, match="audio_stored.v1 record; expected"):
        decode(TrackDiscoveredV1, stored.dumps())


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (b"{not json", "not JSON"),
        (b"\xff", "not JSON"),
        (b"[1, 2]", "a JSON list"),
        (b'{"track_id": "a:b"}', "missing"),
        (
            b'{"track_id": "a:b", "name": "n", "artists": "solo", "source": "s",'
            b' "source_ref": "r", "audio_refs": []}',
            "'artists'",
        ),
        (
            b'{"track_id": "a:b", "name": "n", "artists": [1], "source": "s",'
            b' "source_ref": "r", "audio_refs": []}',
            "'artists'",
        ),
        (
            b'{"track_id": "a:b", "name": "n", "artists": [], "source": "s",'
            b' "source_ref": "r", "audio_refs": [], "duration_ms": "long"}',
            "'duration_ms'",
        ),
    ],
)
def test_malformed_input_is_refused_with_a_reason(raw: bytes, complaint: str) -> None:
    with pytest.raises(InvalidRecord, match=complaint):
        decode(TrackDiscoveredV1, raw)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    raw = _track().dumps().replace(b'"name"', b'"added_later": 1, "name"')
    assert decode(TrackDiscoveredV1, raw).name == "Vibe Ace"


def test_track_checks_ids_and_locators() -> None:
    check_track(_track())
    with pytest.raises(InvalidRecord, match="expected <scheme>:<id>"):
        check_track(_track(track_id="plain"))
    with pytest.raises(InvalidRecord, match="audio locator"):
        check_track(_track(audio_refs=["ftp://x"]))


#: A full version of the faithful Choi model, as a worker writes it.
VERSION = "choi2017+sf-soxrhq-12k-29s"


def test_embedding_checks_the_length_its_model_declares_and_finiteness() -> None:
    def record(vector: list[float], model_version: str = VERSION) -> FeaturesExtractedV1:
        return FeaturesExtractedV1(
            track_id="t:1",
            model_version=model_version,
            embedding=vector,
            audio_source="file:x",
            audio_sha256="0" * 64,
            tags=[],
        )

    dim = model_spec(VERSION).dim
    check_embedding(record([0.5] * dim))
    with pytest.raises(InvalidRecord, match=f"length {dim - 1}, expected {dim}"):
        check_embedding(record([0.5] * (dim - 1)))
    with pytest.raises(InvalidRecord, match=f"length {dim + 40}, expected {dim}"):
        check_embedding(record([0.5] * (dim + 40)))
    with pytest.raises(InvalidRecord, match="NaN"):
        check_embedding(record([0.5] * (dim - 1) + [math.nan]))
    # Every known model is checked against its own length.
    for name, spec in MODELS.items():
        check_embedding(record([0.5] * spec.dim, f"{name}+x"))
    with pytest.raises(InvalidRecord, match="names no known model"):
        check_embedding(record([0.5] * dim, "retired-model+x"))
    # A reader that knows the length it needs (a snapshot's) checks against that instead.
    check_embedding(record([0.5] * 200, "retired-model+x"), 200)
    with pytest.raises(InvalidRecord, match="length 160, expected 200"):
        check_embedding(record([0.5] * 160), 200)
