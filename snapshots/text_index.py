"""Word postings of a snapshot's names, artists and albums: built once, stored, mapped.

Reads nothing but what it is given (rows' name, artists and album) or a snapshot folder's
``search_*`` files; writes those files. The builder computes the postings from the metadata it
already holds, so a query node opening a million-track snapshot maps four files instead of
decoding every row to build its search index (``api.search``).

Layout (CSR): the distinct folded tokens sorted, one per line of ``search_words.txt``; per
token its ``[start, end)`` in ``search_postings.npy``, whose int32 entries are ``row << 2 |
field`` (sorted, unique within a token); and each row's name length, which ranks ties.
"""

from __future__ import annotations

import mmap
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np
import numpy.typing as npt

from snapshots.manifest import (
    NAME_LENGTHS_NAME,
    SEARCH_OFFSETS_NAME,
    SEARCH_POSTINGS_NAME,
    SEARCH_WORDS_NAME,
)

_TOKEN = re.compile(r"\w+")
#: Fields of a posting, in its two low bits.
NAME, ARTIST, ALBUM = 0, 1, 2
#: What the postings are built from, per row: name, artists, album.
Fields = tuple[str | None, Sequence[str], str | None]


def fold(text: str) -> str:
    """``text`` without accents, case-folded: ``"Beyoncé"`` and ``"BEYONCE"`` fold alike."""
    if text.isascii():  # most names: nothing to decompose
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.casefold()


def tokens(text: str) -> list[str]:
    """The folded word tokens of ``text``."""
    return _TOKEN.findall(fold(text))


@dataclass(frozen=True)
class Postings:
    """The token postings of a set of rows (see the module docstring for the layout).

    Attributes:
        vocabulary: Distinct tokens, sorted (a list, or :class:`Words` over a mapped file).
        offsets: ``(len(vocabulary) + 1,)`` int64 bounds of each token's postings.
        postings: int32 ``row << 2 | field`` entries.
        name_lengths: ``(rows,)`` int32 length of each row's name.
    """

    vocabulary: Sequence[str]
    offsets: npt.NDArray[np.int64]
    postings: npt.NDArray[np.int32]
    name_lengths: npt.NDArray[np.int32]


def build_postings(rows: Iterable[Fields]) -> Postings:
    """Index every row's name, artists and album (row ``i`` is the ``i``-th given)."""
    lengths: list[int] = []
    by_token: dict[str, list[int]] = {}
    # Artists and albums repeat across tracks: fold and split each distinct one once.
    known: dict[str, list[str]] = {}

    def words(text: str) -> list[str]:
        found = known.get(text)
        if found is None:
            found = known[text] = tokens(text)
        return found

    for doc, (name, artists, album) in enumerate(rows):
        lengths.append(len(name or ""))
        for token in tokens(name or ""):
            by_token.setdefault(token, []).append(doc << 2 | NAME)
        for artist in artists:
            for token in words(artist):
                by_token.setdefault(token, []).append(doc << 2 | ARTIST)
        for token in words(album or ""):
            by_token.setdefault(token, []).append(doc << 2 | ALBUM)
    vocabulary = sorted(by_token)
    # Sorted and unique: a word repeated in one field of one track counts once.
    lists = [np.unique(np.asarray(by_token.pop(t), dtype=np.int32)) for t in vocabulary]
    offsets = np.zeros(len(vocabulary) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in lists], out=offsets[1:])
    postings = np.concatenate(lists) if lists else np.empty(0, dtype=np.int32)
    return Postings(vocabulary, offsets, postings, np.asarray(lengths, dtype=np.int32))


def write_postings(folder: Path, postings: Postings) -> None:
    """Write the ``search_*`` files and ``name_lengths.npy`` into ``folder``."""
    text = "".join(word + "\n" for word in postings.vocabulary)
    (folder / SEARCH_WORDS_NAME).write_bytes(text.encode())
    np.save(folder / SEARCH_OFFSETS_NAME, postings.offsets)
    np.save(folder / SEARCH_POSTINGS_NAME, postings.postings)
    np.save(folder / NAME_LENGTHS_NAME, postings.name_lengths)


class Words(Sequence[str]):
    """Sorted tokens, one per line of a mapped file, decoded one at a time (for bisection)."""

    def __init__(self, data: bytes | mmap.mmap) -> None:
        self._data = data
        ends: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        if len(data):
            ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
        self._starts = np.concatenate(([0], ends.astype(np.int64) + 1))

    def __len__(self) -> int:
        return len(self._starts) - 1

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        start, end = int(self._starts[index]), int(self._starts[index + 1]) - 1
        return bytes(self._data[start:end]).decode()


def open_postings(folder: Path, rows: int) -> Postings | None:
    """Map a snapshot's stored postings; ``None`` when it has none (built before they were).

    Raises:
        ValueError: The files disagree with each other or with ``rows``.
    """
    if not (folder / SEARCH_WORDS_NAME).is_file():
        return None
    with (folder / SEARCH_WORDS_NAME).open("rb") as handle:
        size = handle.seek(0, 2)
        data: bytes | mmap.mmap = (
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        )
    vocabulary = Words(data)
    offsets = np.asarray(np.load(folder / SEARCH_OFFSETS_NAME, mmap_mode="r"))
    postings = np.asarray(np.load(folder / SEARCH_POSTINGS_NAME, mmap_mode="r"))
    lengths = np.asarray(np.load(folder / NAME_LENGTHS_NAME, mmap_mode="r"))
    if (
        offsets.shape != (len(vocabulary) + 1,)
        or postings.ndim != 1
        or int(offsets[-1]) != len(postings)
        or lengths.shape != (rows,)
    ):
        msg = f"search files of {folder.name} disagree with each other or with {rows} rows"
        raise ValueError(msg)
    return Postings(vocabulary, offsets, postings, lengths)
