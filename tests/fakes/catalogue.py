"""The fake catalogue the fake Spotify and Deezer servers serve, built from the shared recordings.

Reads ``labels.csv`` and the clips of the shared audio folder (``SPOTREC_TEST_AUDIO_DIR``, by
default ``../shared/audio`` beside the repository); writes nothing. Every clip becomes a track
with a well-formed fake ISRC, a Deezer id and a Spotify id, all derived from its sha256 so they
are the same on every run and machine. Two playlists are laid out: a Spotify one with every clip
plus one item of each kind the crawler must skip, and a Deezer one with a subset.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from config.settings import PROJECT_ROOT

CONTENT_TYPES = {".ogg": "audio/ogg", ".mp3": "audio/mpeg", ".wav": "audio/wav"}
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

SPOTIFY_PLAYLIST_ID = "5p0tRecFakeC1ipsA11T0n"  # 22 base-62 characters, like Spotify's
DEEZER_PLAYLIST_ID = "9100000001"
#: Clips whose Spotify track has a ``preview_url`` (served by the fake Spotify itself).
SPOTIFY_PREVIEWS = frozenset({"trumpet", "robin"})
#: Clips in the Deezer playlist; ``pibble`` is unreadable there, ``robin`` has no ISRC there.
DEEZER_PLAYLIST = (
    "brahms", "choice", "libri1", "asc_frontiers", "humpback", "pibble", "robin", "vibeace",
)  # fmt: skip
DEEZER_UNREADABLE = "pibble"
DEEZER_WITHOUT_ISRC = "robin"


def audio_dir() -> Path:
    """The shared audio folder: ``$SPOTREC_TEST_AUDIO_DIR`` or ``../shared/audio``."""
    named = os.environ.get("SPOTREC_TEST_AUDIO_DIR")
    return Path(named).resolve() if named else (PROJECT_ROOT.parent / "shared" / "audio").resolve()


def base62(number: int, width: int = 22) -> str:
    """``number`` in base 62, left-padded with zeros to ``width`` characters (then truncated)."""
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return digits.rjust(width, "0")[-width:]


def artists_from_attribution(attribution: str, title: str) -> tuple[str, ...]:
    """The artists a credit line names: "X by A / B is ..." gives (A, B).

    Falls back to "Copyright YYYY Name", then to the last "/"-part of the first field, then to
    the part of the title before " - ".
    """
    for part in attribution.split(" | "):
        found = re.search(r"\bby ([^|(,]+?)(?=\s+is\s|\s*\(|,|\s+Licensed|\s*$)", part)
        if found:
            return tuple(a.strip() for a in found.group(1).split(" / ") if a.strip())
    copyright_ = re.search(r"Copyright \d{4} ([^,]+)", attribution)
    if copyright_:
        return (copyright_.group(1).strip(),)
    first = attribution.split(" | ")[0]
    if " / " in first:
        return (first.rsplit(" / ", 1)[1].strip(),)
    return (title.split(" - ")[0].strip(),)


@dataclass(frozen=True)
class Clip:
    """One recording as a catalogue track."""

    name: str
    path: Path
    title: str
    artists: tuple[str, ...]
    album: str
    duration_ms: int
    isrc: str
    deezer_id: int
    spotify_id: str
    content_type: str
    sha256: str
    kind: str
    data: bytes = field(repr=False)


EntryKind = Literal["track", "null", "local", "episode", "unavailable", "no_audio"]


@dataclass(frozen=True)
class SpotifyEntry:
    """One item of the fake Spotify playlist: a clip, or an item the crawler must skip."""

    kind: EntryKind
    clip: Clip | None = None
    #: For edge items: a stable id, name and (for ``unavailable``) ISRC.
    spotify_id: str = ""
    name: str = ""
    isrc: str = ""


@dataclass(frozen=True)
class Catalogue:
    """Every clip, and the two playlists laid out over them."""

    audio_dir: Path
    clips: tuple[Clip, ...]
    spotify_entries: tuple[SpotifyEntry, ...]
    deezer_playlist: tuple[Clip, ...]
    spotify_playlist_id: str = SPOTIFY_PLAYLIST_ID
    deezer_playlist_id: str = DEEZER_PLAYLIST_ID

    def clip(self, name: str) -> Clip:
        """The clip of this file stem."""
        return next(c for c in self.clips if c.name == name)

    def by_deezer_id(self, deezer_id: int) -> Clip | None:
        """The clip with this Deezer id, if any."""
        return next((c for c in self.clips if c.deezer_id == deezer_id), None)

    def by_spotify_id(self, spotify_id: str) -> Clip | None:
        """The clip with this Spotify id, if any."""
        return next((c for c in self.clips if c.spotify_id == spotify_id), None)

    def deezer_isrc(self, clip: Clip) -> str:
        """The ISRC Deezer's record of the clip carries (empty for one clip, on purpose)."""
        return "" if clip.name == DEEZER_WITHOUT_ISRC else clip.isrc

    def deezer_readable(self, clip: Clip) -> bool:
        """Whether Deezer's record of the clip is readable."""
        return clip.name != DEEZER_UNREADABLE

    @property
    def spotify_skips(self) -> dict[str, int]:
        """How many items of the Spotify playlist the crawler should skip, by reason."""
        reasons = {"null": "null_track", "local": "local_file", "episode": "episode"}
        reasons |= {"unavailable": "unavailable", "no_audio": "no_audio"}
        counts: dict[str, int] = {}
        for entry in self.spotify_entries:
            if entry.kind != "track":
                counts[reasons[entry.kind]] = counts.get(reasons[entry.kind], 0) + 1
        return counts


def _unique(value: int, taken: set[int]) -> int:
    while value in taken:  # a collision of derived ids: step on, deterministically
        value += 1
    taken.add(value)
    return value


def build_catalogue(directory: Path | None = None) -> Catalogue:
    """Read the labels and clips of ``directory`` (default :func:`audio_dir`) into a catalogue."""
    directory = directory or audio_dir()
    with (directory / "labels.csv").open(newline="") as stream:
        rows = sorted(csv.DictReader(stream), key=lambda r: Path(r["file"]).stem)
    isrcs: set[int] = set()
    deezer_ids: set[int] = set()
    clips = []
    for row in rows:
        path = directory / row["file"]
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        designation = _unique(int(sha[:8], 16) % 100_000, isrcs)
        clips.append(
            Clip(
                name=path.stem,
                path=path,
                title=row["title"],
                artists=artists_from_attribution(row["attribution"], row["title"]),
                album=f"spotrec test clips: {row['genre']}",
                duration_ms=round(float(row["duration_s"]) * 1000),
                isrc=f"QZSPR26{designation:05d}",
                deezer_id=_unique(3_000_000_000 + int(sha[8:15], 16), deezer_ids),
                spotify_id=base62(int(sha[15:47], 16)),
                content_type=CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream"),
                sha256=sha,
                kind=row["kind"],
                data=data,
            )
        )
    entries = [SpotifyEntry("track", clip) for clip in clips]
    # Skippable items spread over the pages, so skipping is exercised on more than one page.
    edges = [
        (1, SpotifyEntry("null")),
        (5, SpotifyEntry("local", name="My own demo", spotify_id="")),
        (9, SpotifyEntry("episode", spotify_id=base62(1001), name="A podcast episode")),
        (13, SpotifyEntry("unavailable", spotify_id=base62(1002), name="Gone in this market",
                          isrc="QZSPR2699001")),
        (17, SpotifyEntry("no_audio", spotify_id=base62(1003), name="No ISRC, no preview")),
    ]  # fmt: skip
    for position, entry in edges:
        entries.insert(position, entry)
    by_name = {clip.name: clip for clip in clips}
    deezer = tuple(by_name[name] for name in DEEZER_PLAYLIST if name in by_name)
    return Catalogue(directory, tuple(clips), tuple(entries), deezer)
