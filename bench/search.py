"""The query node's search index: build time, memory and query time, beside a linear scan.

Reads nothing; makes a synthetic catalogue of N tracks (names, artists and albums drawn from a
vocabulary of made-up words, some accented), builds :class:`api.search.SearchIndex` on it, and
times queries of one and two words (prefixes and whole words) against the same queries answered
by scanning every track's folded text, the baseline measured in the same run. Prints a table;
writes nothing.

Run: ``.venv/bin/python -m bench.search [--tracks 1000000] [--queries 200]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from api.search import SearchIndex, fold, tokens
from snapshots.index import TrackInfo

SYLLABLES = ["ka", "lo", "mé", "ri", "sa", "tu", "vo", "ne", "ël", "da", "pi", "rö", "zu", "an"]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))


def catalogue(n: int, seed: int = 7) -> list[TrackInfo]:
    """``n`` tracks: names of 1-4 words, 1-2 artists of 2 words, albums of 1-3 words."""
    rng = random.Random(seed)
    words = [_word(rng) for _ in range(20_000)]
    artists = [" ".join(rng.sample(words, 2)).title() for _ in range(max(1, n // 20))]
    albums = [" ".join(rng.sample(words, rng.randint(1, 3))).title() for _ in range(max(1, n // 8))]
    return [
        TrackInfo(
            row=i,
            track_id=f"t:{i:08d}",
            name=" ".join(rng.sample(words, rng.randint(1, 4))).title(),
            artists=tuple(rng.sample(artists, rng.randint(1, 2))),
            album=rng.choice(albums),
            tags=(),
        )
        for i in range(n)
    ]


def queries(rows: list[TrackInfo], count: int, seed: int = 11) -> list[str]:
    """Half one word, half two; words taken from real rows, cut to a prefix half the time."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        row = rng.choice(rows)
        words = tokens(f"{row.name} {' '.join(row.artists)}")
        picked = rng.sample(words, min(len(words), rng.choice((1, 2))))
        out.append(" ".join(w[: max(2, len(w) // 2)] if rng.random() < 0.5 else w for w in picked))
    return out


def scan(texts: list[list[str]], query: str, limit: int) -> list[int]:
    """The baseline: every row whose words start with each query word, first ``limit``."""
    terms = tokens(query)
    found = []
    for doc, words in enumerate(texts):
        if all(any(w.startswith(t) for w in words) for t in terms):
            found.append(doc)
            if len(found) >= limit:
                break
    return found


def main() -> None:
    """Build, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    rows = catalogue(args.tracks)
    asked = queries(rows, args.queries)
    started = time.perf_counter()
    index = SearchIndex.build(rows)
    build_s = time.perf_counter() - started

    times = []
    for q in asked:
        started = time.perf_counter()
        index.search(q, 10)
        times.append(time.perf_counter() - started)

    # The baseline gets its folded words for free (prepared outside the timing).
    texts = [tokens(fold(f"{r.name} {' '.join(r.artists)} {r.album}")) for r in rows]
    sample = asked[: max(1, min(len(asked), 20))]
    base = []
    for q in sample:
        started = time.perf_counter()
        scan(texts, q, 10_000_000)  # a ranking needs every match, as the index finds them
        base.append(time.perf_counter() - started)

    index_ms = statistics.median(times) * 1000
    scan_ms = statistics.median(base) * 1000
    print(f"tracks                         {args.tracks:>12,}")
    print(f"build (s)                      {build_s:>12.2f}")
    print(f"index arrays (bytes per track) {index.nbytes / args.tracks:>12.1f}")
    print(f"query median (ms): index       {index_ms:>12.3f}")
    print(f"query p99 (ms): index          {sorted(times)[int(len(times) * 0.99)] * 1000:>12.3f}")
    print(f"query median (ms): scan        {scan_ms:>12.3f}   (baseline, same queries)")
    print(f"speed-up over the scan         {scan_ms / index_ms:>12.0f}x")


if __name__ == "__main__":
    main()
