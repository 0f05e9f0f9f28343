"""The id rules: builds ``track-discovered.v1`` records from what a source says about a track.

Reads plain values; writes nothing. A track's id is ``isrc:<ISRC>`` when the source gives a
well-formed ISRC (so one recording found on two sources is one track), else
``<source>:<id at the source>``; local files are ``local:<sha256 of the bytes>``.
"""

from __future__ import annotations

import re

from schemas.tracks import TrackDiscoveredV1

#: ISO 3901: country (2 letters), registrant (3 alphanumerics), year (2 digits), 5 digits.
_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")


def normalize_isrc(value: object) -> str | None:
    """The ISRC in its compact upper-case form, or None when ``value`` is not one.

    Sources print ISRCs with or without hyphens and in either case; anything that is still not
    twelve well-formed characters afterwards is treated as missing rather than trusted as an id.
    """
    if not isinstance(value, str):
        return None
    compact = value.replace("-", "").replace(" ", "").strip().upper()
    return compact if _ISRC.match(compact) else None


def track_id(source: str, source_id: str, isrc: str | None) -> str:
    """``isrc:<ISRC>`` when the ISRC is known, else ``<source>:<source id>``."""
    return f"isrc:{isrc}" if isrc else f"{source}:{source_id}"


def discovered(
    *,
    track_id: str,
    name: str,
    artists: list[str],
    source: str,
    source_ref: str,
    audio_refs: list[str],
    album: str | None = None,
    duration_ms: int | None = None,
    isrc: str | None = None,
) -> TrackDiscoveredV1:
    """One ``track-discovered.v1`` record; the crawler agent fills ``playlist`` and the time."""
    return TrackDiscoveredV1(
        track_id=track_id,
        name=name,
        artists=artists,
        source=source,
        source_ref=source_ref,
        audio_refs=audio_refs,
        album=album,
        duration_ms=duration_ms,
        isrc=isrc,
    )
