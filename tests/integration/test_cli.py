"""The ``spotrec`` command as a user runs it, against the real servers."""

from __future__ import annotations

import asyncio
import os
import sys

from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from config.settings import PROJECT_ROOT, Settings
from stores.cassandra import CassandraSession
from stores.objects import ensure_bucket
from tests.keyspaces import drop_keyspace


async def _spotrec(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_status_lists_every_server_answering(servers: Settings) -> None:
    code, out = await _spotrec("status")
    assert code == 0, out
    for name, endpoint in [
        ("kafka", servers.kafka.bootstrap),
        ("cassandra", f"{servers.cassandra.host}:{servers.cassandra.port}"),
        ("seaweed", servers.s3.url),
    ]:
        line = next(row for row in out.splitlines() if row.startswith(name))
        assert endpoint in line
        assert line.rstrip().endswith(("ok", "(not started by spotrec)"))


async def test_migrate_twice_into_a_new_keyspace(servers: Settings, unique: str) -> None:
    env = {"SPOTREC_CASSANDRA_KEYSPACE": unique}
    try:
        code, out = await _spotrec("migrate", env=env)
        assert code == 0, out
        assert "applied 0001_tracks_and_embeddings" in out
        code, out = await _spotrec("migrate", env=env)
        assert code == 0, out
        assert f"keyspace {unique} up to date" in out
    finally:
        async with CassandraSession(servers.cassandra) as db:
            await drop_keyspace(db, unique)


async def test_malformed_setting_stops_the_command_naming_it() -> None:
    code, out = await _spotrec("status", env={"SPOTREC_CASSANDRA_PORT": "ninety"})
    assert code == 2
    assert "SPOTREC_CASSANDRA_PORT" in out


async def test_query_node_is_healthy_but_not_ready_without_a_snapshot(
    servers: Settings, unique: str
) -> None:
    # An empty bucket of its own: no snapshot can exist yet.
    settings = servers.model_copy(
        update={
            "s3": servers.s3.model_copy(update={"bucket": unique}),
            "kafka": servers.kafka.model_copy(update={"topic_prefix": f"{unique}."}),
        }
    )
    await ensure_bucket(settings.s3)
    async with TestClient(TestServer(create_app(settings))) as client:
        health = await client.get("/healthz")
        assert health.status == 200
        assert await health.json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status == 503
        assert "no index snapshot" in (await ready.json())["error"]
