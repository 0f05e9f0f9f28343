"""Audio through Deezer: locators resolved to signed preview URLs just before the download."""

from __future__ import annotations

import asyncio

import pytest

from config.settings import Settings
from schemas.playlists import PlaylistRef
from schemas.tracks import TrackDiscoveredV1
from sources.crawler import CrawlStats, PlaylistCrawler
from sources.deezer import DeezerClient
from sources.download import AudioFetcher
from sources.errors import AudioUnavailable, SourceUnavailable, TrackNotFound
from tests.fakes.catalogue import DEEZER_UNREADABLE, DEEZER_WITHOUT_ISRC, Catalogue
from tests.fakes.deezer_api import FakeDeezer
from tests.fakes.fixtures import with_group
from tests.fakes.spotify_api import FakeSpotify


def track(*refs: str) -> TrackDiscoveredV1:
    return TrackDiscoveredV1(
        track_id="isrc:QZSPR2600002",
        name="test",
        artists=[],
        source="deezer",
        source_ref="x",
        audio_refs=list(refs),
    )


async def test_a_preview_resolved_long_before_fetching_has_expired_one_resolved_just_before_works(
    fake_settings: Settings, fake_deezer: FakeDeezer, catalogue: Catalogue
) -> None:
    clip = catalogue.clip("vibeace")
    fake_deezer.preview_ttl_s = 1.0
    async with DeezerClient(fake_settings.deezer) as client:
        stale = (await client.track(clip.deezer_id))["preview"]
    await asyncio.sleep(2.1)  # expiry has a one-second resolution

    async with AudioFetcher(fake_settings) as fetcher:
        with pytest.raises(AudioUnavailable, match="HTTP 403") as caught:
            await fetcher.fetch(track(f"url:{stale}"))
        audio = await fetcher.fetch(track(f"deezer:{clip.deezer_id}"))
    assert caught.value.causes
    assert audio.data == clip.data
    assert audio.audio_source == f"deezer:{clip.deezer_id}"
    assert audio.content_type == clip.content_type
    assert fake_deezer.count("/cdn/preview/") == 2  # the stale URL, then the fresh one


async def test_an_isrc_is_looked_up_on_deezer(
    fake_settings: Settings, fake_deezer: FakeDeezer, catalogue: Catalogue
) -> None:
    clip = catalogue.clip("asc_machine_wars")
    async with AudioFetcher(fake_settings) as fetcher:
        audio = await fetcher.fetch(track(f"isrc:{clip.isrc}"))
    assert audio.data == clip.data
    assert audio.audio_source == f"deezer:{clip.deezer_id}"
    assert fake_deezer.count(f"/track/isrc:{clip.isrc}") == 1


async def test_unreadable_unknown_and_malformed_locators_say_why(
    fake_settings: Settings, catalogue: Catalogue
) -> None:
    unreadable = catalogue.clip(DEEZER_UNREADABLE)
    no_isrc = catalogue.clip(DEEZER_WITHOUT_ISRC)
    async with AudioFetcher(fake_settings) as fetcher:
        with pytest.raises(AudioUnavailable) as caught:
            await fetcher.fetch(
                track(
                    f"deezer:{unreadable.deezer_id}",
                    f"isrc:{no_isrc.isrc}",
                    "deezer:12345",
                    "isrc:not-an-isrc",
                    "deezer:../../playlist/1",
                )
            )
    reasons = caught.value.reasons
    assert "not readable" in reasons[0]
    assert isinstance(caught.value.causes[1], TrackNotFound)
    assert "no track 12345" in reasons[2]
    assert "not an ISRC" in reasons[3]
    assert "not a Deezer track id" in reasons[4]


async def test_quota_errors_while_resolving_are_retried(
    fake_settings: Settings, fake_deezer: FakeDeezer, catalogue: Catalogue
) -> None:
    clip = catalogue.clip("libri2")
    fake_deezer.quota_errors = 2
    async with AudioFetcher(fake_settings) as fetcher:
        audio = await fetcher.fetch(track(f"isrc:{clip.isrc}"))
    assert audio.data == clip.data


async def test_a_quota_that_outlasts_the_retries_leaves_the_track_for_later(
    fake_settings: Settings, fake_deezer: FakeDeezer, catalogue: Catalogue
) -> None:
    clip = catalogue.clip("libri3")
    fake_deezer.quota_errors = 100
    settings = with_group(fake_settings, "deezer", retries=1)
    async with AudioFetcher(settings) as fetcher:
        with pytest.raises(SourceUnavailable, match="Quota") as caught:
            await fetcher.fetch(track(f"isrc:{clip.isrc}"))
    assert caught.value.retriable
    assert fake_deezer.count("/cdn/") == 0


@pytest.mark.parametrize("use_previews", [False, True])
async def test_every_playable_track_of_both_playlists_gets_its_audio(
    fake_settings: Settings,
    fake_spotify: FakeSpotify,
    fake_deezer: FakeDeezer,
    catalogue: Catalogue,
    use_previews: bool,
) -> None:
    """Crawl then fetch, as the two agents do: Spotify previews first if enabled, then Deezer."""
    settings = with_group(fake_settings, "spotify", use_previews=use_previews)
    fetched: dict[str, str] = {}
    async with PlaylistCrawler(settings) as crawler, AudioFetcher(settings) as fetcher:
        for ref in (
            PlaylistRef("spotify", catalogue.spotify_playlist_id),
            PlaylistRef("deezer", catalogue.deezer_playlist_id),
        ):
            async for found in crawler.tracks(ref, CrawlStats()):
                try:
                    fetched[found.track_id] = (await fetcher.fetch(found)).audio_source
                except AudioUnavailable as exc:
                    fetched[found.track_id] = exc.reasons[-1]
    for clip in catalogue.clips:
        source = fetched[f"isrc:{clip.isrc}"]
        if clip.name == DEEZER_UNREADABLE:  # Spotify lists it, but Deezer cannot play it
            assert source.endswith("is not readable"), source
        elif use_previews and clip.name in ("trumpet", "robin"):  # they have a preview_url
            assert source == "url:127.0.0.1", clip.name
        elif clip.name == DEEZER_WITHOUT_ISRC:  # no preview used, and Deezer lacks its ISRC
            assert source.endswith(f"Deezer has no track with ISRC {clip.isrc}"), source
        else:
            assert source == f"deezer:{clip.deezer_id}", clip.name
    robin = catalogue.clip(DEEZER_WITHOUT_ISRC)
    assert fetched[f"deezer:{robin.deezer_id}"] == f"deezer:{robin.deezer_id}"
    assert fake_spotify.count("/preview/") == (2 if use_previews else 0)
