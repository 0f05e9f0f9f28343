"""The features agent's decisions, its work function called directly against real stores."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from config.settings import Settings
from features.extractor import Extractor
from schemas.audio import AudioStoredV1
from schemas.features import FeaturesExtractedV1
from schemas.tracks import TrackDiscoveredV1
from stores.migrations import LEGACY_DIM as EMBEDDING_DIM
from streams.embed import embed_batch, embed_or_park, features_key
from streams.fetch import audio_key, handle_track
from streams.handling import ATTEMPT_HEADER
from streams.names import AUDIO_STORED, FEATURES_EXTRACTED, TRACK_DISCOVERED
from streams.resources import Resources
from streams.schedule import resend_due
from tests.fakes.catalogue import Catalogue
from tests.fakes.cdn import FakeCdn
from tests.fakes.fixtures import settings_for_fakes
from tests.integration.streams.conftest import records, scoped_resources


@pytest.fixture
async def embedding_res(
    deployment: Settings,
    extractor: Extractor,
    fake_cdn: FakeCdn,  # the fixture conftest imports, requested by name
) -> AsyncIterator[Resources]:
    """Resources with the real extractor, allowed to download from the fake CDN."""
    async for res in scoped_resources(settings_for_fakes(deployment), extractor):
        yield res


async def _stored(res: Resources, catalogue: Catalogue, clip: str | None = None) -> AudioStoredV1:
    """Audio of a fresh track in the object store, as the audio agent leaves it."""
    track_id = f"deezer:{uuid.uuid4().hex[:12]}"
    data = catalogue.clip(clip).data if clip else b"not audio at all" * 100
    key = audio_key(track_id)
    await res.objects.put(key, data, "audio/mpeg")
    await res.tracks.set_status(track_id, "stored", audio_source="url:cdn")
    return AudioStoredV1(
        track_id=track_id,
        object_key=key,
        sha256="0" * 64,
        size=len(data),
        audio_source="url:cdn",
        content_type="audio/mpeg",
    )


async def test_a_replay_after_the_upsert_completes_the_emit_status_and_delete(
    res: Resources, catalogue: Catalogue
) -> None:
    item = await _stored(res, catalogue, "trumpet")
    # The state a crash right after the vector upsert leaves: vector stored, nothing after it.
    vector = FeaturesExtractedV1(
        track_id=item.track_id,
        model_version=res.model_version,
        embedding=[float(i) / EMBEDDING_DIM for i in range(EMBEDDING_DIM)],
        audio_source=item.audio_source,
        audio_sha256=item.sha256,
        tags=[["jazz", 0.75], ["rock", 0.25]],
        extracted_at=1_700_000_000.0,
    )
    await res.tracks.store_vectors([vector])
    assert await embed_batch(res, [item]) == 0  # nothing new to embed
    key = features_key(item.track_id, res.model_version)
    [(_, value, _)] = await records(res.settings, FEATURES_EXTRACTED, key, expect=1)
    announced = FeaturesExtractedV1.loads(value)
    assert announced.embedding == pytest.approx(vector.embedding, abs=1e-6)
    assert announced.tags == [["jazz", 0.75], ["rock", 0.25]]
    assert announced.extracted_at == vector.extracted_at
    assert await res.tracks.status(item.track_id) == "extracted"
    assert await res.objects.head(item.object_key) is None  # the audio is deleted
    # And a second replay finds everything done: it announces nothing more.
    assert await embed_batch(res, [item]) == 0
    assert len(await records(res.settings, FEATURES_EXTRACTED, key, expect=1)) == 1


async def test_missing_audio_without_a_vector_is_fetched_again_on_the_schedule(
    res: Resources,
) -> None:
    track = TrackDiscoveredV1(
        track_id=f"deezer:{uuid.uuid4().hex[:12]}",
        name="lost",
        artists=["a"],
        source="deezer",
        source_ref="7",
        audio_refs=["deezer:7", "isrc:GBDUW0000059"],
    )
    await res.tracks.upsert_discovered(track)
    item = AudioStoredV1(
        track_id=track.track_id,
        object_key=audio_key(track.track_id),
        sha256="0" * 64,
        size=1,
        audio_source="deezer:7",
    )
    assert await embed_batch(res, [item]) == 0
    assert await res.tracks.status(track.track_id) == "failed"
    [scheduled] = [r for r in await res.schedule.pending("track") if r.item_id == track.track_id]
    resent = TrackDiscoveredV1.loads(scheduled.payload)
    assert (resent.track_id, resent.audio_refs) == (track.track_id, track.audio_refs)
    assert "missing" in scheduled.reason


async def test_a_batch_is_embedded_announced_settled_and_its_audio_deleted(
    embedding_res: Resources, catalogue: Catalogue
) -> None:
    res = embedding_res
    good = await _stored(res, catalogue, "trumpet")
    bad = await _stored(res, catalogue)
    assert await embed_batch(res, [good, bad]) == 1
    assert await res.tracks.has_embedding(good.track_id, res.model_version)
    assert await res.tracks.status(good.track_id) == "extracted"
    key = features_key(good.track_id, res.model_version)
    [(_, value, _)] = await records(res.settings, FEATURES_EXTRACTED, key, expect=1)
    stored = await res.tracks.features(good.track_id, res.model_version)
    assert stored is not None
    assert FeaturesExtractedV1.loads(value).embedding == pytest.approx(stored.embedding, abs=1e-6)
    assert await res.tracks.status(bad.track_id) == "unavailable"
    assert await res.objects.head(good.object_key) is None
    assert await res.objects.head(bad.object_key) is None


async def test_an_item_that_breaks_a_batch_is_parked_alone_and_the_rest_is_embedded(
    embedding_res: Resources, catalogue: Catalogue
) -> None:
    res = embedding_res
    good = await _stored(res, catalogue, "trumpet")
    other = await _stored(res, catalogue, "trumpet")
    # A track id longer than Cassandra's 64 KiB partition key: every read of it is refused.
    broken = AudioStoredV1(
        track_id=f"deezer:{'9' * 70_000}",
        object_key=audio_key("deezer:9"),
        sha256="0" * 64,
        size=1,
        audio_source="url:cdn",
    )
    first, parked, last = await embed_or_park(res, "extract_features", [good, broken, other])
    assert first is None
    assert last is None
    assert parked is not None
    assert "longer than" in parked.reason  # the server's own words about the key
    for item in (good, other):
        assert await res.tracks.status(item.track_id) == "extracted"
        assert await res.tracks.has_embedding(item.track_id, res.model_version)
    assert not await res.tracks.has_embedding(broken.track_id, res.model_version)


async def test_a_track_that_failed_for_now_is_retried_by_the_schedule_and_indexed(
    embedding_res: Resources, fake_cdn: FakeCdn
) -> None:
    res = embedding_res
    # The CDN fails the first try and its retry in place, then serves the clip.
    track = TrackDiscoveredV1(
        track_id=f"deezer:{uuid.uuid4().hex[:12]}",
        name="flaky",
        artists=["a"],
        source="deezer",
        source_ref="9",
        audio_refs=[f"url:{fake_cdn.url(f'/flaky/{uuid.uuid4().hex}?fail=2&clip=trumpet')}"],
    )
    key = track.track_id.encode()
    assert await handle_track(res, track.dumps(), key) is None
    assert await res.tracks.status(track.track_id) == "failed"
    # The leader's sweeper, once the retry is due, sends the record back.
    await resend_due(res, datetime.now(UTC) + timedelta(hours=2))
    [(_, value, headers)] = await records(res.settings, TRACK_DISCOVERED, key, expect=1)
    assert headers == {ATTEMPT_HEADER: b"1"}
    assert await handle_track(res, value, key, headers) is None
    [(_, stored, _)] = await records(res.settings, AUDIO_STORED, key, expect=1)
    assert await embed_batch(res, [AudioStoredV1.loads(stored)]) == 1
    assert await res.tracks.has_embedding(track.track_id, res.model_version)
    assert await res.tracks.status(track.track_id) == "extracted"


async def test_a_track_twice_in_one_batch_is_embedded_and_announced_once(
    embedding_res: Resources, catalogue: Catalogue
) -> None:
    res = embedding_res
    first = await _stored(res, catalogue, "trumpet")
    # The same track stored again under its own object (discovered through a second playlist).
    again = AudioStoredV1(
        track_id=first.track_id,
        object_key=audio_key(first.track_id) + ".again",
        sha256=first.sha256,
        size=first.size,
        audio_source=first.audio_source,
        content_type=first.content_type,
    )
    await res.objects.put(again.object_key, catalogue.clip("trumpet").data, "audio/mpeg")
    assert await embed_batch(res, [first, again]) == 1
    key = features_key(first.track_id, res.model_version)
    [(_, value, _)] = await records(res.settings, FEATURES_EXTRACTED, key, expect=1)
    stored = await res.tracks.features(first.track_id, res.model_version)
    assert stored is not None
    assert FeaturesExtractedV1.loads(value).embedding == stored.embedding  # the same vector
    # Both objects are done with: neither is left behind.
    assert await res.objects.head(first.object_key) is None
    assert await res.objects.head(again.object_key) is None
