"""A synthetic catalogue with many artists and several copies of some recordings.

Writes nothing itself; :func:`tracks` gives the tracks for ``write_snapshot`` and the ground
truth (which tracks are one recording), so tests can check the engine against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snapshots.builder import TrackVector

ARTISTS = 24
PER_ARTIST = 6
GENRES = ("rock", "jazz", "pop", "electronic")


@dataclass(frozen=True)
class Catalogue:
    """The tracks and, for each track id, the recording it is a copy of."""

    tracks: list[TrackVector]
    recording: dict[str, str]


def tracks(seed: int = 13, dim: int = 160) -> Catalogue:
    """``ARTISTS * PER_ARTIST`` recordings, with three kinds of copies of every fourth one.

    Recording ``r`` is ``isrc:R...`` (ISRC, metadata, audio digest). Every fourth also exists as
    ``local:<digest>`` (same audio digest, same vector, no metadata); every eighth also as
    ``deezer:<n>`` (same ISRC, a vector a hair away) and every twelfth as ``url:<n>`` (no ISRC or
    digest, only a vector within the duplicate threshold).
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(GENRES), dim)).astype(np.float32) * 3
    out: list[TrackVector] = []
    recording: dict[str, str] = {}
    for r in range(ARTISTS * PER_ARTIST):
        artist = f"Artist {r % ARTISTS:02d}"
        genre = (r // 3) % len(GENRES)
        vector = (centres[genre] + rng.standard_normal(dim)).astype(np.float32)
        isrc = f"QZ{r:010d}"
        digest = f"{r:064x}"
        main = f"isrc:{isrc}"
        tags = {GENRES[genre]: 0.8, "mellow" if r % 2 else "beautiful": 0.3}
        out.append(
            TrackVector(
                main,
                vector,
                name=f"Song {r}",
                artists=(artist,),
                album=f"Album {r % ARTISTS:02d}-{r % 2}",
                tags=tags,
                isrc=isrc,
                audio_sha256=digest,
            )
        )
        recording[main] = main
        if r % 4 == 0:
            copy = f"local:{digest}"
            out.append(TrackVector(copy, vector.copy(), tags=tags, audio_sha256=digest))
            recording[copy] = main
        if r % 8 == 0:
            copy = f"deezer:{r}"
            near = vector + 1e-4 * rng.standard_normal(dim).astype(np.float32)
            out.append(
                TrackVector(copy, near, name=f"Song {r}", artists=(artist,), tags=tags, isrc=isrc)
            )
            recording[copy] = main
        if r % 12 == 0:
            copy = f"url:{r}"
            near = vector + 1e-4 * rng.standard_normal(dim).astype(np.float32)
            out.append(TrackVector(copy, near, name=f"Song {r} (upload)", tags=tags))
            recording[copy] = main
    return Catalogue(out, recording)
