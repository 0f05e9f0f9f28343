"""``local:<folder>`` playlists: audio files on disk, inside the configured roots only.

Reads the folder tree (``.mp3 .ogg .oga .wav .flac``), each file's bytes (for its sha256) and
its header (for its duration); writes nothing. Folders and files must resolve, symlinks
followed, inside one of ``SPOTREC_AUDIO_LOCAL_ROOTS``. A track's id is ``local:<sha256>``, so
ingesting the same file again, or a copy of it, changes nothing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import soundfile

from config.settings import Settings
from features.audio import CONTENT_TYPES
from schemas.tracks import TrackDiscoveredV1
from sources.errors import PlaylistNotFound, PlaylistRefused
from sources.stats import SkipReason
from sources.tracks import discovered
from stores.files import digest


def local_roots(settings: Settings) -> list[Path]:
    """The configured roots, resolved against the repository root, symlinks followed."""
    return [settings.path(root).resolve() for root in settings.audio.local_roots]


def root_of(path: Path, roots: Iterable[Path]) -> Path | None:
    """The root ``path`` lies in once resolved (symlinks followed), or None."""
    resolved = path.resolve()
    return next((root for root in roots if resolved.is_relative_to(root)), None)


def resolve_folder(folder: str, settings: Settings) -> tuple[Path, Path]:
    """Resolve the folder of a ``local:`` reference and the root it lies in.

    Args:
        folder: The folder as given; a relative one is taken from the repository root.
        settings: Where the roots are configured.

    Returns:
        The resolved folder and its root.

    Raises:
        PlaylistRefused: The folder is outside every root (checked before it is looked at).
        PlaylistNotFound: It is inside a root but is not an existing folder.
    """
    roots = local_roots(settings)
    path = settings.path(Path(folder)).resolve()
    root = root_of(path, roots)
    if root is None:
        msg = (
            f"local folder {folder!r} is outside the allowed roots; add its parent to "
            "SPOTREC_AUDIO_LOCAL_ROOTS to allow it"
        )
        raise PlaylistRefused(msg)
    if not path.is_dir():
        msg = f"local folder {folder!r} does not exist or is not a folder"
        raise PlaylistNotFound(msg)
    return path, root


def _audio_files(folder: Path) -> list[Path]:
    found = []
    # os.walk does not descend into symlinked folders, so a link cannot lead the scan in circles.
    for directory, subdirs, files in os.walk(folder):
        subdirs.sort()
        found += [
            Path(directory, f) for f in sorted(files) if Path(f).suffix.lower() in CONTENT_TYPES
        ]
    return found


def _describe(path: Path) -> tuple[str, int, int | None]:
    """sha256 hex, size and duration in ms (None when the header cannot be read) of a file."""
    sha256, size = digest(path)
    try:
        duration_ms: int | None = round(soundfile.info(str(path)).duration * 1000)
    except (RuntimeError, OSError, ValueError):  # libsndfile cannot parse it: no duration
        duration_ms = None
    return sha256, size, duration_ms


async def local_tracks(
    folder: str, settings: Settings
) -> AsyncIterator[TrackDiscoveredV1 | SkipReason]:
    """Yield a record per audio file under ``folder``, in path order, or why it was skipped.

    Raises:
        PlaylistRefused: The folder is outside every root.
        PlaylistNotFound: It does not exist.
    """
    path, _ = resolve_folder(folder, settings)
    roots = local_roots(settings)
    for file in await asyncio.to_thread(_audio_files, path):
        root = root_of(file, roots)
        if root is None:  # a symlinked file pointing outside the roots
            yield "outside_roots"
            continue
        resolved = file.resolve()
        try:
            sha256, size, duration_ms = await asyncio.to_thread(_describe, resolved)
        except OSError:
            yield "unreadable_file"
            continue
        if size == 0:
            yield "unreadable_file"
            continue
        yield discovered(
            track_id=f"local:{sha256}",
            name=file.stem,
            artists=[],
            source="local",
            source_ref=resolved.relative_to(root).as_posix(),
            audio_refs=[f"file:{resolved}"],
            duration_ms=duration_ms,
        )
