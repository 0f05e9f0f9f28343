"""The search index: folding, prefixes, every word required, ranking, size at scale."""

from __future__ import annotations

from api.search import SearchIndex, fold, tokens
from snapshots.index import TrackInfo


def _info(
    row: int, name: str, artists: tuple[str, ...] = (), album: str | None = None
) -> TrackInfo:
    return TrackInfo(row, f"t{row}", name, artists, album, ())


def test_folding_removes_accents_and_case() -> None:
    assert fold("Beyoncé ÉTUDE Straße") == "beyonce etude strasse"
    assert tokens("Jay-Z & Beyoncé: Crazy in Love (2003)") == [
        "jay", "z", "beyonce", "crazy", "in", "love", "2003",
    ]  # fmt: skip


def test_whole_words_rank_before_prefixes_and_names_before_albums() -> None:
    index = SearchIndex.build(
        [
            _info(0, "Lovely Day", ("Bill Withers",)),
            _info(1, "Love", ("Someone",)),
            _info(2, "Other", ("Love Band",)),
            _info(3, "Song", (), "Love Album"),
            _info(4, "Unrelated", ("Nobody",)),
        ]
    )
    found = [m.track_id for m in index.search("love", 10)]
    # Whole word in the name (6), in an artist (4), a prefix in a name (3), the album (2).
    assert found == ["t1", "t2", "t0", "t3"]
    assert [m.track_id for m in index.search("LOV", 10)][:1] == ["t1"]  # shorter name first
    assert [m.track_id for m in index.search("lovely wi", 10)] == ["t0"]
    assert index.search("love nobody", 10) == []
    assert index.search("   ", 10) == [] and index.search("love", 0) == []
    assert len(index.search("love", 2)) == 2


def test_a_large_catalogue_stays_compact() -> None:
    rows = [
        _info(i, f"Track {i} of album", (f"Artist {i % 997}",), f"Album {i % 101}")
        for i in range(50_000)
    ]
    index = SearchIndex.build(rows)
    assert len(index) == 50_000
    # Eight postings (4 bytes each) and a name length (4) per track, plus an offset (8) per
    # distinct word: about 50 bytes a track, 50 MB for a million.
    assert index.nbytes < 50_000 * 50
    assert [m.track_id for m in index.search("track 4242", 3)][0] == "t4242"
    assert {m.track_id for m in index.search("artist 996", 100)} >= {"t996", "t1993"}
