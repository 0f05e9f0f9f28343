"""Error flags and messages, crawl counts, and the Deezer rate limiter."""

from __future__ import annotations

import asyncio

from sources.deezer import rate_limiter
from sources.errors import (
    AudioError,
    AudioRefused,
    AudioTooLarge,
    AudioUnavailable,
    CredentialsMissing,
    CredentialsRejected,
    PlaylistNotFound,
    PlaylistRefused,
    SourceError,
    SourceUnavailable,
    TrackNotFound,
)
from sources.stats import CrawlStats
from sources.tracks import normalize_isrc, track_id


def test_only_transient_failures_are_retriable() -> None:
    assert SourceUnavailable("x").retriable
    permanent: list[SourceError | AudioError] = [
        PlaylistNotFound("x"),
        PlaylistRefused("x"),
        TrackNotFound("x"),
        CredentialsMissing(),
        CredentialsRejected("x"),
        AudioRefused("x"),
        AudioTooLarge("x"),
        AudioUnavailable("isrc:X", ("a",)),
    ]
    assert not any(error.retriable for error in permanent)


def test_credentials_missing_names_the_variables_to_set() -> None:
    text = str(CredentialsMissing())
    assert "SPOTREC_SPOTIFY_CLIENT_ID" in text
    assert "SPOTREC_SPOTIFY_CLIENT_SECRET" in text


def test_audio_unavailable_carries_one_reason_per_locator() -> None:
    error = AudioUnavailable("isrc:GBDUW0000059", ("url:a: HTTP 404", "isrc:B: not found"))
    assert error.reasons == ("url:a: HTTP 404", "isrc:B: not found")
    assert "isrc:GBDUW0000059" in str(error)
    assert "HTTP 404" in str(error) and "not found" in str(error)


def test_crawl_stats_count_and_describe() -> None:
    stats = CrawlStats()
    stats.skip("episode")
    stats.skip("episode")
    stats.skip("null_track")
    stats.yielded = 4
    assert stats.skipped == {"episode": 2, "null_track": 1}
    assert stats.total_skipped == 3
    assert str(stats) == "4 tracks from 0 pages; skipped: episode 2, null_track 1"


def test_track_ids_prefer_the_isrc() -> None:
    assert track_id("deezer", "1", "GBDUW0000059") == "isrc:GBDUW0000059"
    assert track_id("deezer", "1", None) == "deezer:1"
    assert normalize_isrc(" gb-duw-00-00059 ") == "GBDUW0000059"
    assert normalize_isrc(None) is None


async def test_rate_limiter_spaces_requests() -> None:
    limiter = rate_limiter(50.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(6):
        await limiter.acquire()
    assert loop.time() - started >= 5 / 50.0 * 0.95
