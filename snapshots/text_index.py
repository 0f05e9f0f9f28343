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
from itertools import chain
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
#: A token, or a line break (between the names of a batch, see PostingsBuilder.add).
_TOKEN_OR_BREAK = re.compile(r"\w+|\n")
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


def sorted_unique(keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``keys`` sorted in place, without repeats (np.unique hashes first: several times slower)."""
    keys.sort()
    if len(keys) < 2:
        return keys
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))]


def build_postings(rows: Iterable[Fields]) -> Postings:
    """Index every row's name, artists and album (row ``i`` is the ``i``-th given)."""
    builder = PostingsBuilder()
    names: list[str | None] = []
    artists: list[Sequence[str]] = []
    albums: list[str | None] = []
    for name, row_artists, album in rows:
        names.append(name)
        artists.append(row_artists)
        albums.append(album)
    builder.add(names, artists, albums)
    return builder.finish()


class PostingsBuilder:
    """Collects the postings of rows added a batch at a time (row ``i`` is the ``i``-th added).

    Per token occurrence it keeps two ints in flat arrays (the token's number and the posting),
    not a Python list per token: the postings are sorted, deduplicated and cut per token in a
    few array operations at the end, and a batch's names are folded and split as one text.
    """

    def __init__(self) -> None:
        self._rows = 0
        self._lengths: list[npt.NDArray[np.int32]] = []
        self._numbers: dict[str, int] = {}
        self._token_of: list[npt.NDArray[np.int64]] = []
        self._posting: list[npt.NDArray[np.int64]] = []
        # Artists and albums repeat across tracks: fold and split each distinct one once.
        self._known: dict[str, list[int]] = {}

    def _number(self, token: str) -> int:
        return self._numbers.setdefault(token, len(self._numbers))

    def _known_tokens(self, text: str) -> list[int]:
        found = self._known.get(text)
        if found is None:
            found = self._known[text] = [self._number(token) for token in tokens(text)]
        return found

    def _keep(self, numbers: Sequence[int], docs: npt.NDArray[np.int64], field: int) -> None:
        self._token_of.append(np.asarray(numbers, dtype=np.int64))
        self._posting.append(docs << 2 | field)

    def add(
        self,
        names: Sequence[str | None],
        artists: Sequence[Sequence[str]],
        albums: Sequence[str | None],
    ) -> None:
        """Index the next rows' names, artists and albums (one of each list per row)."""
        first = self._rows
        self._rows += len(names)
        texts = [name or "" for name in names]
        self._lengths.append(np.fromiter(map(len, texts), dtype=np.int32, count=len(texts)))
        joined = "\n".join(texts)
        if joined.count("\n") == len(texts) - 1:
            # Folding works a character at a time, so the names fold as one text; a break
            # between two names is a token of its own, counted to tell each token's row.
            found = [self._number(token) for token in _TOKEN_OR_BREAK.findall(fold(joined))]
            numbers = np.asarray(found, dtype=np.int64)
            breaks = numbers == self._numbers.get("\n", -1)
            docs = first + np.cumsum(breaks) - breaks
            self._keep(numbers[~breaks].tolist(), docs[~breaks], NAME)
        else:  # a name holding a line break: each name on its own
            for doc, text in enumerate(texts, start=first):
                words = [self._number(token) for token in tokens(text)]
                self._keep(words, np.full(len(words), doc, dtype=np.int64), NAME)
        for field, values in (
            (ARTIST, [list(row) for row in artists]),
            (ALBUM, [[album or ""] for album in albums]),
        ):
            per_row = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
            lists = [self._known_tokens(text) for row in values for text in row]
            sizes = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
            docs = np.repeat(np.repeat(np.arange(first, self._rows), per_row), sizes)
            self._keep(list(chain.from_iterable(lists)), docs, field)

    def finish(self) -> Postings:
        """The postings of the rows added."""
        self._numbers.pop("\n", None)  # only ever a break between names, never a token
        vocabulary = sorted(self._numbers)
        rank = np.full(len(self._numbers) + 1, -1, dtype=np.int64)
        rank[[self._numbers[token] for token in vocabulary]] = np.arange(len(vocabulary))
        empty = np.zeros(0, dtype=np.int64)
        # One key per occurrence, the token's rank above the posting: sorted and unique, the
        # keys are each token's postings in order (a word repeated in one field counts once).
        keys = rank[np.concatenate([empty, *self._token_of])] << 32
        keys |= np.concatenate([empty, *self._posting])
        keys = sorted_unique(keys)
        offsets = np.zeros(len(vocabulary) + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys >> 32, minlength=len(vocabulary)), out=offsets[1:])
        postings = (keys & 0xFFFFFFFF).astype(np.int32)
        lengths = np.concatenate([np.zeros(0, dtype=np.int32), *self._lengths])
        return Postings(vocabulary, offsets, postings, lengths)


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
