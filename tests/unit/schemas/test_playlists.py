"""Playlist references as users write them, and what is refused."""

from __future__ import annotations

import pytest

from schemas.errors import InvalidRecord
from schemas.playlists import PlaylistRef, parse_playlist_ref

SPOTIFY_ID = "37i9dQZF1DXcBWIGoYBM5M"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (SPOTIFY_ID, PlaylistRef("spotify", SPOTIFY_ID)),
        (f"  {SPOTIFY_ID}\n", PlaylistRef("spotify", SPOTIFY_ID)),
        (f"spotify:playlist:{SPOTIFY_ID}", PlaylistRef("spotify", SPOTIFY_ID)),
        (f"https://open.spotify.com/playlist/{SPOTIFY_ID}", PlaylistRef("spotify", SPOTIFY_ID)),
        (
            f"https://open.spotify.com/intl-de/playlist/{SPOTIFY_ID}?si=ab12",
            PlaylistRef("spotify", SPOTIFY_ID),
        ),
        ("deezer:908622995", PlaylistRef("deezer", "908622995")),
        ("https://www.deezer.com/fr/playlist/908622995", PlaylistRef("deezer", "908622995")),
        ("local:music/jazz", PlaylistRef("local", "music/jazz")),
        ("local:/srv/music library", PlaylistRef("local", "/srv/music library")),
    ],
)
def test_accepted_forms(raw: str, expected: PlaylistRef) -> None:
    assert parse_playlist_ref(raw.encode()) == expected


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b"\xff\xfe", "UTF-8"),
        (b"x" * 5000, "at most"),
        (b"too-short", "22-character"),
        (f"spotify:album:{SPOTIFY_ID}".encode(), "spotify:playlist"),
        (b"deezer:abc", "numeric Deezer"),
        (b"deezer:", "numeric Deezer"),
        (b"local:", "without a folder"),
        (f"https://evil.example/playlist/{SPOTIFY_ID}".encode(), "not a Spotify or Deezer"),
        (f"https://open.spotify.com/track/{SPOTIFY_ID}".encode(), "not a Spotify or Deezer"),
    ],
)
def test_refused_forms_say_why(raw: bytes, complaint: str) -> None:
    with pytest.raises(InvalidRecord, match=complaint):
        parse_playlist_ref(raw)
