"""Helpers for tests that run the whole pipeline: a deployment, workers, broadcasts, polling.

Reads the session's settings and the fake catalogue; creates a Cassandra keyspace, an S3 bucket,
a topic prefix and a consumer group of the run's own (removed again by :func:`remove_deployment`),
starts real ``spotrec worker`` and ``spotrec produce-playlists`` processes with the matching
``SPOTREC_*`` environment, and writes each worker's output to a log file.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from config.settings import PROJECT_ROOT, Settings
from schemas.snapshots import IndexUpdatedV1
from stores.cassandra import CassandraSession
from stores.migrations import migrate
from stores.objects import ensure_bucket, s3_client
from streams.kafka_clients import started
from streams.names import INDEX_UPDATED
from tests.fakes.catalogue import DEEZER_UNREADABLE, DEEZER_WITHOUT_ISRC, Catalogue
from tests.fakes.deezer_api import FakeDeezer
from tests.fakes.fixtures import settings_env, settings_for_fakes
from tests.fakes.spotify_api import FakeSpotify
from tests.keyspaces import drop_keyspace

T = TypeVar("T")

#: Clips Spotify lists whose audio cannot be had: Deezer cannot play one and lacks the other's
#: ISRC (Spotify previews are off by default, so nothing else is tried).
NO_AUDIO = (DEEZER_UNREADABLE, DEEZER_WITHOUT_ISRC)


def new_run_id(prefix: str) -> str:
    """A fresh lower-case name for the run's keyspace, bucket, topic prefix and group."""
    return f"{prefix}{os.urandom(5).hex()}"


def run_scoped(base: Settings, run: str, folder: Path) -> tuple[Settings, dict[str, str]]:
    """``base`` with the run's own keyspace, bucket, topic prefix, app id and folders, and the
    ``SPOTREC_*`` environment that tells a ``spotrec`` process the same.
    """
    settings = base.model_copy(
        update={
            "run_dir": folder,
            "cassandra": base.cassandra.model_copy(update={"keyspace": run}),
            "s3": base.s3.model_copy(update={"bucket": run}),
            "kafka": base.kafka.model_copy(update={"topic_prefix": f"{run}."}),
            "worker": base.worker.model_copy(update={"app_id": run}),
            "index": base.index.model_copy(update={"cache_dir": folder / "snapshots"}),
        }
    )
    env = {
        **os.environ,
        "SPOTREC_RUN_DIR": str(folder),
        "SPOTREC_CASSANDRA_KEYSPACE": run,
        "SPOTREC_S3_BUCKET": run,
        "SPOTREC_KAFKA_TOPIC_PREFIX": f"{run}.",
        "SPOTREC_WORKER_APP_ID": run,
        "SPOTREC_INDEX_CACHE_DIR": str(folder / "snapshots"),
    }
    return settings, env


async def isolated_deployment(
    servers: Settings,
    *,
    run: str,
    tmp: Path,
    spotify: FakeSpotify,
    deezer: FakeDeezer,
    worker_env: dict[str, str] | None = None,
    model: str | None = None,
) -> tuple[Settings, dict[str, str]]:
    """Settings and a subprocess environment for a deployment of the run's own.

    Points at the fakes, uses ``run`` as keyspace, bucket, topic prefix and Faust app id (so
    consumer group), indexes every 2 s with few trees, and creates the keyspace and bucket.

    Args:
        servers: The session's settings, with the servers answering.
        run: The run's name (see :func:`new_run_id`).
        tmp: The run's folder: run directory, snapshot cache.
        spotify: A started fake Spotify.
        deezer: A started fake Deezer.
        worker_env: More ``SPOTREC_*`` variables for the processes.
        model: The embedding model of the deployment (``SPOTREC_MODEL_VERSION``; default: the
            session's).

    Returns:
        The settings for in-process clients and the environment for ``spotrec`` processes.
    """
    base, env = run_scoped(settings_for_fakes(servers, spotify=spotify, deezer=deezer), run, tmp)
    settings = base.model_copy(
        update={
            "index": base.index.model_copy(
                update={"interval_s": 2.0, "trees": 10, "rebuild_after_s": 0.0}
            ),
            "model": base.model.model_copy(update={"version": model or base.model.version}),
        }
    )
    await migrate(settings.cassandra)
    await ensure_bucket(settings.s3)
    env.update(settings_env(settings))
    env.update(
        {
            "SPOTREC_INDEX_INTERVAL_S": "2",
            "SPOTREC_INDEX_TREES": "10",
            # Tests follow every change into a snapshot; the cadence is tested on its own.
            "SPOTREC_INDEX_REBUILD_AFTER_S": "0",
            "SPOTREC_MODEL_BATCH_SIZE": "8",
            "SPOTREC_MODEL_VERSION": settings.model.version,
            **(worker_env or {}),
        }
    )
    return settings, env


async def remove_deployment(settings: Settings, run: str) -> None:
    """Drop the run's keyspace, delete its topics, and empty and delete its bucket.

    Its processes must be stopped first. Without this, every run would leave its topics behind
    and a long-lived development Kafka would slow down under thousands of partitions.
    """
    async with CassandraSession(settings.cassandra) as db:
        await drop_keyspace(db, settings.cassandra.keyspace)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await started(admin)
    try:
        # The prefixed topics and Faust's leader topic, named after the app id: all start so.
        ours = [t for t in await admin.list_topics() if t.startswith(run)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()
    async with s3_client(settings.s3) as s3:
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=settings.s3.bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                await s3.delete_objects(Bucket=settings.s3.bucket, Delete={"Objects": keys})
        await s3.delete_bucket(Bucket=settings.s3.bucket)


async def _spawn(env: dict[str, str], *args: str, stdout: Any) -> asyncio.subprocess.Process:
    """``spotrec ARGS`` as a process of the project's Python, its output and errors together."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=stdout,
        stderr=asyncio.subprocess.STDOUT,
    )


async def start_worker(
    env: dict[str, str], data_dir: Path, log: Path, *args: str
) -> asyncio.subprocess.Process:
    """A ``spotrec worker`` process with its own data directory, its output in ``log``."""
    with log.open("wb") as out:
        return await _spawn(env, "worker", f"--data-dir={data_dir}", *args, stdout=out)


async def produce_playlists(env: dict[str, str], refs: Iterable[str]) -> None:
    """Send playlist references with ``spotrec produce-playlists``; fails the test if it fails."""
    await run_cli(env, "produce-playlists", *refs)


async def spotrec(
    env: dict[str, str], *args: str, deadline_s: float | None = None
) -> tuple[int, str]:
    """Run ``spotrec ARGS`` to the end: its exit status and output (-9: killed at the deadline)."""
    proc = await _spawn(env, *args, stdout=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(deadline_s):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    status = proc.returncode if proc.returncode is not None else -9
    return status, out.decode(errors="replace")


async def run_cli(env: dict[str, str], *args: str) -> str:
    """Run ``spotrec ARGS`` to the end; fails the test unless it exits 0; returns its output."""
    status, text = await spotrec(env, *args)
    assert status == 0, text
    return text


async def interrupt_mid_replay(env: dict[str, str], topic: str, *args: str) -> tuple[int, int, str]:
    """Run ``spotrec ARGS`` and press Ctrl-C once its replay of ``topic`` is partly done.

    Returns:
        The offsets done when the interrupt was sent, the replay's total, and the whole output.
    """
    proc = await _spawn(env, *args, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    progress = re.compile(rf"{re.escape(topic)}: (\d+)/(\d+) ")
    lines: list[str] = []
    done_at = total = 0
    async with asyncio.timeout(120):
        async for raw in proc.stdout:
            lines.append(raw.decode())
            found = progress.search(lines[-1])
            if found and 0 < int(found.group(1)) < int(found.group(2)) and not done_at:
                done_at, total = int(found.group(1)), int(found.group(2))
                proc.send_signal(signal.SIGINT)
        await proc.wait()
    text = "".join(lines)
    assert done_at, f"the replay of {topic} was never seen partly done:\n{text}"
    assert proc.returncode == 130, text
    assert "run the same command again to resume" in text
    return done_at, total, text


async def until(
    check: Callable[[], Awaitable[T | None]],
    deadline_s: float,
    what: str,
    logs: Path | Iterable[Path] = (),
    interval_s: float = 1.0,
) -> T:
    """Poll ``check`` until it returns something truthy; on timeout fail with the logs' tails."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        result = await check()
        if result:
            return result
        await asyncio.sleep(interval_s)
    tails = "".join(
        f"\n--- {log.name} ---\n{log.read_text(errors='replace')[-5000:]}"
        for log in ([logs] if isinstance(logs, Path) else logs)
    )
    msg = f"timed out after {deadline_s:.0f} s waiting for {what}{tails}"
    raise AssertionError(msg)


def catalogue_track_ids(catalogue: Catalogue, *, deezer: bool = True) -> set[str]:
    """The tracks the catalogue's playlists yield with audio.

    Every Spotify clip by ISRC (audio from Deezer) but those without audio; Deezer's one clip
    without an ISRC, by its Deezer id (only when the Deezer playlist is ingested); every file of
    the local folder.
    """
    ids = {f"isrc:{c.isrc}" for c in catalogue.clips if c.name not in NO_AUDIO}
    if deezer:
        ids.add(f"deezer:{catalogue.clip(DEEZER_WITHOUT_ISRC).deezer_id}")
    ids |= {f"local:{clip.sha256}" for clip in catalogue.clips}
    return ids


async def announce(settings: Settings, update: IndexUpdatedV1) -> None:
    """Broadcast a snapshot on ``index-updated.v1`` the way the indexer does."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap)
    await started(producer)
    try:
        await producer.send_and_wait(settings.kafka.topic(INDEX_UPDATED), update.dumps())
    finally:
        await producer.stop()
