"""Crawling a Deezer playlist and looking tracks up against the fake Deezer API."""

from __future__ import annotations

import time

import pytest

from config.settings import Settings
from schemas.playlists import PlaylistRef
from sources.crawler import CrawlStats, PlaylistCrawler
from sources.deezer import DeezerClient
from sources.errors import PlaylistNotFound, SourceUnavailable, TrackNotFound
from tests.fakes.catalogue import DEEZER_UNREADABLE, DEEZER_WITHOUT_ISRC, Catalogue
from tests.fakes.deezer_api import FakeDeezer
from tests.fakes.fixtures import with_group


async def test_every_page_is_read_and_readable_tracks_are_yielded(
    fake_settings: Settings, fake_deezer: FakeDeezer, catalogue: Catalogue
) -> None:
    stats = CrawlStats()
    async with PlaylistCrawler(fake_settings) as crawler:
        ref = PlaylistRef("deezer", catalogue.deezer_playlist_id)
        tracks = [track async for track in crawler.tracks(ref, stats)]

    listed = catalogue.deezer_playlist
    pages = -(-len(listed) // fake_deezer.max_page)
    assert pages > 1
    assert stats.pages == pages
    assert fake_deezer.count(f"/playlist/{ref.id}/tracks") == pages
    assert stats.skipped == {"unreadable": 1}
    readable = [clip for clip in listed if clip.name != DEEZER_UNREADABLE]
    assert [t.source_ref for t in tracks] == [str(clip.deezer_id) for clip in readable]
    # The unreadable track is never looked up: its playlist entry says enough.
    unreadable = catalogue.clip(DEEZER_UNREADABLE)
    assert fake_deezer.count(f"/track/{unreadable.deezer_id}") == 0


async def test_tracks_are_keyed_by_the_isrc_from_the_full_track_object(
    fake_settings: Settings, catalogue: Catalogue
) -> None:
    stats = CrawlStats()
    async with PlaylistCrawler(fake_settings) as crawler:
        ref = PlaylistRef("deezer", catalogue.deezer_playlist_id)
        tracks = {t.source_ref: t async for t in crawler.tracks(ref, stats)}
    for clip in catalogue.deezer_playlist:
        if clip.name == DEEZER_UNREADABLE:
            continue
        track = tracks[str(clip.deezer_id)]
        if clip.name == DEEZER_WITHOUT_ISRC:
            assert track.track_id == f"deezer:{clip.deezer_id}"
            assert track.audio_refs == [f"deezer:{clip.deezer_id}"]
        else:
            assert track.track_id == f"isrc:{clip.isrc}"
            assert track.audio_refs == [f"deezer:{clip.deezer_id}", f"isrc:{clip.isrc}"]
        assert track.name == clip.title
        assert track.artists == list(clip.artists)
        assert track.album == clip.album
        assert track.duration_ms == clip.duration_ms // 1000 * 1000  # Deezer counts seconds


async def test_an_unknown_playlist_is_not_found_though_deezer_answers_200(
    fake_settings: Settings,
) -> None:
    async with PlaylistCrawler(fake_settings) as crawler:
        with pytest.raises(PlaylistNotFound, match="no playlist 12345"):
            async for _ in crawler.tracks(PlaylistRef("deezer", "12345"), CrawlStats()):
                pass


async def test_quota_errors_are_retried_until_the_call_succeeds(
    fake_settings: Settings, fake_deezer: FakeDeezer, catalogue: Catalogue
) -> None:
    clip = catalogue.clip("brahms")
    fake_deezer.quota_errors = 3
    async with DeezerClient(fake_settings.deezer) as client:
        track = await client.track_by_isrc(clip.isrc)
    assert track["id"] == clip.deezer_id
    assert fake_deezer.count(f"/track/isrc:{clip.isrc}") == 4
    assert fake_deezer.quota_errors == 0


async def test_a_quota_that_outlasts_the_retries_is_a_retriable_failure(
    fake_settings: Settings, fake_deezer: FakeDeezer, catalogue: Catalogue
) -> None:
    settings = with_group(fake_settings, "deezer", retries=2)
    fake_deezer.quota_errors = 100
    async with PlaylistCrawler(settings) as crawler:
        with pytest.raises(SourceUnavailable, match="Quota limit exceeded") as caught:
            ref = PlaylistRef("deezer", catalogue.deezer_playlist_id)
            async for _ in crawler.tracks(ref, CrawlStats()):
                pass
    assert caught.value.retriable
    assert len(fake_deezer.requests) == 3  # the first try and two retries


async def test_unknown_tracks_and_isrcs_are_not_found(
    fake_settings: Settings, fake_deezer: FakeDeezer, catalogue: Catalogue
) -> None:
    async with DeezerClient(fake_settings.deezer) as client:
        with pytest.raises(TrackNotFound):
            await client.track(1)
        with pytest.raises(TrackNotFound):
            await client.track_by_isrc("QZSPR2699999")
        # An ISRC Deezer's record of this clip lacks: no match, like a catalogue mismatch.
        with pytest.raises(TrackNotFound):
            await client.track_by_isrc(catalogue.clip(DEEZER_WITHOUT_ISRC).isrc)
        # Ids from events never become arbitrary paths.
        with pytest.raises(TrackNotFound):
            await client.track("../playlist/1")
    assert not any("playlist" in path for path in fake_deezer.requests)


async def test_requests_are_spaced_by_the_rate_limit(
    fake_settings: Settings, fake_deezer: FakeDeezer, catalogue: Catalogue
) -> None:
    settings = with_group(fake_settings, "deezer", rate_per_s=20.0)
    clip = catalogue.clip("choice")
    async with DeezerClient(settings.deezer) as client:
        started = time.monotonic()
        for _ in range(5):
            await client.track(clip.deezer_id)
        elapsed = time.monotonic() - started
    assert elapsed >= 4 / 20.0 * 0.95
