"""Fetching audio against the fake hosts: caps, timeouts, retries, the allow-list, redirects."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import time
from pathlib import Path

import pytest

from config.settings import Settings
from schemas.tracks import TrackDiscoveredV1
from sources.download import AudioFetcher, FetchedAudio
from sources.errors import (
    AudioError,
    AudioRefused,
    AudioTooLarge,
    AudioUnavailable,
    SourceUnavailable,
)
from tests.fakes.catalogue import Catalogue
from tests.fakes.cdn import FakeCdn
from tests.fakes.fixtures import settings_for_fakes, with_group


def track(*refs: str) -> TrackDiscoveredV1:
    return TrackDiscoveredV1(
        track_id="isrc:QZSPR2600001",
        name="test",
        artists=[],
        source="spotify",
        source_ref="x",
        audio_refs=list(refs),
    )


async def fetch(settings: Settings, *refs: str) -> FetchedAudio:
    async with AudioFetcher(settings) as fetcher:
        return await fetcher.fetch(track(*refs))


async def unavailable(settings: Settings, *refs: str) -> AudioUnavailable:
    with pytest.raises(AudioUnavailable) as caught:
        await fetch(settings, *refs)
    return caught.value


async def test_a_clip_is_downloaded_whole_with_its_type_and_provenance(
    fake_settings: Settings, fake_cdn: FakeCdn, catalogue: Catalogue
) -> None:
    clip = catalogue.clip("brahms")
    audio = await fetch(fake_settings, f"url:{fake_cdn.url('/clips/brahms')}")
    assert audio.data == clip.data
    assert audio.sha256 == clip.sha256 == hashlib.sha256(audio.data).hexdigest()
    assert audio.content_type == "audio/ogg"
    assert audio.audio_source == "url:127.0.0.1"


@pytest.mark.parametrize("declare", ["0", "1"])
async def test_a_body_over_the_cap_is_refused(
    fake_settings: Settings, fake_cdn: FakeCdn, declare: str
) -> None:
    capped = with_group(fake_settings, "audio", max_bytes=100_000, retries=3)
    url = fake_cdn.url(f"/big?size=5000000&declare={declare}")
    error = await unavailable(capped, f"url:{url}")
    assert isinstance(error.causes[0], AudioTooLarge)
    assert fake_cdn.count("/big") == 1  # too large is final: never retried


async def test_a_body_at_the_cap_is_accepted(fake_settings: Settings, fake_cdn: FakeCdn) -> None:
    capped = with_group(fake_settings, "audio", max_bytes=100_000)
    audio = await fetch(capped, f"url:{fake_cdn.url('/big?size=100000')}")
    assert len(audio.data) == 100_000


@pytest.mark.parametrize("path", ["/stall", "/stall-body"])
async def test_a_stalled_host_times_out_and_is_retried(
    fake_settings: Settings, fake_cdn: FakeCdn, path: str
) -> None:
    quick = with_group(fake_settings, "audio", timeout_s=0.3, retries=1)
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="timed out") as caught:
        await fetch(quick, f"url:{fake_cdn.url(path)}")
    assert caught.value.retriable  # worth trying again later
    assert time.monotonic() - started < 3.0
    assert fake_cdn.count(path) == 2  # the first try and one retry


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_transient_failures_are_retried_until_success(
    fake_settings: Settings, fake_cdn: FakeCdn, catalogue: Catalogue, status: int
) -> None:
    key = f"k{status}"
    url = fake_cdn.url(f"/flaky/{key}?fail=2&status={status}&clip=robin")
    audio = await fetch(with_group(fake_settings, "audio", retries=3), f"url:{url}")
    assert audio.data == catalogue.clip("robin").data
    assert fake_cdn.count(f"/flaky/{key}") == 3


async def test_retries_give_up_after_the_configured_count(
    fake_settings: Settings, fake_cdn: FakeCdn
) -> None:
    url = fake_cdn.url("/flaky/never?fail=99&status=502")
    with pytest.raises(SourceUnavailable, match="HTTP 502"):
        await fetch(with_group(fake_settings, "audio", retries=2), f"url:{url}")
    assert fake_cdn.count("/flaky/never") == 3


@pytest.mark.parametrize("status", [400, 403, 404, 410])
async def test_client_errors_are_not_retried(
    fake_settings: Settings, fake_cdn: FakeCdn, status: int
) -> None:
    error = await unavailable(fake_settings, f"url:{fake_cdn.url(f'/status/{status}')}")
    assert f"HTTP {status}" in error.reasons[0]
    assert fake_cdn.count("/status") == 1


async def test_empty_bodies_and_web_pages_are_failures(
    fake_settings: Settings, fake_cdn: FakeCdn
) -> None:
    error = await unavailable(
        fake_settings, f"url:{fake_cdn.url('/empty')}", f"url:{fake_cdn.url('/html')}"
    )
    assert "empty body" in error.reasons[0]
    assert "text/html" in error.reasons[1]


async def test_a_host_not_allowed_is_never_contacted(
    fake_settings: Settings, fake_cdn: FakeCdn
) -> None:
    port = fake_cdn.base_url.rsplit(":", 1)[1]
    # 'localhost' reaches the same server, but only '127.0.0.1' is on the allow-list.
    elsewhere = [
        f"url:http://localhost:{port}/clips/robin",
        f"url:http://127.0.0.1.nip.io:{port}/clips/robin",
        f"url:http://127.0.0.1@localhost:{port}/clips/robin",
        f"url:ftp://127.0.0.1:{port}/clips/robin",
    ]
    error = await unavailable(fake_settings, *elsewhere)
    assert len(error.causes) == len(elsewhere)
    assert all(isinstance(cause, AudioRefused) for cause in error.causes)
    assert fake_cdn.requests == []


async def test_a_redirect_to_a_host_not_allowed_is_refused_before_it_is_followed(
    fake_settings: Settings, fake_cdn: FakeCdn
) -> None:
    port = fake_cdn.base_url.rsplit(":", 1)[1]
    target = f"http://localhost:{port}/clips/robin"
    error = await unavailable(fake_settings, f"url:{fake_cdn.url(f'/redirect?to={target}')}")
    assert isinstance(error.causes[0], AudioRefused)
    assert fake_cdn.count("/redirect") == 1
    assert fake_cdn.count("/clips") == 0


async def test_a_redirect_within_the_allowed_hosts_is_followed(
    fake_settings: Settings, fake_cdn: FakeCdn, catalogue: Catalogue
) -> None:
    target = fake_cdn.url("/clips/trumpet")
    audio = await fetch(fake_settings, f"url:{fake_cdn.url(f'/redirect?to={target}')}")
    assert audio.data == catalogue.clip("trumpet").data
    assert fake_cdn.count("/clips/trumpet") == 1


async def test_redirect_loops_end(fake_settings: Settings, fake_cdn: FakeCdn) -> None:
    error = await unavailable(fake_settings, f"url:{fake_cdn.url('/loop/0')}")
    assert "more than 5 redirects" in error.reasons[0]
    assert fake_cdn.count("/loop/") == 6


async def test_locators_are_tried_in_order_until_one_works(
    fake_settings: Settings, fake_cdn: FakeCdn, catalogue: Catalogue
) -> None:
    audio = await fetch(
        fake_settings,
        "url:http://169.254.169.254/latest/meta-data/",
        f"url:{fake_cdn.url('/status/404')}",
        f"url:{fake_cdn.url('/clips/choice')}",
        f"url:{fake_cdn.url('/clips/robin')}",
    )
    assert audio.data == catalogue.clip("choice").data
    assert fake_cdn.count("/clips/robin") == 0


async def test_one_transient_failure_makes_the_whole_fetch_retriable(
    fake_settings: Settings, fake_cdn: FakeCdn
) -> None:
    refs = [f"url:{fake_cdn.url('/status/404')}", f"url:{fake_cdn.url('/status/503')}"]
    with pytest.raises(SourceUnavailable) as caught:
        await fetch(with_group(fake_settings, "audio", retries=0), *refs)
    assert "HTTP 404" in str(caught.value) and "HTTP 503" in str(caught.value)


async def test_files_are_read_inside_the_roots_only(
    settings: Settings, catalogue: Catalogue, tmp_path: Path
) -> None:
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    shutil.copy(catalogue.clip("robin").path, inside / "robin.ogg")
    shutil.copy(catalogue.clip("robin").path, outside / "robin.ogg")
    (inside / "escape.ogg").symlink_to(outside / "robin.ogg")
    (inside / "secret.txt").write_text("not audio")
    local = settings_for_fakes(settings, local_roots=(inside,))

    audio = await fetch(local, f"file:{inside / 'robin.ogg'}")
    assert audio.data == catalogue.clip("robin").data
    assert (audio.audio_source, audio.content_type) == ("file:robin.ogg", "audio/ogg")

    refused = [
        f"file:{outside / 'robin.ogg'}",
        f"file:{inside / '..' / 'outside' / 'robin.ogg'}",
        f"file:{inside / 'escape.ogg'}",
        f"file:{inside / 'secret.txt'}",
    ]
    error = await unavailable(local, *refused)
    assert all(isinstance(cause, AudioRefused) for cause in error.causes), error.reasons
    assert not any(str(tmp_path) in reason for reason in error.reasons)


async def test_files_over_the_cap_or_missing_fail(
    settings: Settings, catalogue: Catalogue, tmp_path: Path
) -> None:
    shutil.copy(catalogue.clip("brahms").path, tmp_path / "brahms.ogg")
    local = with_group(
        settings_for_fakes(settings, local_roots=(tmp_path,)), "audio", max_bytes=2048
    )
    error = await unavailable(
        local, f"file:{tmp_path / 'brahms.ogg'}", f"file:{tmp_path / 'no.ogg'}"
    )
    assert isinstance(error.causes[0], AudioTooLarge)
    assert type(error.causes[1]) is AudioError


async def test_an_empty_track_has_no_audio(fake_settings: Settings) -> None:
    error = await unavailable(fake_settings)
    assert error.reasons == ()
    assert "no audio locator" in str(error)


async def test_stop_is_safe_twice_and_start_after_stop_works(
    fake_settings: Settings, fake_cdn: FakeCdn
) -> None:
    fetcher = AudioFetcher(fake_settings)
    await fetcher.start()
    await fetcher.stop()
    await fetcher.stop()
    await fetcher.start()
    try:
        audio = await fetcher.fetch(track(f"url:{fake_cdn.url('/clips/robin')}"))
    finally:
        await fetcher.stop()
    assert audio.data
    await asyncio.sleep(0)
