"""The recommendation engine's cost beside a bare index query, on one real snapshot.

Reads nothing; builds a snapshot of N synthetic tracks in a temporary folder (clusters of
vectors, 500 artists, every tenth recording also present as a copy with the same audio digest),
then times, per query track: the baseline, ``LoadedSnapshot.neighbours(id, k)`` (one ANNOY
query, no filters, no copies collapsed), measured in the same run, beside the engine on the
same tracks: one seed; five weighted seeds and a negative with exclusions and a per-artist cap;
the same with diversity; and a tag that one track in fifty carries, which makes the search
widen. Prints medians and their ratio to the baseline; writes nothing else.

Run: ``.venv/bin/python -m bench.recommend [--tracks 20000] [--queries 100] [--k 10]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from api.recommendations import Filters, Query, recommend
from snapshots.builder import TrackVector, write_snapshot
from snapshots.index import LoadedSnapshot

DIM = 160


def catalogue(n: int, seed: int = 5) -> list[TrackVector]:
    """``n`` tracks in 40 clusters; every tenth recording has a second copy (same digest)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIM)).astype(np.float32) * 2
    out: list[TrackVector] = []
    i = 0
    while len(out) < n:
        vector = (centres[i % 40] + rng.standard_normal(DIM)).astype(np.float32)
        digest = f"{i:064x}"
        tags = {"rare" if i % 50 == 0 else "common": 0.5}
        out.append(
            TrackVector(
                f"isrc:B{i:010d}",
                vector,
                name=f"song {i}",
                artists=(f"artist {i % 500}",),
                album=f"album {i % 2000}",
                tags=tags,
                isrc=f"B{i:010d}",
                audio_sha256=digest,
            )
        )
        if i % 10 == 0 and len(out) < n:
            out.append(
                TrackVector(f"local:{digest}", vector.copy(), tags=tags, audio_sha256=digest)
            )
        i += 1
    return out


def _median_ms(run: Callable[[str], object], ids: list[str]) -> float:
    times = []
    for track_id in ids:
        start = time.perf_counter()
        run(track_id)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    """Build, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    k = args.k
    with tempfile.TemporaryDirectory() as tmp:
        tracks = catalogue(args.tracks)
        write_snapshot(Path(tmp), tracks, model_version="bench", trees=50, source_mark=None)
        snapshot = LoadedSnapshot.open(Path(tmp))
        snapshot.warm()
        rng = np.random.default_rng(9)
        ids = [tracks[int(i)].track_id for i in rng.integers(0, len(tracks), args.queries)]
        pool = [t.track_id for t in tracks]
        excluded = frozenset(pool[:: max(1, len(pool) // 200)])

        def seeds(track_id: str) -> tuple[tuple[str, float], ...]:
            at = pool.index(track_id)
            return tuple((pool[(at + 7 * j) % len(pool)], 1.0 + j) for j in range(5))

        def negative(track_id: str) -> tuple[str, ...]:
            return (pool[(pool.index(track_id) + 3) % len(pool)],)

        filters = Filters.of(
            exclude_tracks=excluded, exclude_artists=["artist 7"], max_per_artist=2
        )
        cases: dict[str, Callable[[str], object]] = {
            "baseline: neighbours(id, k)": lambda t: snapshot.neighbours(t, k),
            "engine, one seed": lambda t: recommend(snapshot, Query(((t, 1.0),), k=k)),
            "engine, 5 seeds + negative + exclusions + cap": lambda t: recommend(
                snapshot, Query(seeds(t), negative(t), k=k, filters=filters)
            ),
            "the same with diversity 0.3": lambda t: recommend(
                snapshot, Query(seeds(t), negative(t), k=k, filters=filters, diversity=0.3)
            ),
            "engine, one seed, tag on 1 in 50": lambda t: recommend(
                snapshot, Query(((t, 1.0),), k=k, filters=Filters.of(tags=["rare"]))
            ),
        }
        results = {name: _median_ms(run, ids) for name, run in cases.items()}
        snapshot.close()
    base = results["baseline: neighbours(id, k)"]
    print(f"{len(tracks)} tracks, k={k}, {len(ids)} queries each; median per query")
    for name, ms in results.items():
        print(f"  {name:48s} {ms:8.2f} ms  {ms / base:6.1f}x baseline")


if __name__ == "__main__":
    main()
