"""The retrieval space: how a snapshot maps stored vectors before indexing them.

Reads and writes nothing. Each model version declares its space (``features.versions``):

- ``zscore`` (the Choi models): raw dimensions differ in scale by orders of magnitude (block 5's
  averages dwarf block 1's), so angular distance on raw vectors is decided by a few loud
  dimensions. Each snapshot fits a mean and standard deviation per dimension on its own vectors,
  stores them in its manifest, and indexes the standardised vectors.
- ``cosine`` (musicnn): the vectors are compared as they are (:class:`Identity`); z-scoring them
  was measured to retrieve worse.

Either way the manifest records the transform, so one snapshot is one consistent space and a
query vector from outside is mapped into it the same way (:func:`to_retrieval_space`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from features.errors import UnknownModel
from features.versions import RetrievalSpace, model_spec

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Identity:
    """The vectors as stored: the retrieval space of a ``cosine`` model."""

    dim: int

    @classmethod
    def fit(cls, vectors: F32) -> Identity:
        """Nothing to fit; the dimension is checked on :meth:`apply`."""
        return cls(int(vectors.shape[-1]))

    def apply(self, vectors: F32) -> F32:
        """``vectors`` as float32 (one vector or rows of vectors)."""
        return np.asarray(vectors, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in a snapshot's manifest."""
        return {"kind": "identity"}


#: A snapshot's transform: what maps a stored (raw) vector into its retrieval space.
Transform = ZScore | Identity

#: The space of a model version that no model declares (e.g. a retired model's vectors):
#: z-scoring, as every snapshot had before models declared their space.
DEFAULT_SPACE: RetrievalSpace = "zscore"


def retrieval_space_of(model_version: str) -> RetrievalSpace:
    """The retrieval space the model of ``model_version`` declares, else :data:`DEFAULT_SPACE`."""
    try:
        return model_spec(model_version).retrieval_space
    except UnknownModel:
        logger.info(
            "model version %s declares no retrieval space; using %s", model_version, DEFAULT_SPACE
        )
        return DEFAULT_SPACE


def fit_transform(space: RetrievalSpace, vectors: F32) -> Transform:
    """The transform of ``space`` fitted on the rows of ``vectors`` (``(n, dim)``)."""
    if space == "zscore":
        return ZScore.fit(vectors)
    return Identity.fit(vectors)


def transform_from_dict(data: Mapping[str, Any] | None, dim: int) -> Transform:
    """Read a manifest's ``transform`` back (``None``: a snapshot indexed as stored).

    Raises:
        ValueError: An unknown kind, or statistics of the wrong length or not finite.
    """
    if data is None or data.get("kind") == "identity":
        return Identity(dim)
    return ZScore.from_dict(data, dim)


def to_retrieval_space(transform: Transform, raw: npt.ArrayLike, dim: int) -> F32:
    """Map one raw extractor vector into a snapshot's retrieval space, unit-normalised.

    Raises:
        ValueError: The vector is not ``dim`` finite floats, or it maps to the zero vector
            (no direction to compare).
    """
    vector = np.asarray(raw, dtype=np.float32)
    if vector.shape != (dim,) or not np.isfinite(vector).all():
        msg = f"a query vector must be {dim} finite floats, got shape {vector.shape}"
        raise ValueError(msg)
    mapped = transform.apply(vector).astype(np.float64)
    norm = float(np.linalg.norm(mapped))
    if norm == 0.0 or not np.isfinite(norm):
        msg = "the query vector maps to the zero vector in the retrieval space: no direction"
        raise ValueError(msg)
    return (mapped / norm).astype(np.float32)
