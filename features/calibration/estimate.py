"""Estimate the calibrated model's frozen statistics by running the network over a corpus.

Reads audio files (through the pinned decode path of ``features.audio``), a folder's
``labels.csv`` when present, and the weight file; writes nothing itself (``stats`` writes the
result). Each block's statistics are the per-channel mean and biased variance of its conv output
over (clips, freq, time), in float64, estimated in order: block ``k`` sees blocks ``1..k-1``
already normalised with their frozen statistics, as in a network normalised with the statistics
of one large batch of all the clips. Only music is used by default, since speech and nature
recordings are not what the model will see.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from features.audio import CONTENT_TYPES, decode
from features.calibration.stats import CalibrationClip
from features.choi2017 import POOL_SIZES, build_choi2017
from features.normalization import (
    ChannelStatistics,
    ConvBlock,
    FrozenStatistics,
    StatisticsFactory,
    per_example_statistics,
)
from features.runtime import keras, tf
from features.weights import Choi2017Weights, sha256_of

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def calibration_files(folder: Path, files: Sequence[str | Path] = ()) -> list[Path]:
    """The clips to calibrate on, sorted by their path relative to ``folder``.

    Args:
        folder: The corpus folder.
        files: An explicit list (relative to ``folder`` or absolute); used as given when set.

    Returns:
        ``files`` if given; else the rows of ``folder/labels.csv`` whose ``kind`` is ``music``
        when that file has a ``kind`` column; else every audio file under ``folder``.

    Raises:
        FileNotFoundError: A listed file does not exist, or nothing was found.
    """
    if files:
        chosen = [folder / f for f in files]
    else:
        labels = folder / "labels.csv"
        rows: list[dict[str, str]] = []
        if labels.is_file():
            with labels.open(newline="") as stream:
                reader = csv.DictReader(stream)
                if reader.fieldnames and {"file", "kind"} <= set(reader.fieldnames):
                    rows = [row for row in reader if row["kind"].strip() == "music"]
        if rows:
            chosen = [folder / row["file"] for row in rows]
        else:
            chosen = [p for p in folder.rglob("*") if p.suffix.lower() in CONTENT_TYPES]
    missing = [str(p) for p in chosen if not p.is_file()]
    if missing or not chosen:
        msg = f"calibration clips not found in {folder}: {missing or 'no audio files'}"
        raise FileNotFoundError(msg)
    return sorted(chosen, key=lambda p: relative_name(p, folder))


def relative_name(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` in POSIX form, or its bare name when outside it.

    Provenance records these, never an absolute path of the machine that calibrated.
    """
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return path.name


def _staged(known: Sequence[tuple[F64, F64]]) -> StatisticsFactory:
    """A statistics factory: the known blocks frozen, the others (not yet used) per example."""

    def factory(block: ConvBlock) -> ChannelStatistics:
        if block.index < len(known):
            mean, variance = known[block.index]
            return FrozenStatistics(block, mean, variance)
        return per_example_statistics(block)

    return factory


def estimate_statistics(
    weights: Choi2017Weights, clips: Sequence[F32], *, batch_size: int = 4
) -> list[tuple[F64, F64]]:
    """Per block, the channel mean and biased variance of the conv output over all clips.

    Block ``k``'s statistics are taken with blocks ``1..k-1`` normalised by the statistics
    already estimated, so the network is run five times, each time one block deeper. Every clip
    has the same number of positions, so the pooled mean is the mean of the clips' means and the
    pooled variance the mean of their variances plus the variance of their means; each clip's
    moments are reduced in float64.

    Args:
        weights: The network's weights.
        clips: Decoded 348,000-sample clips.
        batch_size: Clips per network call (the result does not depend on it); block 1's
            float64 conv output takes 33 MB per clip.

    Returns:
        Five ``(mean, variance)`` pairs of ``(32,)`` float64 arrays, for the original network
        (channels the builder negates are reported with their original sign).
    """
    if not clips:
        msg = "need at least one clip to calibrate on"
        raise ValueError(msg)
    known: list[tuple[F64, F64]] = []
    for index in range(len(POOL_SIZES)):
        model = build_choi2017(weights, statistics=_staged(known))
        conv = keras.Model(model.input, model.get_layer(f"block{index + 1}_conv").output)
        means, variances = [], []
        for start in range(0, len(clips), batch_size):
            batch = np.stack(clips[start : start + batch_size]).astype(np.float32, copy=False)
            output = tf.cast(conv(tf.constant(batch), training=False), tf.float64)
            mean = tf.reduce_mean(output, axis=[1, 2], keepdims=True)
            variance = tf.reduce_mean(tf.math.squared_difference(output, mean), axis=[1, 2])
            means.append(np.asarray(mean)[:, 0, 0, :])
            variances.append(np.asarray(variance))
        clip_means, clip_variances = np.concatenate(means), np.concatenate(variances)
        pooled_mean = clip_means.mean(axis=0)
        pooled_variance = (clip_variances + (clip_means - pooled_mean) ** 2).mean(axis=0)
        # The builder negated the channels with gamma < 0 (features.normalization); undo it.
        sign = np.where(weights.norm_gamma[index] < 0, -1.0, 1.0)
        known.append((pooled_mean * sign, pooled_variance))
    return known


def corpus(folder: Path, files: Sequence[Path]) -> tuple[list[F32], list[CalibrationClip]]:
    """Decode the clips and record each one's relative name and sha256.

    Raises:
        AudioError: A clip cannot be decoded; calibration never skips a clip silently.
    """
    decoded = [decode(path) for path in files]
    records = [CalibrationClip(relative_name(p, folder), sha256_of(p)) for p in files]
    return decoded, records
