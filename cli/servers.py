"""``spotrec up|down|status|migrate|jars``: the local servers, the bucket and the schema.

Reads the settings; starts and stops the servers under the run directory; creates the bucket
and applies the Cassandra schema.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from config.settings import Settings
from infra.servers import ServerError, down, status, up
from infra.servers.maven import lib_dir, resolve_jars
from stores.migrations import migrate
from stores.objects import ensure_bucket


def register(subparsers: Any) -> None:
    """Add the server and schema sub-commands."""
    p = subparsers.add_parser("up", help="start Kafka, Cassandra and S3 on 127.0.0.1")
    p.add_argument("--no-migrate", action="store_true", help="do not apply the Cassandra schema")
    p.set_defaults(handler=_up)
    p = subparsers.add_parser("down", help="stop the local servers")
    p.set_defaults(handler=_down)
    p = subparsers.add_parser("status", help="show each server, its memory, and if it answers")
    p.set_defaults(handler=_status)
    p = subparsers.add_parser("migrate", help="create the bucket and create or update the schema")
    p.set_defaults(handler=_migrate)
    p = subparsers.add_parser("jars", help="resolve the Kafka and Cassandra jars through Maven")
    p.set_defaults(handler=_jars)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    try:
        started = asyncio.run(up(settings))
    except ServerError as exc:
        print(f"spotrec up: {exc}", file=sys.stderr)
        return 1
    for s in started:
        how = "already running" if s.already_running else f"started in {s.seconds:.1f} s"
        print(f"{s.name:<10} {s.endpoint:<24} pid {s.pid:<8} {how}")
    if not args.no_migrate:
        return _migrate(args, settings)
    return 0


def _jars(args: argparse.Namespace, settings: Settings) -> int:
    for server in ("kafka", "cassandra"):
        try:
            fetched = resolve_jars(server)
        except ServerError as exc:
            print(f"spotrec jars: {exc}", file=sys.stderr)
            return 1
        where = lib_dir(server).relative_to(lib_dir(server).parents[2])
        print(f"{server:<10} jars {'resolved into' if fetched else 'up to date in'} {where}")
    return 0


def _down(args: argparse.Namespace, settings: Settings) -> int:
    stopped = asyncio.run(down(settings))
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    report = asyncio.run(status(settings))
    for s in report:
        rss = f"{s.resident_bytes / 2**20:.0f} MiB" if s.resident_bytes else "-"
        pid = str(s.pid) if s.pid else "-"
        print(f"{s.name:<10} {s.endpoint:<24} pid {pid:<8} rss {rss:<9} {s.detail}")
    return 0 if all(s.answering for s in report) else 1


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    if asyncio.run(ensure_bucket(settings.s3)):
        print(f"bucket: created {settings.s3.bucket}")
    applied = asyncio.run(migrate(settings.cassandra))
    if applied:
        print("schema: applied " + ", ".join(applied))
    else:
        print(f"schema: keyspace {settings.cassandra.keyspace} up to date")
    return 0
