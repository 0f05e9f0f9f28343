"""One pipeline run shared by the end-to-end tests of this package.

Starts fake Spotify and Deezer servers, a real ``spotrec worker`` process and an in-process
query node, all on their own keyspace, bucket, topic prefix and consumer group; stops them at
the end. Reads the shared audio through the fake catalogue.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from config.settings import PROJECT_ROOT, Settings
from stores.cassandra import CassandraSession
from stores.migrations import migrate
from stores.objects import ensure_bucket
from tests.fakes.catalogue import Catalogue, build_catalogue
from tests.fakes.deezer_api import FakeDeezer
from tests.fakes.fixtures import settings_env, settings_for_fakes
from tests.fakes.spotify_api import FakeSpotify
from tests.processes import terminate


@dataclass
class Pipeline:
    """Handles on the running pipeline."""

    settings: Settings
    catalogue: Catalogue
    spotify: FakeSpotify
    deezer: FakeDeezer
    api: TestClient[web.Request, web.Application]
    worker_log: Path
    env: dict[str, str]


@pytest.fixture(scope="package")
async def pipeline(
    servers: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pipeline]:
    """Everything started, nothing ingested yet."""
    run = f"e2e{os.urandom(5).hex()}"
    tmp = tmp_path_factory.mktemp(run)
    catalogue = build_catalogue()
    async with FakeSpotify(catalogue) as spotify, FakeDeezer(catalogue) as deezer:
        base = settings_for_fakes(servers, spotify=spotify, deezer=deezer)
        settings = base.model_copy(
            update={
                "run_dir": tmp,
                "cassandra": base.cassandra.model_copy(update={"keyspace": run}),
                "s3": base.s3.model_copy(update={"bucket": run}),
                "kafka": base.kafka.model_copy(update={"topic_prefix": f"{run}."}),
                "worker": base.worker.model_copy(update={"app_id": run}),
                "index": base.index.model_copy(
                    update={"interval_s": 2.0, "trees": 10, "cache_dir": tmp / "snapshots"}
                ),
            }
        )
        await migrate(settings.cassandra)
        await ensure_bucket(settings.s3)
        env = {
            **os.environ,
            **settings_env(settings),
            "SPOTREC_RUN_DIR": str(tmp),
            "SPOTREC_CASSANDRA_KEYSPACE": run,
            "SPOTREC_S3_BUCKET": run,
            "SPOTREC_KAFKA_TOPIC_PREFIX": f"{run}.",
            "SPOTREC_WORKER_APP_ID": run,
            "SPOTREC_INDEX_INTERVAL_S": "2",
            "SPOTREC_INDEX_TREES": "10",
            "SPOTREC_MODEL_BATCH_SIZE": "8",
        }
        log = tmp / "worker.log"
        with log.open("wb") as out:
            worker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "cli",
                "worker",
                f"--data-dir={tmp / 'worker'}",
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        try:
            async with TestClient(TestServer(create_app(settings))) as api:
                yield Pipeline(settings, catalogue, spotify, deezer, api, log, env)
        finally:
            await terminate(worker)
            async with CassandraSession(servers.cassandra) as db:
                await db.execute(f"DROP KEYSPACE IF EXISTS {run}")
