"""``local:<folder>`` playlists over real files: content ids, names, durations, and the roots."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

from config.settings import PROJECT_ROOT, Settings
from schemas.playlists import PlaylistRef
from schemas.tracks import TrackDiscoveredV1
from sources.crawler import CrawlStats, PlaylistCrawler
from sources.errors import PlaylistNotFound, PlaylistRefused
from tests.fakes.catalogue import Catalogue
from tests.fakes.fixtures import settings_for_fakes


async def crawl(settings: Settings, folder: str) -> tuple[list[TrackDiscoveredV1], CrawlStats]:
    stats = CrawlStats()
    async with PlaylistCrawler(settings) as crawler:
        tracks = [t async for t in crawler.tracks(PlaylistRef("local", folder), stats)]
    return tracks, stats


def relative_to_repo(path: Path) -> str:
    return os.path.relpath(path, PROJECT_ROOT)


def labels(catalogue: Catalogue) -> dict[str, dict[str, str]]:
    with (catalogue.audio_dir / "labels.csv").open(newline="") as stream:
        return {Path(row["file"]).stem: row for row in csv.DictReader(stream)}


async def test_every_clip_is_a_track_keyed_by_its_content(
    fake_settings: Settings, catalogue: Catalogue
) -> None:
    tracks, stats = await crawl(fake_settings, str(catalogue.audio_dir))
    rows = labels(catalogue)
    assert stats.yielded == len(tracks) == len(rows)
    assert stats.skipped == {}
    for track in tracks:
        row = rows[track.name]  # the name is the file name without its extension
        assert track.track_id == f"local:{row['sha256']}"
        assert track.source == "local"
        assert track.audio_refs == [f"file:{(catalogue.audio_dir / row['file']).resolve()}"]
        assert track.duration_ms is not None
        assert abs(track.duration_ms / 1000 - float(row["duration_s"])) < 0.1, track.name


async def test_ids_are_stable_across_runs_and_copies(
    settings: Settings, catalogue: Catalogue, tmp_path: Path
) -> None:
    clip = catalogue.clip("trumpet")
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    shutil.copy(clip.path, tmp_path / "a" / "first take.ogg")
    shutil.copy(clip.path, tmp_path / "b" / "deeper" / "Second Take.OGG")
    (tmp_path / "b" / "notes.txt").write_text("not audio")
    local = settings_for_fakes(settings, local_roots=(tmp_path,))

    first, stats = await crawl(local, str(tmp_path))
    again, _ = await crawl(local, str(tmp_path))
    alone, _ = await crawl(local, str(tmp_path / "b"))

    assert [t.track_id for t in first] == [f"local:{clip.sha256}"]
    assert first[0].name == "first take"
    assert stats.skipped == {"duplicate": 1}  # the copy: same bytes, same track
    assert [t.asdict() for t in again] == [t.asdict() for t in first]
    assert [(t.track_id, t.name) for t in alone] == [(f"local:{clip.sha256}", "Second Take")]


async def test_a_folder_outside_the_roots_is_refused_before_it_is_read(
    settings: Settings, catalogue: Catalogue, tmp_path: Path
) -> None:
    only_audio = settings_for_fakes(settings, local_roots=(catalogue.audio_dir,))
    shutil.copy(catalogue.clip("robin").path, tmp_path / "robin.ogg")
    with pytest.raises(PlaylistRefused, match="SPOTREC_AUDIO_LOCAL_ROOTS"):
        await crawl(only_audio, str(tmp_path))
    with pytest.raises(PlaylistRefused):  # '..' cannot climb out of a root
        await crawl(only_audio, str(catalogue.audio_dir / ".." / ".." / "shared"))


async def test_a_symlinked_folder_is_judged_by_where_it_leads(
    settings: Settings, tmp_path: Path, catalogue: Catalogue
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    shutil.copy(catalogue.clip("robin").path, outside / "robin.ogg")
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "file-link.ogg").symlink_to(outside / "robin.ogg")
    local = settings_for_fakes(settings, local_roots=(root,))

    with pytest.raises(PlaylistRefused):
        await crawl(local, str(root / "link"))
    tracks, stats = await crawl(local, str(root))
    assert tracks == []
    assert stats.skipped == {"outside_roots": 1}  # the file link; the folder link is not walked


async def test_a_missing_folder_inside_a_root_is_not_found(
    settings: Settings, tmp_path: Path
) -> None:
    local = settings_for_fakes(settings, local_roots=(tmp_path,))
    with pytest.raises(PlaylistNotFound):
        await crawl(local, str(tmp_path / "nothing-here"))


async def test_unreadable_and_empty_files_are_counted_not_fatal(
    settings: Settings, catalogue: Catalogue, tmp_path: Path
) -> None:
    shutil.copy(catalogue.clip("robin").path, tmp_path / "robin.ogg")
    (tmp_path / "empty.mp3").write_bytes(b"")
    (tmp_path / "garbage.wav").write_bytes(b"this is not a wave file at all")
    local = settings_for_fakes(settings, local_roots=(tmp_path,))
    tracks, stats = await crawl(local, str(tmp_path))
    assert sorted(t.name for t in tracks) == ["garbage", "robin"]
    garbage = next(t for t in tracks if t.name == "garbage")
    assert garbage.duration_ms is None  # unreadable header: no duration, still a track
    assert stats.skipped == {"unreadable_file": 1}


async def test_a_relative_folder_is_taken_from_the_repository_root(
    settings: Settings, catalogue: Catalogue
) -> None:
    relative = relative_to_repo(catalogue.audio_dir)
    local = settings_for_fakes(settings, local_roots=(catalogue.audio_dir,))
    tracks, _ = await crawl(local, relative)
    assert len(tracks) == len(catalogue.clips)
