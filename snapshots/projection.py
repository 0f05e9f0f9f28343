"""A 2-D map of a snapshot's tracks: PCA of their retrieval-space directions.

Reads the vectors a snapshot indexes; writes nothing (the builder stores each track's ``xy`` in
``tracks.jsonl``). The axes are fitted on a sample of at most :data:`SAMPLE` tracks, so a
million-track build spends milliseconds here, and every track is then projected on them. Rows
are unit-normalised first: ANNOY's angular metric ignores length, so the map does too.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: Most tracks the axes are fitted on.
SAMPLE = 20_000
#: Fixed seed: the same vectors always give the same map.
SEED = 2017
#: Decimals kept: a map a few thousand pixels wide needs no more.
DECIMALS = 4
#: Rows projected at a time.
_BLOCK_ROWS = 65_536


def _unit(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    data = rows.astype(np.float64)
    norms = np.linalg.norm(data, axis=1, keepdims=True)
    data /= np.where(norms > 0, norms, 1.0)
    return data


def project_2d(
    vectors: npt.NDArray[np.float32], *, sample: int = SAMPLE
) -> npt.NDArray[np.float64]:
    """The ``(n, 2)`` map coordinates of the rows of ``vectors``, scaled into [-1, 1].

    The first axis is the direction of greatest variance of the (sampled) unit vectors, the
    second the next one; each axis is signed so that its largest weight is positive, which
    keeps the map's orientation stable from one build to the next.
    """
    if vectors.ndim != 2 or vectors.shape[0] == 0:
        msg = f"need a non-empty (n, dim) array, got shape {vectors.shape}"
        raise ValueError(msg)
    picked = np.arange(len(vectors))
    if len(vectors) > sample:
        rng = np.random.default_rng(SEED)
        picked = np.sort(rng.choice(len(vectors), size=sample, replace=False))
    rows = _unit(vectors[picked])
    mean = rows.mean(axis=0)
    # The principal axes are the eigenvectors of the (dim x dim) scatter matrix, strongest
    # first: far cheaper than an SVD of the (sample x dim) rows, with the same axes.
    centred = rows - mean
    _, eigen = np.linalg.eigh(centred.T @ centred)
    axes = eigen[:, ::-1][:, :2].T.copy()
    if axes.shape[0] < 2:  # a single track: a second axis of zeros puts it on the x axis
        axes = np.vstack([axes, np.zeros_like(axes)])[:2]
    signs = np.sign(axes[np.arange(2), np.abs(axes).argmax(axis=1)])
    axes *= np.where(signs == 0, 1.0, signs)[:, None]
    # Projected a block at a time and in float32 (a float64 copy of a million rows would cost
    # 1.3 GB): ``(x / |x| - mean) . a`` is ``x . a / |x| - mean . a``.
    axes32 = axes.astype(np.float32)
    offset = mean @ axes.T
    coords = np.empty((len(vectors), 2), dtype=np.float64)
    for start in range(0, len(vectors), _BLOCK_ROWS):
        block = np.asarray(vectors[start : start + _BLOCK_ROWS], dtype=np.float32)
        norms = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64))
        coords[start : start + len(block)] = (block @ axes32.T) / np.where(norms > 0, norms, 1.0)[
            :, None
        ] - offset
    scale = np.abs(coords).max()
    if scale > 0:
        coords /= scale
    rounded: npt.NDArray[np.float64] = np.round(coords, DECIMALS)
    return rounded
