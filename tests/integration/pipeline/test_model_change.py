"""A model change: ``spotrec reindex --from tracks``, interrupted and resumed, switches query nodes.

Runs a deployment of its own on the real servers: a ``spotrec worker`` with the previous default
model (``choi2017-calibrated``, 160-d, z-scored), pinned to the full version it had before the
Choi models analysed whole tracks (``...+sf-soxrhq-12k-29s``, the first 29 s: the string an
upgraded deployment's vectors carry), ingests the fake Spotify playlist, whose audio
comes from the fake Deezer; an in-process query node configured for the default model
(``musicnn-msd``, 200-d, plain cosine) serves that old snapshot, as nothing else exists. Then the
worker is restarted with the default model, the reindex is interrupted with Ctrl-C part way
through and run again, and the test checks the vectors of both versions in Cassandra, each in
the column of its length, the audio fetched again, the new snapshot's length and transform, and
the query node's switch.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from config.settings import DEFAULT_MODEL, Settings
from features.versions import model_spec, model_version_of
from snapshots.store import SnapshotStore
from stores.cassandra import CassandraSession
from stores.migrations import EMBEDDING_COLUMNS
from stores.objects import ObjectStore
from streams.names import TRACK_DISCOVERED
from tests.fakes.catalogue import Catalogue, build_catalogue
from tests.fakes.deezer_api import FakeDeezer
from tests.fakes.spotify_api import FakeSpotify
from tests.pipelines import (
    NO_AUDIO,
    interrupt_mid_replay,
    isolated_deployment,
    new_run_id,
    produce_playlists,
    remove_deployment,
    run_cli,
    start_worker,
    until,
)
from tests.processes import terminate

#: A worker loads TensorFlow and the weights before its first batch.
DEADLINE_S = 300.0
OLD_MODEL = "choi2017-calibrated"


@dataclass
class Deployment:
    """The deployment, its current worker and the query node."""

    settings: Settings
    env: dict[str, str]
    catalogue: Catalogue
    deezer: FakeDeezer
    api: TestClient[web.Request, web.Application]
    tmp: Path

    @property
    def expected(self) -> set[str]:
        """The Spotify playlist's tracks that have audio."""
        return {f"isrc:{c.isrc}" for c in self.catalogue.clips if c.name not in NO_AUDIO}

    async def vectors(self) -> dict[str, set[str]]:
        """Track ids of Cassandra's vectors by model version."""
        ks = self.settings.cassandra.keyspace
        async with CassandraSession(self.settings.cassandra) as db:
            rows = await db.execute(f"SELECT model_version, track_id FROM {ks}.embeddings")
        found: dict[str, set[str]] = {}
        for row in rows:
            found.setdefault(row["model_version"], set()).add(row["track_id"])
        return found

    async def lengths(self) -> dict[str, set[int]]:
        """The lengths of Cassandra's vectors by model version, as read from their columns."""
        ks = self.settings.cassandra.keyspace
        columns = ", ".join(EMBEDDING_COLUMNS.values())
        async with CassandraSession(self.settings.cassandra) as db:
            rows = await db.execute(f"SELECT model_version, {columns} FROM {ks}.embeddings")
        found: dict[str, set[int]] = {}
        for row in rows:
            for column in EMBEDDING_COLUMNS.values():
                if row[column] is not None:
                    found.setdefault(row["model_version"], set()).add(len(row[column]))
        return found

    async def served(self, model_version: str) -> dict[str, Any] | None:
        """The query node's listing once it serves every expected track of ``model_version``."""
        response = await self.api.get("/tracks", params={"limit": 1000})
        if response.status != 200:
            return None
        body: dict[str, Any] = await response.json()
        ids = {t["track_id"] for t in body["tracks"]}
        return body if body["model"] == model_version and ids == self.expected else None


@pytest.fixture
async def deployment(servers: Settings, tmp_path: Path) -> AsyncIterator[Deployment]:
    run = new_run_id("model")
    catalogue = build_catalogue()
    async with FakeSpotify(catalogue) as spotify, FakeDeezer(catalogue) as deezer:
        settings, env = await isolated_deployment(
            servers, run=run, tmp=tmp_path, spotify=spotify, deezer=deezer, model=DEFAULT_MODEL
        )
        try:
            async with TestClient(TestServer(create_app(settings))) as api:
                yield Deployment(settings, env, catalogue, deezer, api, tmp_path)
        finally:
            await remove_deployment(settings, run)


async def test_reindex_from_tracks_switches_models_without_a_gap(deployment: Deployment) -> None:
    d = deployment
    new_model = model_version_of(d.settings.model)
    old_model = model_version_of(
        d.settings.model.model_copy(update={"version": OLD_MODEL, "choi_windows": 0})
    )
    assert old_model.endswith("+sf-soxrhq-12k-29s")  # the earlier default's string
    assert old_model != new_model
    old_dim, new_dim = model_spec(old_model).dim, model_spec(new_model).dim
    assert old_dim != new_dim  # the length changes on the way

    # The catalogue is indexed with the old model; the node (configured for the new one) serves
    # the old snapshot, as it is the only complete one.
    # The full version pins its window rule: no SPOTREC_MODEL_CHOI_WINDOWS needed.
    old_env = {**d.env, "SPOTREC_MODEL_VERSION": old_model}
    old_log = d.tmp / "worker-old.log"
    worker = await start_worker(old_env, d.tmp / "worker-old", old_log)
    try:
        await produce_playlists(old_env, [d.catalogue.spotify_playlist_id])
        await until(lambda: d.served(old_model), DEADLINE_S, "the old model served", old_log)
    finally:
        await terminate(worker)
    assert (await d.vectors()).keys() == {old_model}
    async with ObjectStore(d.settings.s3) as objects:
        old_snapshot = await SnapshotStore(objects).latest(old_model)
    assert old_snapshot is not None and old_snapshot.dim == old_dim

    new_log = d.tmp / "worker-new.log"
    worker = await start_worker(d.env, d.tmp / "worker-new", new_log)
    try:
        fetched = d.deezer.count("/cdn/preview/")
        # Interrupted while it sends tracks back to the workers, two by two.
        done_at, total, first = await interrupt_mid_replay(
            d.env,
            d.settings.kafka.topic(TRACK_DISCOVERED),
            "reindex",
            "--from",
            "tracks",
            "--batch-size",
            "2",
            "--max-rate",
            "4",
        )
        assert "snapshot" not in first

        # The tracks sent so far are extracted and indexed, but the snapshot is incomplete:
        # the node keeps serving the old model meanwhile.
        async def partial_snapshot() -> bool:
            async with ObjectStore(d.settings.s3) as objects:
                newest = await SnapshotStore(objects).latest(new_model)
            return newest is not None and not newest.complete

        await until(partial_snapshot, DEADLINE_S, "an incomplete snapshot", new_log)
        assert await d.served(old_model), "the old model kept serving"

        # Resumed: it goes on from where it stopped, waits for the vectors, and publishes.
        second = await run_cli(d.env, "reindex", "--from", "tracks")
        replayed = re.search(r"(\d+) records replayed", second)
        assert replayed, second
        # The records the first run sent back are skipped, not sent again: only the rest of
        # the original ones are, so it resumed rather than started over.
        sent = re.search(r"(\d+) tracks sent to the workers", second)
        assert sent, second
        assert 0 < int(sent.group(1)) <= total - done_at, second
        assert "/s" in second and "left" in second  # progress: done/total, rate, time left
        assert re.search(rf"snapshot \S+: {len(d.expected)} tracks of \S+, complete", second)

        listing = await until(lambda: d.served(new_model), 30, "the new model served", new_log)
        body = await (
            await d.api.get("/recommend", params={"track_id": sorted(d.expected)[0], "k": "3"})
        ).json()
        assert body["model"] == new_model and body["snapshot"] == listing["snapshot"]
        # Beside the old vectors, not instead of them; the audio was fetched again.
        vectors = await d.vectors()
        assert vectors == {old_model: d.expected, new_model: d.expected}
        assert await d.lengths() == {old_model: {old_dim}, new_model: {new_dim}}
        async with ObjectStore(d.settings.s3) as objects:
            new_snapshot = await SnapshotStore(objects).latest(new_model)
        assert new_snapshot is not None and new_snapshot.version == listing["snapshot"]
        assert new_snapshot.dim == new_dim
        # Each snapshot in its model's retrieval space: z-scored Choi, musicnn as it is.
        assert new_snapshot.transform is not None and old_snapshot.transform is not None
        assert old_snapshot.transform["kind"] == "zscore"
        assert new_snapshot.transform == {"kind": "identity"}
        assert d.deezer.count("/cdn/preview/") - fetched == len(d.expected)

        # Idempotent: nothing left to send, nothing extracted again.
        embedded = new_log.read_text().count("embedded ")
        again = await run_cli(d.env, "reindex", "--from", "tracks")
        assert re.search(r"\b0 tracks sent to the workers", again), again
        assert new_log.read_text().count("embedded ") == embedded
        assert await d.vectors() == vectors
    finally:
        await terminate(worker)
