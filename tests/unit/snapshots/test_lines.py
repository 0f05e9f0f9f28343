"""Metadata reaches the builder as encoded lines: the same files as from rows, bad lines refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from snapshots.builder import Columns, track_line, write_columns
from snapshots.lines import (
    NO_FIELDS,
    Lines,
    LinesBuilder,
    Slots,
    compose,
    encode_fields,
    encode_optional,
    encode_row,
    encode_tags,
)
from snapshots.manifest import DATA_FILES, SEARCH_FILES

_ROWS = [
    track_line("b", "Ærø Song", ["Åsa", "Bo"], "Live", {"Jazz": 0.5, "rock": 0.25}, isrc="X1"),
    track_line("a", None, [], None, {}),
    track_line("c", 'Quote " and \\ slash', ["Cé"], None, {"jazz": 0.75}),
]


def test_lines_split_as_they_were_added() -> None:
    lines = Lines.from_rows(_ROWS)
    assert len(lines) == 3
    assert [lines.line(row) for row in range(3)] == [encode_row(r) for r in _ROWS]
    again = Lines.from_jsonl(lines.data)
    assert again.data == lines.data
    assert again.offsets.tolist() == lines.offsets.tolist()
    assert len(Lines.from_jsonl(b"")) == 0


def test_lines_without_their_newline_are_refused() -> None:
    with pytest.raises(ValueError, match="no newline"):
        Lines.from_jsonl(b'{"a": 1}\n{"b": 2}')
    with pytest.raises(ValueError, match="only newline"):
        LinesBuilder().add(b'{"a": 1}\n{"b": 2}\n')
    with pytest.raises(ValueError, match="offsets"):
        Lines(b"{}\n", np.array([0, 2], dtype=np.int64))


def _build(folder: Path, meta: list[dict[str, Any]] | Lines) -> dict[str, bytes]:
    ids = ["b", "a", "c"]
    vectors = np.random.default_rng(3).normal(size=(3, 8)).astype(np.float32)
    write_columns(
        folder,
        Columns(ids, vectors, meta),
        model_version="m",
        trees=2,
        source_mark=None,
    )
    names = [n for n in (*DATA_FILES, *SEARCH_FILES) if (folder / n).exists()]
    return {name: (folder / name).read_bytes() for name in names}


def test_encoded_lines_build_the_same_files_as_rows(tmp_path: Path) -> None:
    from_rows = _build(tmp_path / "rows", _ROWS)
    from_lines = _build(tmp_path / "lines", Lines.from_rows(_ROWS))
    assert from_rows == from_lines
    # Rows in track-id order; tags lower-cased, each listing its rows.
    assert [line[:18] for line in from_rows["tracks.jsonl"].splitlines()] == [
        b'{"track_id": "a", ',
        b'{"track_id": "b", ',
        b'{"track_id": "c", ',
    ]


def test_a_line_of_another_track_or_too_few_lines_are_refused(tmp_path: Path) -> None:
    swapped = Lines.from_rows([_ROWS[1], _ROWS[0], _ROWS[2]])
    with pytest.raises(ValueError, match="'a': its metadata line is not a tracks.jsonl row"):
        _build(tmp_path / "swapped", swapped)
    with pytest.raises(ValueError, match="2 metadata lines for 3 track ids"):
        _build(tmp_path / "short", Lines.from_rows(_ROWS[:2]))
    not_json = Lines.from_jsonl(encode_row(_ROWS[0]) + b"oops\n" + encode_row(_ROWS[2]))
    with pytest.raises(ValueError, match="'a': its metadata line"):
        _build(tmp_path / "bad", not_json)


@pytest.mark.parametrize(
    ("name", "artists", "album", "tags", "isrc", "digest"),
    [
        ("Ærø Song", ["Åsa", "Bo"], "Live", {"Jazz": 0.5, "rock": 0.25}, "X1", "ab" * 32),
        (None, [], None, {}, None, None),
        ('Quote " and \\ slash', ["Cé"], None, {"b": 0.123456, "a": 0.123456}, None, "ff"),
    ],
)
def test_a_line_composed_from_encoded_parts_is_the_row_encoded(
    name: str | None,
    artists: list[str],
    album: str | None,
    tags: dict[str, float],
    isrc: str | None,
    digest: str | None,
) -> None:
    row = track_line("t:1", name, artists, album, tags, isrc=isrc, audio_sha256=digest)
    parts = (encode_fields(name, artists, album), encode_tags(tags))
    optional = (encode_optional(isrc), encode_optional(digest))
    assert compose("t:1", *parts, *optional) == encode_row(row)
    if (name, artists, album) == (None, [], None):
        assert parts[0] == NO_FIELDS


def test_slots_hold_one_value_per_row_and_replace_it() -> None:
    slots = Slots()
    for i in range(3000):  # past the first growth of the spans
        assert slots.append(str(i).encode()) == i
    slots.set(7, b"seven")
    assert (len(slots), slots[7], slots[2999], slots[0]) == (3000, b"seven", b"2999", b"0")
    with pytest.raises(IndexError):
        slots.set(3000, b"x")
