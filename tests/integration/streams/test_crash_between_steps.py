"""A worker killed between two per-track steps: the replayed events complete the rest.

Uses the test-only hook ``SPOTREC_WORKER_CRASH_AFTER`` (the worker SIGKILLs itself right after
the named step), then starts a worker without it and checks that every track ends settled:
vector stored, announced on ``features-extracted.v1``, marked extracted, its audio deleted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from config.settings import DEFAULT_MODEL, Settings
from features.versions import model_version_of
from stores.cassandra import CassandraSession
from stores.objects import ObjectStore
from stores.tracks import TrackStore
from streams.embed import features_key
from streams.names import FEATURES_EXTRACTED
from tests.fakes.catalogue import build_catalogue
from tests.fakes.deezer_api import FakeDeezer
from tests.fakes.spotify_api import FakeSpotify
from tests.integration.streams.conftest import records
from tests.pipelines import (
    isolated_deployment,
    new_run_id,
    produce_playlists,
    remove_deployment,
    start_worker,
    until,
)
from tests.processes import terminate

#: A crashed worker's partitions go to the next one after this many seconds.
FAST_FAILOVER = {
    "SPOTREC_WORKER_SESSION_TIMEOUT_S": "6",
    "SPOTREC_WORKER_HEARTBEAT_INTERVAL_S": "2",
}


async def test_a_crash_after_the_vector_upsert_is_completed_by_the_replay(
    servers: Settings, tmp_path: Path
) -> None:
    run = new_run_id("crash")
    catalogue = build_catalogue()
    ids = {f"local:{clip.sha256}" for clip in catalogue.clips}
    async with FakeSpotify(catalogue) as spotify, FakeDeezer(catalogue) as deezer:
        settings, env = await isolated_deployment(
            servers,
            run=run,
            tmp=tmp_path,
            spotify=spotify,
            deezer=deezer,
            worker_env=FAST_FAILOVER,
            model=DEFAULT_MODEL,
        )
        model_version = model_version_of(settings.model)
        try:
            async with CassandraSession(settings.cassandra) as db:
                tracks = TrackStore(db, settings.cassandra.keyspace)
                first_log = tmp_path / "first.log"
                crashing = {**env, "SPOTREC_WORKER_CRASH_AFTER": "features.upsert"}
                worker = await start_worker(crashing, tmp_path / "first", first_log)
                try:
                    await produce_playlists(env, [f"local:{catalogue.audio_dir / 'clips'}"])
                    async with asyncio.timeout(240):
                        status = await worker.wait()
                finally:
                    await terminate(worker)
                assert status == -9, first_log.read_text()[-3000:]
                # The crash left vectors stored but neither announced nor settled.
                interrupted = [t for t in ids if await tracks.has_embedding(t, model_version)]
                assert interrupted, first_log.read_text()[-3000:]
                assert all([await tracks.status(t) != "extracted" for t in interrupted])

                second_log = tmp_path / "second.log"
                worker = await start_worker(env, tmp_path / "second", second_log)
                try:

                    async def settled() -> bool:
                        statuses = [await tracks.status(t) for t in ids]
                        return all(s == "extracted" for s in statuses)

                    await until(settled, 240, "every track extracted", second_log)
                finally:
                    await terminate(worker)
            found = await records(settings, FEATURES_EXTRACTED, expect=len(ids))
            announced = {key for key, _, _ in found}
            assert {features_key(t, model_version) for t in ids} <= announced
            async with ObjectStore(settings.s3) as objects:
                assert [key async for key in objects.keys("audio/")] == []
        finally:
            await remove_deployment(settings, run)
