"""A search index over a snapshot's track names, artists and albums.

Reads the postings a snapshot stores (``snapshots.text_index``, mapped: nothing is decoded), or
builds them from rows (a snapshot built before they were stored, the fresh tracks); writes
nothing. Text is folded (accents
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from snapshots.index import TrackInfo
from snapshots.text_index import (
    ALBUM,
    ARTIST,
    NAME,
    Postings,
    build_postings,
    fold,
    open_postings,
    tokens,
)

__all__ = ["ALBUM", "ARTIST", "NAME", "Match", "SearchIndex", "fold", "tokens"]

#: Longest query accepted, in characters, and most tokens used from it.
MAX_QUERY = 200
MAX_TOKENS = 8
#: What a match in each field (the two low bits of a posting) is worth.
_FIELD_WEIGHT = np.array([3.0, 2.0, 1.0, 0.0], dtype=np.float32)
#: A whole-token match is worth this many times a prefix match.
_WHOLE_BONUS = 2.0


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
        vocabulary: Sequence[str],
        offsets: npt.NDArray[np.int64],
        postings: npt.NDArray[np.int32],
    ) -> None:
        self.track_ids = track_ids
        self._name_lengths = name_lengths
        self._vocabulary = vocabulary
        self._offsets = offsets
        self._postings = postings

    @classmethod
    def of_postings(cls, track_ids: Sequence[str], postings: Postings) -> SearchIndex:
        """An index over ``postings`` (built or mapped), doc ``i`` being ``track_ids[i]``."""
        return cls(
            track_ids,
            postings.name_lengths,
            postings.vocabulary,
            postings.offsets,
            postings.postings,
        )

    @classmethod
    def build(cls, rows: Iterable[TrackInfo]) -> SearchIndex:
        """Index the name, artists and album of every row (blocking: run it in a thread)."""
        track_ids: list[str] = []

        def fields(info: TrackInfo) -> tuple[str | None, Sequence[str], str | None]:
            track_ids.append(info.track_id)
            return info.name, info.artists, info.album

        return cls.of_postings(track_ids, build_postings(fields(info) for info in rows))

    @classmethod
    def stored(cls, folder: Path, track_ids: Sequence[str]) -> SearchIndex | None:
        """The index a snapshot folder stores (mapped, nothing decoded); ``None`` if it has none.

        Raises:
            ValueError: The stored files disagree with each other or with ``track_ids``.
        """
        postings = open_postings(folder, len(track_ids))
        return None if postings is None else cls.of_postings(track_ids, postings)

    def __len__(self) -> int:
        return len(self.track_ids)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (the token strings and ids are not counted)."""
        return self._offsets.nbytes + self._postings.nbytes + self._name_lengths.nbytes

    def _range(self, token: str) -> tuple[int, int, int]:
        """The vocabulary range of the words starting with ``token``, and where whole ends."""
        lo = bisect.bisect_left(self._vocabulary, token)
        hi = bisect.bisect_left(self._vocabulary, token + "\U0010ffff", lo)
        whole_end = lo + 1 if lo < hi and self._vocabulary[lo] == token else lo
        return lo, hi, whole_end

    def _postings_of(self, lo: int, hi: int) -> int:
        return int(self._offsets[hi] - self._offsets[lo])

    def _scores(
        self, token: str, within: npt.NDArray[np.int64] | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Docs matching ``token`` (whole or as a prefix), sorted, and each one's best score.

        With ``within`` (sorted docs), only those docs are scored: the later, wider words of a
        query cost what the earlier, narrower ones left.
        """
        lo, hi, whole_end = self._range(token)
        if lo == hi:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        codes = self._postings[self._offsets[lo] : self._offsets[hi]]
        scores = _FIELD_WEIGHT[codes & 3]
        scores[: self._offsets[whole_end] - self._offsets[lo]] *= _WHOLE_BONUS
        docs = (codes >> 2).astype(np.int64)
        if within is not None:
            keep = np.isin(docs, within)
            docs, scores = docs[keep], scores[keep]
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
        # Narrowest word first: each later word only scores the docs still in the running.
        terms.sort(key=lambda t: self._postings_of(*self._range(t)[:2]))
        docs, total = self._scores(terms[0])
        for term in terms[1:]:
            if len(docs) == 0:
                return []
            found, scores = self._scores(term, docs)
            keep = np.isin(docs, found, assume_unique=True)
            docs, total = docs[keep], total[keep] + scores
        if len(docs) == 0:
            return []
        lengths = self._name_lengths[docs]
        if len(docs) > 4 * limit:
            # Keep what can make the top: scores are small integers, names shorter than 2**20.
            key = (64 - total).astype(np.int64) << 20 | np.minimum(lengths, (1 << 20) - 1)
            cut = np.partition(key, limit - 1)[limit - 1]
            chosen = key <= cut
            docs, total, lengths = docs[chosen], total[chosen], lengths[chosen]
        # Higher score first, then shorter name, then row order.
        order = np.lexsort((docs, lengths, -total))[:limit]
        return [Match(self.track_ids[int(docs[i])], float(total[i])) for i in order]
