"""``spotrec worker``, ``spotrec api`` and ``spotrec produce-playlists``.

Reads the settings; runs the Faust worker or the aiohttp query node in the foreground, or sends
playlist references to ``playlists.v1``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer

from api.app import create_app
from config.settings import Settings
from schemas.errors import InvalidRecord
from schemas.playlists import parse_playlist_ref
from streams.kafka_clients import started
from streams.names import PLAYLISTS
from streams.provision import ensure_topics


def register(subparsers: Any) -> None:
    """Add the worker and api sub-commands."""
    p = subparsers.add_parser("worker", help="run a Faust worker (start more to scale out)")
    p.add_argument("--web-port", type=int, help="serve Faust's web views on this port")
    p.add_argument("--data-dir", help="the worker's local state folder (one per worker)")
    p.set_defaults(handler=_worker)
    p = subparsers.add_parser(
        "produce-playlists", help="send playlist references to the pipeline's input topic"
    )
    p.add_argument(
        "refs",
        nargs="+",
        metavar="REF",
        help="a Spotify playlist ID, URI or URL; deezer:<id>; or local:<folder>",
    )
    p.set_defaults(handler=_produce_playlists)
    p = subparsers.add_parser("api", help="run a query node")
    p.add_argument("--port", type=int, help="listen on this port (default SPOTREC_API_PORT)")
    p.add_argument("--tag", help=argparse.SUPPRESS)  # lets a supervisor recognise its process
    p.set_defaults(handler=_api)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    created = asyncio.run(ensure_topics(settings))
    if created:
        print("created topics: " + ", ".join(created))
    if args.data_dir:
        # The app reads its settings when it is built, so the folder must be in them by then.
        os.environ["SPOTREC_WORKER_DATA_DIR"] = str(args.data_dir)
    # Imported here: building the Faust app loads its own settings and agents.
    from streams.app import app

    argv = []
    configured = settings.worker.data_dir
    data_dir = args.data_dir or (settings.path(configured) if configured else None)
    if data_dir:
        argv.append(f"--datadir={data_dir}")
    argv += ["worker", f"--loglevel={settings.log_level.lower().replace('warning', 'warn')}"]
    web_port = args.web_port or settings.worker.web_port
    argv += [f"--web-port={web_port}"] if web_port else ["--without-web"]
    sys.argv = ["spotrec-worker", *argv]
    app.main()
    return 0


def _produce_playlists(args: argparse.Namespace, settings: Settings) -> int:
    refs: list[str] = args.refs
    bad = []
    for ref in refs:
        try:
            parse_playlist_ref(ref.encode())
        except InvalidRecord as exc:
            bad.append(f"{ref!r}: {exc}")
    if bad:
        # Refused here rather than dead-lettered later: the user is at the terminal.
        print("spotrec produce-playlists: " + "; ".join(bad), file=sys.stderr)
        return 2
    topic = settings.kafka.topic(PLAYLISTS)
    asyncio.run(_send(settings, topic, [r.encode() for r in refs]))
    for ref in refs:
        print(f"sent {ref} to {topic}")
    return 0


async def _send(settings: Settings, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await started(producer)
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


def _api(args: argparse.Namespace, settings: Settings) -> int:
    port = args.port or settings.api.port
    web.run_app(create_app(settings), host=settings.api.host, port=port, print=None)
    return 0
