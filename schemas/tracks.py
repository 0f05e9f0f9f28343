"""``track-discovered.v1``: one track found in a playlist, with where its audio can be had.

Track ids are ours: ``isrc:<ISRC>`` when the source gives an ISRC (so the same recording found
on Spotify and on Deezer is one track), else ``<source>:<id at the source>``; a local file's id
is ``local:<sha256 of its bytes>`` (ingesting the same file again changes nothing).
"""

from __future__ import annotations

import faust

from schemas.errors import InvalidRecord

#: Audio locators, in the order the audio agent tries them:
#:   ``url:<https URL>``  a direct preview URL (e.g. Spotify ``preview_url`` where an app has one)
#:   ``deezer:<id>``      a Deezer track, resolved to its signed preview URL just before download
#:   ``isrc:<ISRC>``      looked up on Deezer by ISRC, then as ``deezer:<id>``
#:   ``file:<path>``      a local file under one of the configured roots
AUDIO_SCHEMES = ("url", "deezer", "isrc", "file")


class TrackDiscoveredV1(
    faust.Record,
    serializer="json",
    namespace="spotrec.track_discovered.v1",
    validation=True,
):
    """A track and its metadata as its source describes it."""

    track_id: str
    name: str
    artists: list[str]
    source: str
    source_ref: str
    audio_refs: list[str]
    album: str | None = None
    duration_ms: int | None = None
    isrc: str | None = None
    playlist: str | None = None
    discovered_at: float = 0.0


def check_track(track: TrackDiscoveredV1) -> None:
    """Checks faust's validation does not make: ids and locators are well-formed.

    Raises:
        InvalidRecord: What is wrong, naming the track.
    """
    if not track.track_id or ":" not in track.track_id:
        msg = f"track id {track.track_id!r}: expected <scheme>:<id>"
        raise InvalidRecord(msg)
    for ref in track.audio_refs:
        scheme, _, rest = ref.partition(":")
        if scheme not in AUDIO_SCHEMES or not rest:
            msg = f"track {track.track_id}: audio locator {ref!r} is not one of {AUDIO_SCHEMES}"
            raise InvalidRecord(msg)
