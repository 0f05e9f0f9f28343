"""Exponential back-off with jitter, shared by the Deezer client and the audio fetcher.

Reads and writes nothing.
"""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base_s: float) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    The delay doubles per attempt; half of it is random so that workers throttled together do
    not retry together.

    Args:
        attempt: 1 for the first retry, 2 for the second, and so on.
        base_s: The delay before the first retry, before jitter.

    Returns:
        A delay between ``base_s * 2**(attempt - 1) / 2`` and ``base_s * 2**(attempt - 1)``.
    """
    ceiling = base_s * 2.0 ** max(attempt - 1, 0)
    return ceiling / 2 + random.uniform(0, ceiling / 2)
