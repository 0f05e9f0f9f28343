"""An in-memory search index over a snapshot's track names, artists and albums.

Reads the rows of one snapshot (through ``page``); writes nothing. Text is folded (accents
removed, case folded) and split into word tokens. The index is compact enough for a million
tracks: one sorted array of distinct tokens and one int32 postings array (CSR layout), so all
the tokens starting with a prefix are a contiguous range of tokens and a contiguous slice of
postings, found with two binary searches.

Ranking: every query token must match (as a whole token or as the prefix of one); a whole
token scores more than a prefix, and a match in the name more than in an artist, more than in
the album. Ties go to the shorter name, then to the row order.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from snapshots.index import TrackInfo

#: Longest query accepted, in characters, and most tokens used from it.
MAX_QUERY = 200
MAX_TOKENS = 8
_TOKEN = re.compile(r"\w+")
#: Fields of a posting, in its two low bits, and what a match in each is worth.
NAME, ARTIST, ALBUM = 0, 1, 2
_FIELD_WEIGHT = np.array([3.0, 2.0, 1.0, 0.0], dtype=np.float32)
#: A whole-token match is worth this many times a prefix match.
_WHOLE_BONUS = 2.0


def fold(text: str) -> str:
    """``text`` without accents, case-folded: ``"Beyoncé"`` and ``"BEYONCE"`` fold alike."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.casefold()


def tokens(text: str) -> list[str]:
    """The folded word tokens of ``text``."""
    return _TOKEN.findall(fold(text))


@dataclass(frozen=True)
class Match:
    """A track found by a query and its score (higher is better)."""

    track_id: str
    score: float


class SearchIndex:
    """Token postings of a set of tracks; immutable once built."""

    def __init__(
        self,
        track_ids: Sequence[str],
        name_lengths: npt.NDArray[np.int32],
        vocabulary: list[str],
        offsets: npt.NDArray[np.int64],
        postings: npt.NDArray[np.int32],
    ) -> None:
        self.track_ids = track_ids
        self._name_lengths = name_lengths
        self._vocabulary = vocabulary
        self._offsets = offsets
        self._postings = postings

    @classmethod
    def build(cls, rows: Iterable[TrackInfo]) -> SearchIndex:
        """Index the name, artists and album of every row (blocking: run it in a thread)."""
        track_ids: list[str] = []
        lengths: list[int] = []
        by_token: dict[str, list[int]] = {}
        for doc, info in enumerate(rows):
            track_ids.append(info.track_id)
            lengths.append(len(info.name or ""))
            fields = [(NAME, info.name or "")] + [(ARTIST, a) for a in info.artists]
            fields.append((ALBUM, info.album or ""))
            seen: set[tuple[str, int]] = set()
            for field, text in fields:
                for token in tokens(text):
                    if (token, field) not in seen:
                        seen.add((token, field))
                        by_token.setdefault(token, []).append(doc << 2 | field)
        vocabulary = sorted(by_token)
        sizes = np.fromiter((len(by_token[t]) for t in vocabulary), np.int64, len(vocabulary))
        offsets = np.zeros(len(vocabulary) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        postings = np.empty(int(offsets[-1]), dtype=np.int32)
        for i, token in enumerate(vocabulary):
            postings[offsets[i] : offsets[i + 1]] = by_token.pop(token)
        return cls(track_ids, np.asarray(lengths, dtype=np.int32), vocabulary, offsets, postings)

    def __len__(self) -> int:
        return len(self.track_ids)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (the token strings and ids are not counted)."""
        return self._offsets.nbytes + self._postings.nbytes + self._name_lengths.nbytes

    def _scores(self, token: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Docs matching ``token`` (whole or as a prefix) and each one's best score."""
        lo = bisect.bisect_left(self._vocabulary, token)
        hi = bisect.bisect_left(self._vocabulary, token + "\U0010ffff", lo)
        if lo == hi:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        whole_end = lo + 1 if self._vocabulary[lo] == token else lo
        codes = self._postings[self._offsets[lo] : self._offsets[hi]]
        scores = _FIELD_WEIGHT[codes & 3]
        scores[: self._offsets[whole_end] - self._offsets[lo]] *= _WHOLE_BONUS
        docs = (codes >> 2).astype(np.int64)
        # Best score per doc: sort by doc then score, keep each doc's last entry.
        order = np.lexsort((scores, docs))
        docs, scores = docs[order], scores[order]
        last = np.ones(len(docs), dtype=bool)
        last[:-1] = docs[1:] != docs[:-1]
        return docs[last], scores[last]

    def search(self, query: str, limit: int) -> list[Match]:
        """The ``limit`` best tracks matching every token of ``query``, best first."""
        terms = list(dict.fromkeys(tokens(query[:MAX_QUERY])))[:MAX_TOKENS]
        if not terms or limit < 1:
            return []
        docs: npt.NDArray[np.int64] | None = None
        total: npt.NDArray[np.float32] | None = None
        for term in terms:
            found, scores = self._scores(term)
            if docs is None or total is None:
                docs, total = found, scores
            else:
                keep = np.isin(docs, found, assume_unique=True)
                docs, total = docs[keep], total[keep]
                total = total + scores[np.searchsorted(found, docs)]
            if len(docs) == 0:
                return []
        assert docs is not None and total is not None
        # Higher score first, then shorter name, then row order: one stable sort on all keys.
        order = np.lexsort((docs, self._name_lengths[docs], -total))[:limit]
        return [Match(self.track_ids[int(docs[i])], float(total[i])) for i in order]
