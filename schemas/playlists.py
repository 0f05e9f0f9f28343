"""What users put on ``playlists.v1``: a playlist reference as plain text, parsed here.

Reads raw bytes; produces a :class:`PlaylistRef` or raises :class:`InvalidRecord`. Accepted:
a Spotify playlist ID, ``spotify:playlist:<id>`` URI or ``open.spotify.com/playlist/<id>`` URL;
``deezer:<playlist id>`` or a ``deezer.com/.../playlist/<id>`` URL; ``local:<folder>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlparse

from schemas.errors import InvalidRecord

Source = Literal["spotify", "deezer", "local"]

_SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_DEEZER_ID = re.compile(r"^[0-9]{1,20}$")
#: A reference is one short line; anything longer is not a playlist reference.
MAX_REF_BYTES = 4096


@dataclass(frozen=True)
class PlaylistRef:
    """A playlist at one source: a Spotify or Deezer id, or a local folder path."""

    source: Source
    id: str

    def __str__(self) -> str:
        return f"{self.source}:{self.id}"


def parse_playlist_ref(raw: bytes) -> PlaylistRef:
    """Parse one message of ``playlists.v1``.

    Raises:
        InvalidRecord: The bytes are not UTF-8 text naming a playlist in a supported form.
    """
    if len(raw) > MAX_REF_BYTES:
        msg = f"playlist reference of {len(raw)} bytes; expected at most {MAX_REF_BYTES}"
        raise InvalidRecord(msg)
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        msg = f"playlist reference is not UTF-8 text: {exc}"
        raise InvalidRecord(msg) from exc
    if not text:
        msg = "empty playlist reference"
        raise InvalidRecord(msg)
    if text.startswith("local:"):
        path = text.removeprefix("local:").strip()
        if not path:
            msg = "local: playlist reference without a folder"
            raise InvalidRecord(msg)
        return PlaylistRef("local", path)
    if text.startswith("deezer:"):
        return PlaylistRef("deezer", _deezer_id(text.removeprefix("deezer:"), text))
    if text.startswith("spotify:"):
        parts = text.split(":")
        if len(parts) == 3 and parts[1] == "playlist":
            return PlaylistRef("spotify", _spotify_id(parts[2], text))
        msg = f"expected spotify:playlist:<id>, got {text!r}"
        raise InvalidRecord(msg)
    if "://" in text:
        url = urlparse(text)
        host = (url.hostname or "").lower()
        segments = [s for s in url.path.split("/") if s]
        if host == "open.spotify.com" and "playlist" in segments[:-1]:
            return PlaylistRef(
                "spotify", _spotify_id(segments[segments.index("playlist") + 1], text)
            )
        if (host == "deezer.com" or host.endswith(".deezer.com")) and "playlist" in segments[:-1]:
            return PlaylistRef("deezer", _deezer_id(segments[segments.index("playlist") + 1], text))
        msg = f"not a Spotify or Deezer playlist URL: {text!r}"
        raise InvalidRecord(msg)
    return PlaylistRef("spotify", _spotify_id(text, text))


def _spotify_id(candidate: str, text: str) -> str:
    if not _SPOTIFY_ID.match(candidate):
        msg = f"expected a 22-character Spotify playlist ID, got {text!r}"
        raise InvalidRecord(msg)
    return candidate


def _deezer_id(candidate: str, text: str) -> str:
    candidate = candidate.strip()
    if not _DEEZER_ID.match(candidate):
        msg = f"expected a numeric Deezer playlist id, got {text!r}"
        raise InvalidRecord(msg)
    return candidate
