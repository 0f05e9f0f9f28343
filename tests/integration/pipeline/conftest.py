"""One pipeline run shared by the end-to-end tests of this package, with the default model.

Starts fake Spotify and Deezer servers, a real ``spotrec worker`` process and an in-process
query node, all on their own keyspace, bucket, topic prefix and consumer group; stops them at
the end. Reads the shared audio through the fake catalogue. Unlike the other tests, it runs the
default embedding model, so the model a deployment gets out of the box is tested end to end.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from config.settings import DEFAULT_MODEL, Settings
from tests.fakes.catalogue import Catalogue, build_catalogue
from tests.fakes.deezer_api import FakeDeezer
from tests.fakes.spotify_api import FakeSpotify
from tests.pipelines import isolated_deployment, new_run_id, remove_deployment, start_worker
from tests.processes import terminate
from tests.tcp_proxy import free_port


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
    #: The worker's web address (its ``/metrics``).
    worker_web: str
    #: An allowed root of the worker's, empty, for tests that ingest audio of their own.
    more_audio: Path


@pytest.fixture(scope="package")
async def pipeline(
    servers: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pipeline]:
    """Everything started, nothing ingested yet."""
    run = new_run_id("e2e")
    tmp = tmp_path_factory.mktemp(run)
    catalogue = build_catalogue()
    web_port = free_port()
    async with FakeSpotify(catalogue) as spotify, FakeDeezer(catalogue) as deezer:
        settings, env = await isolated_deployment(
            servers,
            run=run,
            tmp=tmp,
            spotify=spotify,
            deezer=deezer,
            model=DEFAULT_MODEL,
            worker_env={"SPOTREC_WORKER_WEB_PORT": str(web_port)},
        )
        more_audio = tmp / "more-audio"
        more_audio.mkdir()
        roots = [str(root) for root in settings.audio.local_roots] + [str(more_audio)]
        env["SPOTREC_AUDIO_LOCAL_ROOTS"] = json.dumps(roots)
        log = tmp / "worker.log"
        worker = await start_worker(env, tmp / "worker", log)
        try:
            async with TestClient(TestServer(create_app(settings))) as api:
                yield Pipeline(
                    settings,
                    catalogue,
                    spotify,
                    deezer,
                    api,
                    log,
                    env,
                    f"http://127.0.0.1:{web_port}",
                    more_audio,
                )
        finally:
            await terminate(worker)
            await remove_deployment(settings, run)
