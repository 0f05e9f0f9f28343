"""The fake catalogue the test servers serve is well-formed and the same on every build."""

from __future__ import annotations

import re

from sources.tracks import normalize_isrc
from tests.fakes.catalogue import artists_from_attribution, base62, build_catalogue


def test_ids_are_well_formed_unique_and_stable() -> None:
    first, second = build_catalogue(), build_catalogue()
    assert len(first.clips) >= 10
    assert [c.isrc for c in first.clips] == [c.isrc for c in second.clips]
    for field in ("isrc", "deezer_id", "spotify_id"):
        values = [getattr(c, field) for c in first.clips]
        assert len(set(values)) == len(values), field
    assert all(normalize_isrc(c.isrc) == c.isrc for c in first.clips)
    assert all(re.fullmatch(r"[0-9A-Za-z]{22}", c.spotify_id) for c in first.clips)
    assert re.fullmatch(r"[0-9A-Za-z]{22}", first.spotify_playlist_id)


def test_every_clip_has_a_title_an_artist_and_a_duration() -> None:
    for clip in build_catalogue().clips:
        assert clip.title and clip.artists and all(clip.artists), clip.name
        assert clip.duration_ms > 1000, clip.name
        assert clip.content_type in ("audio/ogg", "audio/mpeg"), clip.name


def test_artists_come_from_the_credit_line() -> None:
    assert artists_from_attribution("Song by A / B is licensed | x", "T") == ("A", "B")
    assert artists_from_attribution("Song by A (Real Name) | x", "T") == ("A",)
    assert artists_from_attribution("Copyright 2002 Some One, GPL-2+", "T") == ("Some One",)
    assert artists_from_attribution("Bird, 13.wav / Recorder | CC-BY 3.0", "T") == ("Recorder",)
    assert artists_from_attribution("nothing to see", "Artist - Title") == ("Artist",)


def test_base62_pads_to_22_characters() -> None:
    assert base62(0) == "0" * 22
    assert base62(61) == "0" * 21 + "z"
    assert base62(62) == "0" * 20 + "10"
