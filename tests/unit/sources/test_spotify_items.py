"""Spotify playlist items become records with the right ids and locators, or a skip reason."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.tracks import TrackDiscoveredV1, check_track
from sources.spotify import track_from_item


def spotify_track(**overrides: Any) -> dict[str, Any]:
    """A track object shaped like the Web API's (trimmed to the fields we read and a few more)."""
    track: dict[str, Any] = {
        "type": "track",
        "id": "4uLU6hMCjMI75M1A2tKUQC",
        "uri": "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
        "name": "Never Gonna Give You Up",
        "artists": [{"name": "Rick Astley", "type": "artist"}, {"name": "", "type": "artist"}],
        "album": {"name": "Whenever You Need Somebody", "type": "album"},
        "duration_ms": 213573,
        "external_ids": {"isrc": "gbarl9300135"},
        "is_local": False,
        "is_playable": True,
        "episode": False,
        "track": True,
        "preview_url": None,
    }
    return track | overrides


def entry(obj: dict[str, Any] | None, *, shape: str = "both", **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"added_at": "2026-01-01T00:00:00Z", "is_local": False} | fields
    if shape in ("both", "legacy"):
        item["track"] = obj
    if shape in ("both", "new"):
        item["item"] = obj
    return item


@pytest.mark.parametrize("shape", ["both", "new", "legacy"])
def test_a_track_with_an_isrc_is_keyed_by_it(shape: str) -> None:
    record = track_from_item(entry(spotify_track(), shape=shape))
    assert isinstance(record, TrackDiscoveredV1)
    check_track(record)
    assert record.track_id == "isrc:GBARL9300135"
    assert record.isrc == "GBARL9300135"
    assert record.name == "Never Gonna Give You Up"
    assert record.artists == ["Rick Astley"]
    assert record.album == "Whenever You Need Somebody"
    assert record.duration_ms == 213573
    assert record.source == "spotify"
    assert record.source_ref == "4uLU6hMCjMI75M1A2tKUQC"
    assert record.audio_refs == ["isrc:GBARL9300135"]


def test_the_new_item_key_wins_over_the_deprecated_track_key() -> None:
    item = entry(spotify_track(name="new"))
    item["track"] = spotify_track(name="old")
    record = track_from_item(item)
    assert isinstance(record, TrackDiscoveredV1)
    assert record.name == "new"


def test_a_preview_url_comes_first_then_the_isrc_when_previews_are_enabled() -> None:
    item = entry(spotify_track(preview_url="https://p.scdn.co/mp3-preview/x"))
    record = track_from_item(item, use_previews=True)
    assert isinstance(record, TrackDiscoveredV1)
    assert record.audio_refs == ["url:https://p.scdn.co/mp3-preview/x", "isrc:GBARL9300135"]


def test_previews_are_ignored_by_default() -> None:
    record = track_from_item(entry(spotify_track(preview_url="https://p.scdn.co/mp3-preview/x")))
    assert isinstance(record, TrackDiscoveredV1)
    assert record.audio_refs == ["isrc:GBARL9300135"]
    only_preview = spotify_track(external_ids={}, preview_url="https://p.scdn.co/mp3-preview/y")
    assert track_from_item(entry(only_preview)) == "no_audio"


def test_without_an_isrc_the_spotify_id_is_the_key_and_the_preview_the_only_locator() -> None:
    obj = spotify_track(external_ids={}, preview_url="https://p.scdn.co/mp3-preview/y")
    record = track_from_item(entry(obj), use_previews=True)
    assert isinstance(record, TrackDiscoveredV1)
    assert record.track_id == "spotify:4uLU6hMCjMI75M1A2tKUQC"
    assert record.isrc is None
    assert record.audio_refs == ["url:https://p.scdn.co/mp3-preview/y"]


@pytest.mark.parametrize("bad", ["", "GB-ARL", "GBARL930013", "GBARL93001355", "12ARL9300135", 42])
def test_a_malformed_isrc_is_treated_as_missing(bad: object) -> None:
    obj = spotify_track(external_ids={"isrc": bad}, preview_url="https://p.scdn.co/x")
    record = track_from_item(entry(obj), use_previews=True)
    assert isinstance(record, TrackDiscoveredV1)
    assert record.track_id.startswith("spotify:")


def test_hyphenated_isrcs_are_compacted() -> None:
    record = track_from_item(entry(spotify_track(external_ids={"isrc": "GB-ARL-93-00135"})))
    assert isinstance(record, TrackDiscoveredV1)
    assert record.track_id == "isrc:GBARL9300135"


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (entry(None), "null_track"),
        ({"added_at": None, "is_local": False}, "null_track"),
        (
            entry(spotify_track(id=None, is_local=True, external_ids={}), is_local=True),
            "local_file",
        ),
        (entry(spotify_track(type="episode", episode=True, track=False)), "episode"),
        (entry(spotify_track(episode=True)), "episode"),  # an episode shaped as a track
        (entry(spotify_track(type="audiobook")), "unsupported"),
        (entry(spotify_track(is_playable=False)), "unavailable"),
        (entry(spotify_track(external_ids={}, preview_url=None)), "no_audio"),
        (entry(spotify_track(external_ids={"isrc": "nope"})), "no_audio"),
    ],
)
def test_items_without_a_usable_track_are_skipped_with_their_reason(
    item: dict[str, Any], reason: str
) -> None:
    assert track_from_item(item) == reason


def test_is_playable_absent_means_playable() -> None:
    obj = spotify_track()
    del obj["is_playable"]  # the Web API omits it when no market is asked for
    assert isinstance(track_from_item(entry(obj)), TrackDiscoveredV1)
