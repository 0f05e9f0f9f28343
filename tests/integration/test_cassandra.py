"""The Cassandra schema and the asyncio bridge against the real Cassandra 5.0 node."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from config.settings import CassandraSettings, Settings
from stores.cassandra import CassandraSession
from stores.migrations import EMBEDDING_COLUMNS, LEGACY_DIM, MIGRATIONS, migrate
from tests.keyspaces import drop_keyspace


@pytest.fixture
async def keyspace(servers: Settings, unique: str) -> AsyncIterator[CassandraSettings]:
    settings = servers.cassandra.model_copy(update={"keyspace": unique})
    yield settings
    async with CassandraSession(settings) as db:
        await drop_keyspace(db, unique)


async def _schema(db: CassandraSession, ks: str) -> list[dict[str, Any]]:
    return await db.execute(
        "SELECT table_name, column_name, kind, type FROM system_schema.columns "
        "WHERE keyspace_name = %s",
        (ks,),
    )


async def test_migration_creates_schema_and_rerunning_changes_nothing(
    keyspace: CassandraSettings,
) -> None:
    assert await migrate(keyspace) == [m.name for m in MIGRATIONS]
    async with CassandraSession(keyspace) as db:
        before = await _schema(db, keyspace.keyspace)
        ledger = await db.execute(f"SELECT * FROM {keyspace.keyspace}.schema_migrations")
    columns = {(r["table_name"], r["column_name"]): r["type"] for r in before}
    assert columns[("embeddings", "embedding")] == f"vector<float, {LEGACY_DIM}>"
    for dim, column in EMBEDDING_COLUMNS.items():  # a column per vector length
        assert columns[("embeddings", column)] == f"vector<float, {dim}>"
    assert columns[("model_versions", "dim")] == "int"
    assert columns[("embeddings", "model_version")] == "text"
    assert ("embeddings", "audio_source") in columns
    assert ("tracks", "isrc") in columns

    assert await migrate(keyspace) == []
    async with CassandraSession(keyspace) as db:
        assert await _schema(db, keyspace.keyspace) == before
        assert await db.execute(f"SELECT * FROM {keyspace.keyspace}.schema_migrations") == ledger


async def test_edited_migration_is_refused(keyspace: CassandraSettings) -> None:
    await migrate(keyspace)
    async with CassandraSession(keyspace) as db:
        await db.execute(
            f"UPDATE {keyspace.keyspace}.schema_migrations SET checksum = 'other' WHERE name = %s",
            (MIGRATIONS[0].name,),
        )
    with pytest.raises(RuntimeError, match="add a new migration"):
        await migrate(keyspace)


async def test_vector_row_round_trip_through_asyncio_bridge(keyspace: CassandraSettings) -> None:
    await migrate(keyspace)
    ks = keyspace.keyspace
    vector = [math.sin(i) * 0.5 for i in range(LEGACY_DIM)]
    async with CassandraSession(keyspace) as db:
        insert = await db.prepare(
            f"INSERT INTO {ks}.embeddings (model_version, bucket, track_id, embedding, tags, "
            "audio_source, extracted_at) VALUES (?, ?, ?, ?, ?, ?, toTimestamp(now()))"
        )
        await db.execute(insert, ("choi2017", 3, "track-1", vector, {"jazz": 0.8}, "local:abc"))
        rows = await db.execute(
            f"SELECT * FROM {ks}.embeddings WHERE model_version = %s AND bucket = %s",
            ("choi2017", 3),
        )
    assert len(rows) == 1
    row = rows[0]
    assert row["track_id"] == "track-1"
    assert row["audio_source"] == "local:abc"
    assert len(row["embedding"]) == LEGACY_DIM
    # float32 on the wire: equal to the float32 rounding of what was written.
    assert row["embedding"] == pytest.approx(vector, rel=1e-6, abs=1e-7)
    assert row["tags"] == {"jazz": pytest.approx(0.8)}


async def test_wrong_vector_length_is_rejected(keyspace: CassandraSettings) -> None:
    await migrate(keyspace)
    async with CassandraSession(keyspace) as db:
        insert = await db.prepare(
            f"INSERT INTO {keyspace.keyspace}.embeddings (model_version, bucket, track_id, "
            "embedding) VALUES (?, ?, ?, ?)"
        )
        with pytest.raises(ValueError, match=str(LEGACY_DIM)):
            await db.execute(insert, ("choi2017", 0, "short", [0.0] * (LEGACY_DIM - 1)))


async def test_stream_reads_every_page(keyspace: CassandraSettings) -> None:
    await migrate(keyspace)
    ks = keyspace.keyspace
    async with CassandraSession(keyspace) as db:
        insert = await db.prepare(f"INSERT INTO {ks}.tracks (track_id, name) VALUES (?, ?)")
        for i in range(57):
            await db.execute(insert, (f"id-{i}", f"name {i}"))
        select = await db.prepare(f"SELECT track_id FROM {ks}.tracks")
        select.fetch_size = 10  # six pages
        ids = [row["track_id"] async for row in db.stream(select)]
    assert sorted(ids) == sorted(f"id-{i}" for i in range(57))
