"""Deezer track objects become records keyed by ISRC when known, with Deezer locators first."""

from __future__ import annotations

from typing import Any

from schemas.tracks import TrackDiscoveredV1, check_track
from sources.deezer import track_from_deezer


def deezer_track(**overrides: Any) -> dict[str, Any]:
    """A full track object shaped like ``GET /track/{id}`` (fields we read and a few more)."""
    track: dict[str, Any] = {
        "id": 3135556,
        "readable": True,
        "title": "Harder, Better, Faster, Stronger",
        "isrc": "GBDUW0000059",
        "duration": 224,
        "preview": "https://cdnt-preview.dzcdn.net/api/1/1/x.mp3?hdnea=exp=1~hmac=2",
        "contributors": [{"name": "Daft Punk", "type": "artist"}],
        "artist": {"id": 27, "name": "Daft Punk"},
        "album": {"id": 302127, "title": "Discovery"},
        "type": "track",
    }
    return track | overrides


def test_a_full_track_is_keyed_by_isrc_and_never_stores_the_preview_url() -> None:
    record = track_from_deezer(deezer_track())
    assert isinstance(record, TrackDiscoveredV1)
    check_track(record)
    assert record.track_id == "isrc:GBDUW0000059"
    assert record.audio_refs == ["deezer:3135556", "isrc:GBDUW0000059"]
    assert not any("dzcdn" in ref for ref in record.audio_refs)  # it expires: resolve later
    assert record.name == "Harder, Better, Faster, Stronger"
    assert record.artists == ["Daft Punk"]
    assert record.album == "Discovery"
    assert record.duration_ms == 224_000
    assert (record.source, record.source_ref) == ("deezer", "3135556")


def test_a_playlist_track_without_isrc_is_keyed_by_its_deezer_id() -> None:
    obj = deezer_track()
    del obj["isrc"], obj["contributors"]  # playlist track objects carry neither
    record = track_from_deezer(obj)
    assert isinstance(record, TrackDiscoveredV1)
    assert record.track_id == "deezer:3135556"
    assert record.audio_refs == ["deezer:3135556"]
    assert record.artists == ["Daft Punk"]  # from ``artist`` when there are no contributors


def test_every_contributor_is_an_artist() -> None:
    contributors = [{"name": "A"}, {"name": "B"}, {"name": None}]
    record = track_from_deezer(deezer_track(contributors=contributors))
    assert isinstance(record, TrackDiscoveredV1)
    assert record.artists == ["A", "B"]


def test_unreadable_and_idless_tracks_are_skipped() -> None:
    assert track_from_deezer(deezer_track(readable=False)) == "unreadable"
    assert track_from_deezer(deezer_track(id=None)) == "no_audio"
    assert track_from_deezer(deezer_track(id="3135556")) == "no_audio"
