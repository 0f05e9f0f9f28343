"""The playlist agent's decisions, its work function called directly against real stores."""

from __future__ import annotations

from streams.crawl import handle_playlist
from streams.handling import ATTEMPT_HEADER, Parked
from streams.names import TRACK_DISCOVERED
from streams.resources import Resources
from tests.fakes.catalogue import Catalogue
from tests.fakes.deezer_api import FakeDeezer
from tests.integration.streams.conftest import records


async def test_an_unparseable_reference_is_parked(res: Resources) -> None:
    parked = await handle_playlist(res, b"\xff\xfe")
    assert isinstance(parked, Parked)


async def test_a_playlist_that_does_not_exist_is_parked(res: Resources) -> None:
    parked = await handle_playlist(res, b"deezer:1")
    assert isinstance(parked, Parked)
    assert "no playlist" in parked.reason
    assert [r for r in await res.schedule.pending("playlist") if r.item_id == "deezer:1"] == []


async def test_a_source_that_stays_unreachable_goes_to_the_schedule(
    res: Resources, fake_deezer: FakeDeezer, catalogue: Catalogue
) -> None:
    sent_before = len(await records(res.settings, TRACK_DISCOVERED))
    fake_deezer.quota_errors = 1000  # throttled for longer than the bounded retry in place
    ref = f"deezer:{catalogue.deezer_playlist_id}"
    assert await handle_playlist(res, ref.encode(), None) is None
    [scheduled] = [r for r in await res.schedule.pending("playlist") if r.item_id == ref]
    assert (scheduled.attempt, scheduled.payload) == (1, ref.encode())
    assert "quota" in scheduled.reason.lower()
    assert len(await records(res.settings, TRACK_DISCOVERED)) == sent_before
    await res.schedule.remove(scheduled)
    # At the limit the playlist is parked for good, with the reason.
    limit = str(res.settings.retry.limit).encode()
    parked = await handle_playlist(res, ref.encode(), None, {ATTEMPT_HEADER: limit})
    assert isinstance(parked, Parked)
    assert "gave up after" in parked.reason


async def test_a_readable_playlist_sends_its_tracks(res: Resources, catalogue: Catalogue) -> None:
    before = len(await records(res.settings, TRACK_DISCOVERED))
    ref = f"deezer:{catalogue.deezer_playlist_id}".encode()
    assert await handle_playlist(res, ref) is None
    after = await records(res.settings, TRACK_DISCOVERED, expect=before + 1)
    assert len(after) > before
    assert all(key is not None and key.decode() in value.decode() for key, value, _ in after)
