"""A NumPy reference of the original Choi 2017 network, for tests only; writes nothing.

Reads the Theano weight file with h5py and evaluates, in float64 by default, what Theano 0.9 /
Keras 1.2.2 / kapre 0.0.3 computed for one clip at a time:

* the STFT as a strided *true* convolution of the signal with the stored windowed DFT kernels,
  with Theano's "half" padding (256 zeros each side), 1360 outputs;
* power, the stored mel matrix, ``10 log10(max(S, 1e-10))`` minus the clip's maximum, floor -80;
* five blocks of a *true* 2-D convolution with the stored kernels (zero padding 1), batch-norm
  mode 2 with the clip's own per-channel mean and biased variance (epsilon 1e-3), ELU and a
  valid max-pool; the feature is each block's pooled map averaged over (freq, time).

Frozen mode (the calibrated model): :func:`forward` with ``statistics`` normalises every block with
those fixed means and variances instead of the clip's own, and :func:`calibrate` estimates them as
batch-norm over one batch of all the given clips would: block by block, each block's mean and
biased variance over (clips, freq, time) taken with the earlier blocks already frozen.

It deliberately shares no code with ``features``: loops and ``einsum`` over the textbook
definitions, nothing flipped, nothing transposed for a framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]

POOLS = ((2, 4), (3, 4), (2, 5), (2, 4), (4, 4))


@dataclass(frozen=True)
class OracleWeights:
    dft_real: Array  # (512, 257)
    dft_imag: Array  # (512, 257)
    mel_basis: Array  # (257, 96)
    kernels: tuple[Array, ...]  # (32, C_in, 3, 3), Theano layout, for true convolution
    biases: tuple[Array, ...]
    gammas: tuple[Array, ...]
    betas: tuple[Array, ...]
    dense_kernel: Array  # (32, 50)
    dense_bias: Array  # (50,)


@dataclass(frozen=True)
class OracleOutput:
    mel_db: Array  # (96, 1360), mel bins ascending, then time
    blocks: tuple[Array, ...]  # pooled maps, (32, F, T) each
    statistics: tuple[tuple[Array, Array], ...]  # per block: conv output's channel mean, variance
    features: Array  # (160,)
    tags: Array  # (50,)


def read_weights(path: Path, dtype: type[np.floating] = np.float64) -> OracleWeights:
    """Read the weight file by dataset name, converting to ``dtype``."""
    with h5py.File(path, "r") as f:

        def get(key: str) -> Array:
            return np.asarray(f[key], dtype=dtype)

        group = "ConvBNEluDr"
        return OracleWeights(
            dft_real=get("melgram/param_0")[:, 0, 0, :],
            dft_imag=get("melgram/param_1")[:, 0, 0, :],
            mel_basis=get("melgram/param_2"),
            kernels=tuple(get(f"{group}/convolution2d_{k}_W") for k in range(1, 6)),
            biases=tuple(get(f"{group}/convolution2d_{k}_b") for k in range(1, 6)),
            gammas=tuple(get(f"{group}/batchnormalization_{k}_gamma") for k in range(1, 6)),
            betas=tuple(get(f"{group}/batchnormalization_{k}_beta") for k in range(1, 6)),
            dense_kernel=get("dense_1/dense_1_W"),
            dense_bias=get("dense_1/dense_1_b"),
        )


def strided_true_convolution(signal: Array, kernels: Array, stride: int) -> Array:
    """``out[t, k] = sum_n kernels[n, k] * x[stride t + L - 1 - n]`` with half padding.

    ``x`` is ``signal`` with ``L // 2`` zeros on each side (Theano ``border_mode="half"``);
    the sum runs the kernel backwards over the input, the definition of convolution.
    """
    length = kernels.shape[0]
    padded = np.pad(signal, (length // 2, length // 2))
    n_out = (padded.shape[0] - length) // stride + 1
    starts = stride * np.arange(n_out)
    # windows[t, m] = x[stride t + m]; convolution pairs m with kernel index L - 1 - m.
    windows = padded[starts[:, None] + np.arange(length)[None, :]]
    return windows @ kernels[::-1]


def log_mel(audio: Array, w: OracleWeights) -> Array:
    """(96, 1360) decibels relative to this clip's maximum, floored at -80."""
    real = strided_true_convolution(audio, w.dft_real, 256)
    imag = strided_true_convolution(audio, w.dft_imag, 256)
    mel = (real**2 + imag**2) @ w.mel_basis
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    db = np.maximum(db - db.max(), -80.0)
    return np.asarray(db.T)


def true_convolution_same(x: Array, kernel: Array, bias: Array) -> Array:
    """``y[o, i, j] = b[o] + sum_{c,u,v} W[o, c, u, v] x[c, i + 1 - u, j + 1 - v]``.

    ``x`` is zero outside the image (Theano "half" padding for a 3 x 3 kernel).
    """
    _, height, width = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros((kernel.shape[0], height, width), dtype=x.dtype)
    for u in range(3):
        for v in range(3):
            # padded[c, i + 2 - u, j + 2 - v] == x[c, i + 1 - u, j + 1 - v]
            shifted = padded[:, 2 - u : 2 - u + height, 2 - v : 2 - v + width]
            out += np.einsum("oc,cij->oij", kernel[:, :, u, v], shifted)
    return out + bias[:, None, None]


def batchnorm_mode2_single(x: Array, gamma: Array, beta: Array, eps: float = 1e-3) -> Array:
    """Batch statistics of a batch of one: this clip's channel mean and biased variance."""
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(1, 2), keepdims=True)
    return np.asarray(gamma[:, None, None] * (x - mean) / np.sqrt(var + eps) + beta[:, None, None])


def elu(x: Array) -> Array:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


def max_pool_valid(x: Array, pool: tuple[int, int]) -> Array:
    channels, height, width = x.shape
    rows, cols = height // pool[0], width // pool[1]
    cropped = x[:, : rows * pool[0], : cols * pool[1]]
    return np.asarray(cropped.reshape(channels, rows, pool[0], cols, pool[1]).max(axis=(2, 4)))


def batchnorm_frozen(
    x: Array, mean: Array, var: Array, gamma: Array, beta: Array, eps: float = 1e-3
) -> Array:
    """Batch-norm with fixed per-channel statistics, the same for every clip."""
    scale = gamma / np.sqrt(var + eps)
    return np.asarray(scale[:, None, None] * (x - mean[:, None, None]) + beta[:, None, None])


def _block(x: Array, w: OracleWeights, k: int, frozen: tuple[Array, Array] | None) -> Array:
    """Normalise a conv output ``x`` of block ``k``, then ELU and max-pool."""
    if frozen is None:
        x = batchnorm_mode2_single(x, w.gammas[k], w.betas[k])
    else:
        x = batchnorm_frozen(x, frozen[0], frozen[1], w.gammas[k], w.betas[k])
    return max_pool_valid(elu(x), POOLS[k])


def forward(
    audio: Array,
    w: OracleWeights,
    statistics: Sequence[tuple[Array, Array]] | None = None,
) -> OracleOutput:
    """Run one 348,000-sample clip through the original network.

    With ``statistics`` (per block: channel mean, biased variance) every block is normalised
    with them; without, with the clip's own (the original at batch size 1). Either way the
    output's ``statistics`` are the clip's own conv output statistics.
    """
    mel_db = log_mel(audio, w)
    x = mel_db[None]
    blocks, own = [], []
    for k in range(len(POOLS)):
        x = true_convolution_same(x, w.kernels[k], w.biases[k])
        own.append((x.mean(axis=(1, 2)), x.var(axis=(1, 2))))
        x = _block(x, w, k, None if statistics is None else statistics[k])
        blocks.append(x)
    features = np.concatenate([b.mean(axis=(1, 2)) for b in blocks])
    logits = blocks[-1].reshape(-1) @ w.dense_kernel + w.dense_bias
    tags = 1.0 / (1.0 + np.exp(-logits))
    return OracleOutput(
        mel_db=mel_db,
        blocks=tuple(blocks),
        statistics=tuple(own),
        features=features,
        tags=tags,
    )


def calibrate(audios: Sequence[Array], w: OracleWeights) -> tuple[tuple[Array, Array], ...]:
    """Frozen statistics from the clips, as batch-norm over one batch of all of them computes.

    Block ``k``: the mean and biased variance over (clips, freq, time) of its conv output, where
    every clip went through blocks ``1..k-1`` normalised with the statistics found before.
    """
    inputs = [log_mel(audio, w)[None] for audio in audios]
    statistics: list[tuple[Array, Array]] = []
    for k in range(len(POOLS)):
        outputs = [true_convolution_same(x, w.kernels[k], w.biases[k]) for x in inputs]
        # Two passes over the definition: the mean over every position of every clip, then the
        # mean squared deviation from it.
        count = sum(y[0].size for y in outputs)
        mean = sum(y.sum(axis=(1, 2)) for y in outputs) / count
        var = sum(((y - mean[:, None, None]) ** 2).sum(axis=(1, 2)) for y in outputs) / count
        statistics.append((mean, var))
        inputs = [_block(y, w, k, (mean, var)) for y in outputs]
    return tuple(statistics)
