"""The retrieval space: per-dimension z-scoring, with statistics frozen into each snapshot.

Reads and writes nothing. Raw embedding dimensions differ in scale by orders of magnitude (block
5's averages dwarf block 1's), so angular distance on raw vectors is decided by a few loud
dimensions. Each snapshot fits a mean and standard deviation per dimension on its own vectors,
stores them in its manifest, and indexes the standardised vectors, so one snapshot is one
consistent space and a query vector from outside can be mapped into it the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

#: Below this a dimension counts as constant: it is centred but not scaled (no division by ~0).
MIN_STD = 1e-6


@dataclass(frozen=True)
class ZScore:
    """Per-dimension standardisation: ``(x - mean) / std``."""

    mean: F32
    std: F32

    @classmethod
    def fit(cls, vectors: F32) -> ZScore:
        """Fit on the rows of ``vectors`` (``(n, dim)``); statistics in float64, stored float32."""
        if vectors.ndim != 2 or vectors.shape[0] == 0:
            msg = f"need a non-empty (n, dim) array to fit a z-score, got shape {vectors.shape}"
            raise ValueError(msg)
        data = vectors.astype(np.float64)
        std = data.std(axis=0)
        std[std < MIN_STD] = 1.0
        return cls(data.mean(axis=0).astype(np.float32), std.astype(np.float32))

    def apply(self, vectors: F32) -> F32:
        """Standardise ``vectors`` (one vector or rows of vectors)."""
        return ((vectors - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in a snapshot's manifest."""
        return {"kind": "zscore", "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], dim: int) -> ZScore:
        """Read the manifest form back, checking its kind and lengths."""
        if data.get("kind") != "zscore":
            msg = f"unknown transform kind {data.get('kind')!r}; expected 'zscore'"
            raise ValueError(msg)
        mean = np.asarray(data.get("mean"), dtype=np.float32)
        std = np.asarray(data.get("std"), dtype=np.float32)
        if mean.shape != (dim,) or std.shape != (dim,):
            msg = f"z-score of shapes {mean.shape} and {std.shape}; expected ({dim},) each"
            raise ValueError(msg)
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            msg = "z-score statistics must be finite, with positive standard deviations"
            raise ValueError(msg)
        return cls(mean, std)
