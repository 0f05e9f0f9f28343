"""Crawling a Spotify playlist with spotipy, unpatched, against the fake Web API."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from pydantic import SecretStr

from config.settings import Settings
from schemas.playlists import PlaylistRef
from schemas.tracks import TrackDiscoveredV1
from sources.crawler import CrawlStats, PlaylistCrawler
from sources.errors import (
    CredentialsMissing,
    CredentialsRejected,
    PlaylistNotFound,
    SourceUnavailable,
)
from sources.spotify import RETRIES, track_from_item
from tests.fakes.catalogue import SPOTIFY_PREVIEWS, Catalogue
from tests.fakes.fixtures import with_group
from tests.fakes.spotify_api import FakeSpotify


async def crawl(settings: Settings, ref: PlaylistRef) -> tuple[list[TrackDiscoveredV1], CrawlStats]:
    stats = CrawlStats()
    async with PlaylistCrawler(settings) as crawler:
        tracks = [track async for track in crawler.tracks(ref, stats)]
    return tracks, stats


async def test_every_page_is_read_and_every_clip_becomes_one_track(
    fake_settings: Settings, fake_spotify: FakeSpotify, catalogue: Catalogue
) -> None:
    ref = PlaylistRef("spotify", catalogue.spotify_playlist_id)
    tracks, stats = await crawl(fake_settings, ref)

    pages = -(-len(catalogue.spotify_entries) // fake_spotify.max_page)
    assert pages > 1
    assert stats.pages == pages
    assert fake_spotify.count(f"/v1/playlists/{ref.id}/items") == pages
    assert fake_spotify.count("/api/token") == 1  # one token for every page
    assert stats.yielded == len(tracks) == len(catalogue.clips)
    assert [t.track_id for t in tracks] == [f"isrc:{c.isrc}" for c in catalogue.clips]


async def test_skipped_items_are_counted_by_reason(
    fake_settings: Settings, catalogue: Catalogue
) -> None:
    _, stats = await crawl(fake_settings, PlaylistRef("spotify", catalogue.spotify_playlist_id))
    assert stats.skipped == {
        "null_track": 1,
        "local_file": 1,
        "episode": 1,
        "unavailable": 1,
        "no_audio": 1,
    }
    assert stats.skipped == catalogue.spotify_skips


@pytest.mark.parametrize("use_previews", [False, True])
async def test_records_carry_the_metadata_and_where_the_audio_is(
    fake_settings: Settings, fake_spotify: FakeSpotify, catalogue: Catalogue, use_previews: bool
) -> None:
    settings = with_group(fake_settings, "spotify", use_previews=use_previews)
    tracks, _ = await crawl(settings, PlaylistRef("spotify", catalogue.spotify_playlist_id))
    by_id = {t.track_id: t for t in tracks}
    for clip in catalogue.clips:
        track = by_id[f"isrc:{clip.isrc}"]
        assert track.name == clip.title
        assert track.artists == list(clip.artists)
        assert track.album == clip.album
        assert track.duration_ms == clip.duration_ms
        assert track.isrc == clip.isrc
        assert (track.source, track.source_ref) == ("spotify", clip.spotify_id)
        expected = [f"isrc:{clip.isrc}"]
        if use_previews and clip.name in SPOTIFY_PREVIEWS:
            expected.insert(0, f"url:{fake_spotify.base_url}/preview/{clip.spotify_id}")
        assert track.audio_refs == expected


async def test_the_legacy_tracks_endpoint_maps_to_the_same_records(
    fake_settings: Settings, fake_spotify: FakeSpotify, catalogue: Catalogue
) -> None:
    tracks, _ = await crawl(fake_settings, PlaylistRef("spotify", catalogue.spotify_playlist_id))
    token = next(iter(fake_spotify.tokens))
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{fake_spotify.api_url}playlists/{catalogue.spotify_playlist_id}/tracks"
    legacy: list[TrackDiscoveredV1] = []
    async with aiohttp.ClientSession() as session:
        page_url: str | None = f"{url}?market=US"
        while page_url:
            async with session.get(page_url, headers=headers) as response:
                page = await response.json()
            assert all("item" not in entry for entry in page["items"])
            legacy += [r for e in page["items"] if not isinstance(r := track_from_item(e), str)]
            page_url = page["next"]
    assert [t.asdict() for t in legacy] == [t.asdict() for t in tracks]


async def test_an_unknown_playlist_is_not_found(fake_settings: Settings) -> None:
    with pytest.raises(PlaylistNotFound, match="HTTP 404"):
        await crawl(fake_settings, PlaylistRef("spotify", "0" * 22))


async def test_wrong_credentials_are_rejected_by_the_token_endpoint(
    fake_settings: Settings, fake_spotify: FakeSpotify, catalogue: Catalogue
) -> None:
    wrong = with_group(fake_settings, "spotify", client_secret=SecretStr("not-the-secret"))
    with pytest.raises(CredentialsRejected, match="SPOTREC_SPOTIFY_CLIENT_SECRET"):
        await crawl(wrong, PlaylistRef("spotify", catalogue.spotify_playlist_id))
    assert fake_spotify.count("/v1/") == 0


async def test_missing_credentials_are_reported_before_any_request(
    fake_settings: Settings, fake_spotify: FakeSpotify, catalogue: Catalogue
) -> None:
    unset = with_group(fake_settings, "spotify", client_id=None)
    with pytest.raises(CredentialsMissing, match="SPOTREC_SPOTIFY_CLIENT_ID"):
        await crawl(unset, PlaylistRef("spotify", catalogue.spotify_playlist_id))
    assert fake_spotify.requests == []


async def test_an_unreachable_api_is_a_retriable_failure(
    fake_settings: Settings, fake_spotify: FakeSpotify, catalogue: Catalogue
) -> None:
    await fake_spotify.stop()  # nothing listens on its port any more
    down = with_group(fake_settings, "spotify", timeout_s=1.0)
    async with PlaylistCrawler(down) as crawler:
        crawler.spotify.backoff_s = 0.01
        ref = PlaylistRef("spotify", catalogue.spotify_playlist_id)
        with pytest.raises(SourceUnavailable) as caught:
            async for _ in crawler.tracks(ref, CrawlStats()):
                pass
    assert caught.value.retriable
    assert "could not be reached" in str(caught.value)


async def test_server_errors_are_retried_with_backoff(
    fake_settings: Settings, fake_spotify: FakeSpotify, catalogue: Catalogue
) -> None:
    fake_spotify.failures = 2
    stats = CrawlStats()
    async with PlaylistCrawler(fake_settings) as crawler:
        crawler.spotify.backoff_s = 0.01
        ref = PlaylistRef("spotify", catalogue.spotify_playlist_id)
        tracks = [track async for track in crawler.tracks(ref, stats)]
    assert len(tracks) == len(catalogue.clips)
    pages = -(-len(catalogue.spotify_entries) // fake_spotify.max_page)
    assert fake_spotify.count("/v1/playlists/") == pages + 2


async def test_server_errors_that_outlast_the_retries_are_a_retriable_failure(
    fake_settings: Settings, fake_spotify: FakeSpotify, catalogue: Catalogue
) -> None:
    fake_spotify.failures = 100
    async with PlaylistCrawler(fake_settings) as crawler:
        crawler.spotify.backoff_s = 0.01
        ref = PlaylistRef("spotify", catalogue.spotify_playlist_id)
        with pytest.raises(SourceUnavailable, match="HTTP 503") as caught:
            async for _ in crawler.tracks(ref, CrawlStats()):
                pass
    assert caught.value.retriable
    assert fake_spotify.count("/v1/playlists/") == 1 + RETRIES


async def test_credentials_and_tokens_never_reach_the_log(
    fake_settings: Settings,
    fake_spotify: FakeSpotify,
    catalogue: Catalogue,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="spotipy.client")
    caplog.set_level(logging.DEBUG, logger="spotipy.oauth2")
    tracks, _ = await crawl(fake_settings, PlaylistRef("spotify", catalogue.spotify_playlist_id))
    assert tracks
    assert fake_spotify.tokens
    logged = caplog.text
    assert fake_spotify.client_secret not in logged
    assert not any(token in logged for token in fake_spotify.tokens)
