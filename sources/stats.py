"""What one crawl of a playlist produced: tracks yielded and items skipped, by reason.

Reads nothing; the crawler writes into a :class:`CrawlStats` the caller passes in, so the caller
still has the counts when the crawl fails half-way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

#: Why a playlist item produced no track event.
SkipReason = Literal[
    "null_track",  # Spotify: the item's track is null (removed from the catalogue)
    "local_file",  # Spotify: a local file of the playlist owner's, not in the catalogue
    "episode",  # Spotify: a podcast episode
    "unavailable",  # Spotify: not playable in the configured market
    "unreadable",  # Deezer: ``readable: false``
    "no_audio",  # no audio locator at all (no preview URL, no ISRC, no Deezer id)
    "unsupported",  # an item type we do not handle
    "unreadable_file",  # local: a file that cannot be read
    "outside_roots",  # local: a symlink leading outside the configured roots
    "duplicate",  # the same track id already yielded by this crawl
]


@dataclass
class CrawlStats:
    """Counts of one crawl: pages read, tracks yielded, and skipped items by reason."""

    pages: int = 0
    yielded: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: SkipReason) -> None:
        """Count one skipped item."""
        self.skipped[reason] += 1

    @property
    def total_skipped(self) -> int:
        """How many items were skipped, whatever the reason."""
        return sum(self.skipped.values())

    def __str__(self) -> str:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.skipped.items()))
        return f"{self.yielded} tracks from {self.pages} pages; skipped: {reasons or 'none'}"
