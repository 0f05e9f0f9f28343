"""The Cassandra schema as an ordered list of migrations, applied idempotently.

Reads ``system_schema`` and ``<keyspace>.schema_migrations``; creates the keyspace, the tables
and the migration ledger. Every statement is ``IF NOT EXISTS`` and each applied migration is
recorded with a checksum, so re-running changes nothing and an edited migration is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from config.settings import CassandraSettings
from stores.cassandra import CassandraSession

#: Length of every vector stored before vectors of other lengths existed (Choi et al. 2017: five
#: blocks x 32 channels); a model version without a recorded ``dim`` has vectors of this length.
LEGACY_DIM = 160
#: Vector length -> the ``embeddings`` column holding vectors of that length. A CQL vector type
#: fixes its length, so each length has a column of its own, added by a migration; every vector
#: of one model version sits in the column of its length. ``embedding`` is the first schema's
#: column: the rows of a deployment upgraded in place stay where they are.
EMBEDDING_COLUMNS: dict[int, str] = {LEGACY_DIM: "embedding", 200: "embedding_200"}
#: Embeddings of one model version are spread over this many partitions, so that the indexer
#: reads a version with a few bounded partition scans rather than one huge partition.
EMBEDDING_BUCKETS = 16


@dataclass(frozen=True)
class Migration:
    """One named schema step; ``{ks}`` in a statement stands for the keyspace."""

    name: str
    statements: tuple[str, ...]

    def checksum(self) -> str:
        """A digest of the statements, recorded when the migration is applied."""
        return hashlib.sha256("\n".join(self.statements).encode()).hexdigest()[:16]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_tracks_and_embeddings",
        (
            # One row per track, whatever its source; the id is ours, the source's id is kept.
            """CREATE TABLE IF NOT EXISTS {ks}.tracks (
                track_id text PRIMARY KEY,
                name text,
                artists list<text>,
                album text,
                duration_ms int,
                isrc text,
                source text,
                source_ref text,
                audio_ref text,
                discovered_at timestamp,
                updated_at timestamp
            )""",
            # Vectors keyed by model version first: a model change writes beside the old
            # vectors, and a snapshot reads exactly one version.
            """CREATE TABLE IF NOT EXISTS {ks}.embeddings (
                model_version text,
                bucket smallint,
                track_id text,
                embedding vector<float, 160>,
                tags map<text, float>,
                audio_source text,
                audio_sha256 text,
                extracted_at timestamp,
                PRIMARY KEY ((model_version, bucket), track_id)
            )""",
        ),
    ),
    Migration(
        "0002_pipeline_state",
        (
            # Where each track stands: pending, stored, extracted or unavailable (with why), so
            # a track without audio is listed rather than silently dropped.
            "ALTER TABLE {ks}.tracks ADD IF NOT EXISTS audio_status text",
            "ALTER TABLE {ks}.tracks ADD IF NOT EXISTS audio_error text",
            "ALTER TABLE {ks}.tracks ADD IF NOT EXISTS audio_source text",
            "ALTER TABLE {ks}.tracks ADD IF NOT EXISTS status_at timestamp",
            # Lets the API list the tracks in one state (e.g. those without audio) by paging an
            # index instead of scanning the table.
            "CREATE INDEX IF NOT EXISTS tracks_by_audio_status ON {ks}.tracks (audio_status) "
            "USING 'sai'",
            # Bumped with every vector write of a model version: the indexer rebuilds only when
            # this moved past the newest snapshot's mark.
            """CREATE TABLE IF NOT EXISTS {ks}.model_versions (
                model_version text PRIMARY KEY,
                updated_at timestamp
            )""",
            # Leases taken with lightweight transactions and a TTL: one holder at a time, and a
            # crashed holder's lease expires.
            """CREATE TABLE IF NOT EXISTS {ks}.leases (
                name text PRIMARY KEY,
                owner text,
                acquired_at timestamp
            )""",
        ),
    ),
    Migration(
        "0003_vectors_of_any_length",
        (
            # musicnn's 200-d vectors; a model of yet another length adds its column the same
            # way, in a migration of its own (and an entry in EMBEDDING_COLUMNS).
            "ALTER TABLE {ks}.embeddings ADD IF NOT EXISTS embedding_200 vector<float, 200>",
            # The length of a model version's vectors, so readers know which column holds them;
            # null for the versions written before it existed, which are all LEGACY_DIM long.
            "ALTER TABLE {ks}.model_versions ADD IF NOT EXISTS dim int",
        ),
    ),
    Migration(
        "0004_retry_schedule",
        (
            # Work that failed for now (a source unreachable, a CDN's 5xx), waiting for its next
            # try: the original record's bytes, when it is due, and which try it will be. One
            # row per try, so the sweeper deleting the row it re-sent never deletes the next.
            """CREATE TABLE IF NOT EXISTS {ks}.retry_schedule (
                kind text,
                item_id text,
                attempt int,
                due_at timestamp,
                topic text,
                item_key blob,
                payload blob,
                reason text,
                PRIMARY KEY ((kind), item_id, attempt)
            )""",
        ),
    ),
)


def embedding_column(dim: int) -> str:
    """The ``embeddings`` column holding vectors of length ``dim``.

    Raises:
        ValueError: No column holds vectors of that length.
    """
    column = EMBEDDING_COLUMNS.get(dim)
    if column is None:
        known = ", ".join(str(d) for d in sorted(EMBEDDING_COLUMNS))
        msg = (
            f"no embeddings column holds {dim}-d vectors (lengths with a column: {known}); "
            "a model of a new length needs a migration adding its column"
        )
        raise ValueError(msg)
    return column


async def migrate(
    settings: CassandraSettings, migrations: Sequence[Migration] = MIGRATIONS
) -> list[str]:
    """Create the keyspace and apply every migration not yet recorded.

    Args:
        settings: Where Cassandra is, and the keyspace.
        migrations: The migrations in order (default: all; tests pass a prefix to build the
            schema of an older release).

    Returns:
        The names of the migrations applied by this call (empty when up to date).

    Raises:
        RuntimeError: A recorded migration's statements have changed since it was applied.
    """
    ks = settings.keyspace
    async with CassandraSession(settings) as db:
        await db.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = "
            f"{{'class': 'SimpleStrategy', 'replication_factor': {settings.replication_factor}}}"
        )
        await db.execute(
            f"CREATE TABLE IF NOT EXISTS {ks}.schema_migrations ("
            "name text PRIMARY KEY, checksum text, applied_at timestamp)"
        )
        done = {
            row["name"]: row["checksum"]
            for row in await db.execute(f"SELECT name, checksum FROM {ks}.schema_migrations")
        }
        applied = []
        for migration in migrations:
            if migration.name in done:
                if done[migration.name] != migration.checksum():
                    msg = (
                        f"migration {migration.name} was applied to keyspace {ks} with checksum "
                        f"{done[migration.name]}, but its statements now hash to "
                        f"{migration.checksum()}; add a new migration instead of editing it"
                    )
                    raise RuntimeError(msg)
                continue
            for statement in migration.statements:
                await db.execute(statement.format(ks=ks))
            await db.execute(
                f"INSERT INTO {ks}.schema_migrations (name, checksum, applied_at) "
                "VALUES (%s, %s, toTimestamp(now()))",
                (migration.name, migration.checksum()),
            )
            applied.append(migration.name)
    return applied
