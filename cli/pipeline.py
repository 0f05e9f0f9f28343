"""``spotrec worker`` and ``spotrec api``: the pipeline's two long-running processes.

Reads the settings; runs the Faust worker or the aiohttp query node in the foreground.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aiohttp import web

from api.app import create_app
from config.settings import Settings


def register(subparsers: Any) -> None:
    """Add the worker and api sub-commands."""
    p = subparsers.add_parser("worker", help="run a Faust worker (start more to scale out)")
    p.add_argument("--web-port", type=int, help="serve Faust's web views on this port")
    p.add_argument("--data-dir", help="the worker's local state folder (one per worker)")
    p.set_defaults(handler=_worker)
    p = subparsers.add_parser("api", help="run a query node")
    p.add_argument("--port", type=int, help="listen on this port (default SPOTREC_API_PORT)")
    p.set_defaults(handler=_api)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
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


def _api(args: argparse.Namespace, settings: Settings) -> int:
    port = args.port or settings.api.port
    web.run_app(create_app(settings), host=settings.api.host, port=port, print=None)
    return 0
