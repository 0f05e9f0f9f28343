"""``spotrec demo``: the whole pipeline on this machine, from nothing to a recommendation.

Reads the settings; starts Kafka, Cassandra and S3 (if not running), applies the schema,
creates the topics, starts a worker and a query node in the background, ingests a local
catalogue (the shared recordings beside the repository when present, else a generated one),
waits until every track is indexed, and prints an example recommendation, the requests to try
and, last, the explorer page's URL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from cli.demo_audio import write_demo_catalogue
from config.settings import PROJECT_ROOT, Settings
from features.audio import CONTENT_TYPES
from infra.servers import ServerError, up
from infra.servers.pipeline import DEFAULT_WORKER_WEB_PORT, pipeline_processes
from stores.migrations import migrate
from stores.objects import ensure_bucket
from streams.names import PLAYLISTS
from streams.provision import ensure_topics

#: The recordings that come with the project's test material, when it sits beside the repo.
SHARED_CLIPS = PROJECT_ROOT.parent / "shared" / "audio" / "clips"


def register(subparsers: Any) -> None:
    """Add the demo sub-command."""
    p = subparsers.add_parser(
        "demo", help="run everything locally on a demo catalogue and print a recommendation"
    )
    p.add_argument("--folder", type=Path, help="a folder of audio files to ingest instead")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for indexing")
    p.set_defaults(handler=_demo)


def _catalogue(args: argparse.Namespace, settings: Settings) -> Path:
    if args.folder is not None:
        return Path(args.folder).resolve()
    if SHARED_CLIPS.is_dir():
        return SHARED_CLIPS.resolve()
    folder = settings.path(settings.run_dir) / "demo-audio"
    print(f"no recordings beside the repository; generating a demo catalogue in {folder}")
    write_demo_catalogue(folder)
    return folder.resolve()


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    folder = _catalogue(args, settings)
    files = [p for p in folder.rglob("*") if p.suffix.lower() in CONTENT_TYPES]
    if not files:
        print(f"spotrec demo: no audio files in {folder}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(settings, folder, len(files), args.timeout))
    except ServerError as exc:
        print(f"spotrec demo: {exc}", file=sys.stderr)
        return 1


async def _run(settings: Settings, folder: Path, count: int, timeout_s: float) -> int:
    for started in await up(settings):
        how = (
            "already running" if started.already_running else f"started in {started.seconds:.1f} s"
        )
        print(f"{started.name:<10} {started.endpoint:<26} {how}")
    await migrate(settings.cassandra)
    await ensure_bucket(settings.s3)
    await ensure_topics(settings)
    roots = [str(p) for p in settings.audio.local_roots] + [str(folder)]
    env = {
        "SPOTREC_AUDIO_LOCAL_ROOTS": json.dumps(roots),
        "SPOTREC_INDEX_INTERVAL_S": "5",
        # The demo waits for a snapshot holding every track: build at every change.
        "SPOTREC_INDEX_REBUILD_AFTER_S": "0",
    }
    for process in pipeline_processes(settings, env):
        started = await process.start()
        how = (
            "already running" if started.already_running else f"started in {started.seconds:.1f} s"
        )
        print(f"{started.name:<10} {started.endpoint:<26} {how}  (log: {process.log_file})")

    from aiokafka import AIOKafkaProducer

    from streams.kafka_clients import started as running

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await running(producer)
    try:
        await producer.send_and_wait(settings.kafka.topic(PLAYLISTS), f"local:{folder}".encode())
    finally:
        await producer.stop()
    print(f"ingesting local:{folder} ({count} audio files)")

    api = f"http://127.0.0.1:{settings.api.port}"
    worker_web = f"http://127.0.0.1:{settings.worker.web_port or DEFAULT_WORKER_WEB_PORT}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        listing = await _wait_indexed(http, api, count, timeout_s)
        if listing is None:
            print(
                f"spotrec demo: not every track was indexed within {timeout_s:.0f} s; "
                f"see {settings.path(settings.run_dir) / 'worker' / 'server.log'}",
                file=sys.stderr,
            )
            return 1
        tracks = sorted(listing["tracks"], key=lambda t: t["name"] or "")
        query = tracks[0]
        async with http.get(
            f"{api}/recommend", params={"track_id": query["track_id"], "k": "5"}
        ) as r:
            body = await r.json()
    print(
        f"\nindexed {listing['total']} tracks with model {listing['model']} "
        f"in snapshot {listing['snapshot']}"
    )
    print(f"\ntracks that sound like {query['name']!r}:")
    for result in body["results"]:
        print(f"  {result['score']:.3f}  {result['name']}")
    print(f"\ntry: curl '{api}/recommend?track_id={query['track_id']}&k=5'")
    print(f"     curl '{api}/tracks?limit=20'")
    print(f"     curl '{api}/metrics'   (the worker's: {worker_web}/metrics)")
    print("stop everything with: make down")
    # Last, so it is the line people see: the page to search, listen and follow neighbours.
    print(f"\nexplore the catalogue in a browser: {api}/#/track/{quote(query['track_id'])}")
    return 0


async def _wait_indexed(
    http: aiohttp.ClientSession, api: str, count: int, timeout_s: float
) -> dict[str, Any] | None:
    """The indexed tracks once every file is indexed or reported unusable; None on timeout."""
    deadline = time.monotonic() + timeout_s
    shown = -1
    while time.monotonic() < deadline:
        indexed, listing = 0, None
        async with http.get(f"{api}/tracks", params={"limit": "1000"}) as r:
            if r.status == 200:
                listing = dict(await r.json())
                indexed = int(listing["total"])
        async with http.get(f"{api}/tracks/unavailable", params={"limit": "1000"}) as r:
            unusable = len((await r.json())["tracks"]) if r.status == 200 else 0
        if indexed != shown:
            print(f"  {indexed} of {count} indexed", flush=True)
            shown = indexed
        if listing is not None and indexed + unusable >= count:
            return listing
        await asyncio.sleep(1.0)
    return None
