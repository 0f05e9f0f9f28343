"""The audio agent's decisions, its work function called directly against real stores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from schemas.audio import AudioStoredV1
from schemas.tracks import TrackDiscoveredV1
from stores.schedule import ScheduledRetry
from streams.fetch import audio_key, handle_track, store_track_audio
from streams.handling import ATTEMPT_HEADER, Parked
from streams.names import AUDIO_STORED, TRACK_DISCOVERED
from streams.resources import Resources
from streams.schedule import resend_due
from tests.fakes.cdn import FakeCdn
from tests.integration.streams.conftest import records


def _track(name: str, url: str) -> TrackDiscoveredV1:
    """A track of this test's own (a fresh id: the tests share a deployment)."""
    return TrackDiscoveredV1(
        track_id=f"deezer:{name}-{uuid.uuid4().hex[:8]}",
        name="a track",
        artists=["someone"],
        source="deezer",
        source_ref="1",
        audio_refs=[f"url:{url}"],
    )


async def _scheduled(res: Resources, track_id: str) -> list[ScheduledRetry]:
    return [r for r in await res.schedule.pending("track") if r.item_id == track_id]


async def test_a_malformed_record_is_parked_with_the_reason(res: Resources) -> None:
    parked = await handle_track(res, b'{"track_id": 3}')
    assert isinstance(parked, Parked)
    assert "track_id" in parked.reason


async def test_a_permanent_refusal_marks_the_track_unavailable(
    res: Resources, fake_cdn: FakeCdn
) -> None:
    track = _track("gone", fake_cdn.url("/status/404"))
    assert await handle_track(res, track.dumps()) is None
    assert await res.tracks.status(track.track_id) == "unavailable"
    assert await _scheduled(res, track.track_id) == []


async def test_a_cdn_failing_for_now_schedules_a_retry_and_records_failed(
    res: Resources, fake_cdn: FakeCdn
) -> None:
    track = _track("down", fake_cdn.url("/status/503"))
    value, key = track.dumps(), track.track_id.encode()
    started = datetime.now(UTC)
    assert await handle_track(res, value, key) is None  # neither parked nor blocking
    assert fake_cdn.count("/status/503") == 2  # the bounded retry in place: 1 + 1
    assert await res.tracks.status(track.track_id) == "failed"
    [scheduled] = await _scheduled(res, track.track_id)
    assert scheduled.attempt == 1
    assert (scheduled.key, scheduled.payload) == (key, value)  # re-sent exactly as received
    assert "HTTP 503" in scheduled.reason
    # Due after the configured delay, jittered into its upper half.
    delay = (scheduled.due_at - started).total_seconds()
    assert res.settings.retry.delay_s / 2 - 1 <= delay <= res.settings.retry.delay_s + 1
    assert await records(res.settings, AUDIO_STORED, key) == []


async def test_after_the_limit_the_track_is_unavailable_with_the_reason(
    res: Resources, fake_cdn: FakeCdn
) -> None:
    track = _track("dead", fake_cdn.url("/status/500"))
    limit = res.settings.retry.limit
    headers = {ATTEMPT_HEADER: str(limit).encode()}
    assert await handle_track(res, track.dumps(), None, headers) is None
    rows = [r for r in await res.tracks.with_status("unavailable", 0, 1000)]
    [row] = [r for r in rows if r.track_id == track.track_id]
    assert row.audio_error is not None
    assert f"gave up after {limit} scheduled retries" in row.audio_error
    assert "HTTP 500" in row.audio_error
    assert await _scheduled(res, track.track_id) == []
    assert res.stats.gave_up["track"] == 1


async def test_a_scheduled_retry_is_resent_when_due_and_then_succeeds(
    res: Resources, fake_cdn: FakeCdn
) -> None:
    # Fails twice (the first try and its one retry in place), then serves the clip.
    flaky = uuid.uuid4().hex
    track = _track("flaky", fake_cdn.url(f"/flaky/{flaky}?fail=2&clip=trumpet"))
    value, key = track.dumps(), track.track_id.encode()
    await handle_track(res, value, key)
    assert await res.tracks.status(track.track_id) == "failed"
    await resend_due(res)
    assert len(await _scheduled(res, track.track_id)) == 1  # not due yet
    await resend_due(res, datetime.now(UTC) + timedelta(hours=2))
    assert await _scheduled(res, track.track_id) == []
    [(_, resent, headers)] = await records(res.settings, TRACK_DISCOVERED, key, expect=1)
    assert (resent, headers) == (value, {ATTEMPT_HEADER: b"1"})
    assert await handle_track(res, resent, key, headers) is None
    assert await res.tracks.status(track.track_id) == "stored"
    [(_, announced, _)] = await records(res.settings, AUDIO_STORED, key, expect=1)
    assert AudioStoredV1.loads(announced).track_id == track.track_id


async def test_a_replay_announces_stored_audio_without_downloading_it_again(
    res: Resources, fake_cdn: FakeCdn
) -> None:
    # As after a crash between storing the audio (or its status) and announcing it.
    track = _track("clip", fake_cdn.url("/clips/trumpet"))
    first = await store_track_audio(res, track)
    assert first is not None
    downloads = fake_cdn.count("/clips/trumpet")
    again = await store_track_audio(res, track)
    assert again is not None
    assert fake_cdn.count("/clips/trumpet") == downloads  # not fetched again
    assert (again.sha256, again.size, again.audio_source, again.content_type) == (
        first.sha256,
        first.size,
        first.audio_source,
        first.content_type,
    )
    assert again.object_key == audio_key(track.track_id)
    key = track.track_id.encode()
    announced = [
        AudioStoredV1.loads(v)
        for _, v, _ in await records(res.settings, AUDIO_STORED, key, expect=2)
    ]
    assert [a.sha256 for a in announced] == [first.sha256, first.sha256]
