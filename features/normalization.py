"""Batch-norm "mode 2" of the Choi 2017 blocks: channel statistics, then normalise, pool, ELU.

Reads and writes nothing. A block's tail is ``ELU(gamma (y - mean) / sqrt(var + eps) + beta)``
followed by a valid max-pool, where ``y`` is the conv output. Where ``mean`` and ``var`` come
from is a strategy (:class:`ChannelStatistics`): :class:`PerExampleStatistics` reproduces the
original at batch size 1 (each clip's own statistics over freq and time);
:class:`FrozenStatistics` supplies constants estimated once over a calibration corpus instead
(``features.calibration``) and reuses the rest unchanged.

:class:`NormalizeEluPool` pools *before* normalising. For each channel the normalisation is
``s y + t`` with ``s = gamma / sqrt(var + eps) >= 0`` and ELU is increasing, so the window
maximum of ``ELU(s y + t)`` is ``ELU(s max(y) + t)``: the same result, computed on a map 8 to 16
times smaller, which is where the first block spent most of its time. It needs ``gamma >= 0``; the
model builder gets that by negating the kernel, bias and gamma of any channel with ``gamma < 0``,
which leaves ``gamma (y - mean) / sqrt(var + eps)`` exactly as it was (:func:`fold_negative_gamma`).
Nothing in that argument depends on where ``mean`` and ``var`` come from, only on ``s >= 0``, so
pooling first is exact for frozen statistics too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from features.runtime import keras, tf

F32 = npt.NDArray[np.float32]

#: Keras-1 BatchNormalization's default epsilon, which Theano's batch_normalization_train kept.
NORM_EPSILON = 1e-3


@dataclass(frozen=True)
class ConvBlock:
    """What a statistics strategy may need to know about its block.

    Attributes:
        index: 0-based block number.
        kernel: The Keras (cross-correlation) kernel, ``(3, 3, C_in, C_out)``, as the model
            uses it, after :func:`fold_negative_gamma`.
        bias: The conv bias, ``(C_out,)``, likewise.
        negated: Channels whose kernel and bias were negated; statistics estimated on the
            original network have their means negated there.
    """

    index: int
    kernel: F32
    bias: F32
    negated: npt.NDArray[np.bool_]


def fold_negative_gamma(
    kernel: F32, bias: F32, gamma: F32
) -> tuple[F32, F32, F32, npt.NDArray[np.bool_]]:
    """Negate kernel, bias and gamma of the channels with ``gamma < 0``.

    The conv output and its mean change sign there, the variance does not, so
    ``gamma (y - mean) / sqrt(var + eps)`` is unchanged and every gamma becomes non-negative.

    Returns:
        The new kernel, bias and gamma, and the mask of negated channels.
    """
    negated = gamma < 0
    sign = np.where(negated, -1.0, 1.0).astype(np.float32)
    return (kernel * sign).astype(np.float32), bias * sign, gamma * sign, negated


class ChannelStatistics(Protocol):
    """Per-channel mean and variance of a block's conv output.

    Shapes ``(batch, 1, 1, C)``, or ``(1, 1, 1, C)`` when they are the same for every example.
    """

    def __call__(self, block_input: Any, conv_output: Any) -> tuple[Any, Any]:
        """Statistics for ``conv_output``, which the block computed from ``block_input``."""


#: Builds a block's statistics strategy; :func:`per_example_statistics` is the faithful one.
StatisticsFactory = Callable[[ConvBlock], ChannelStatistics]


def _moments(values: Any) -> tuple[Any, Any]:
    """Channel mean and biased variance of ``(batch, positions, C)``, accumulated in float64.

    TensorFlow's float32 reductions add position after position: over block 1's 130,560
    positions the mean of a quiet clip drifted by 0.08. Float64 sums keep the statistics of
    every block exact to float32 precision.
    """
    wide = tf.cast(values, tf.float64)
    mean = tf.reduce_mean(wide, axis=1, keepdims=True)
    variance = tf.reduce_mean(tf.math.squared_difference(wide, mean), axis=1, keepdims=True)
    return tf.cast(mean, tf.float32), tf.cast(variance, tf.float32)


class PerExampleStatistics:
    """Each example's own per-channel mean and biased variance over (freq, time).

    This is what Keras-1 ``BatchNormalization(mode=2)`` computed at inference for a batch of one
    clip, and it makes every vector independent of its batch-mates. For a single-channel input
    (block 1) the statistics come from the 3 x 3 patch covariance of the input instead of the
    32-channel output: ``mean = K m + b`` and ``var_c = k_c' C k_c`` are exact for a linear
    filter and read 9 shifted copies of the image instead of 32 output channels.
    """

    def __init__(self, block: ConvBlock) -> None:
        self.block = block
        rows, cols, channels_in, _ = block.kernel.shape
        self._from_input = channels_in == 1
        self._patch_kernel = tf.constant(block.kernel.reshape(rows * cols, -1), tf.float64)
        self._bias = tf.constant(block.bias, tf.float64)

    def __call__(self, block_input: Any, conv_output: Any) -> tuple[Any, Any]:
        """Statistics of ``conv_output`` (batch, F, T, C), reshaped to ``(batch, 1, 1, C)``."""
        if self._from_input:
            mean, variance = self._from_patches(block_input[..., 0])
        else:
            shape = tf.shape(conv_output)
            flat = tf.reshape(conv_output, tf.stack([shape[0], shape[1] * shape[2], shape[3]]))
            mean, variance = _moments(flat)
        return mean[:, :, tf.newaxis, :], variance[:, :, tf.newaxis, :]

    def _from_patches(self, image: Any) -> tuple[Any, Any]:
        shape = tf.shape(image)
        height, width = shape[1], shape[2]
        padded = tf.pad(image, [[0, 0], [1, 1], [1, 1]])
        # taps[b, p, n]: the p-th of the 9 kernel taps (row-major) at position n. Stacking on
        # axis 1 copies whole images; stacking last would interleave them, 5 times slower.
        shifted = [padded[:, u : u + height, v : v + width] for u in range(3) for v in range(3)]
        taps = tf.reshape(tf.stack(shifted, axis=1), tf.stack([shape[0], 9, height * width]))
        # float64 from here: adjacent taps are strongly correlated and the kernels are edge
        # detectors, so k' C k cancels; with float32 products its relative error reached 5e-4
        # on quiet clips. Products of float32 values are exact in float64, so the raw second
        # moment needs no centring pass.
        taps = tf.cast(taps, tf.float64)
        count = tf.cast(height * width, tf.float64)
        tap_mean = tf.reduce_mean(taps, axis=2, keepdims=True)
        second = tf.linalg.matmul(taps, taps, transpose_b=True) / count
        covariance = second - tf.linalg.matmul(tap_mean, tap_mean, transpose_b=True)
        mean = tf.linalg.matmul(tap_mean, self._patch_kernel, transpose_a=True) + self._bias
        weighted = tf.linalg.matmul(covariance, self._patch_kernel)
        variance = tf.reduce_sum(weighted * self._patch_kernel, axis=1, keepdims=True)
        return tf.cast(mean, tf.float32), tf.cast(variance, tf.float32)


def per_example_statistics(block: ConvBlock) -> ChannelStatistics:
    """The faithful strategy: batch-norm mode 2 as the original ran it, one clip at a time."""
    return PerExampleStatistics(block)


class FrozenStatistics:
    """Constant per-channel statistics, the same for every clip: a batch-independent network.

    ``mean`` and ``variance`` describe the conv output of the original (unfolded) network, as
    ``features.calibration`` estimates them; the means of channels the builder negated
    (:attr:`ConvBlock.negated`) are negated here to match the folded kernel.
    """

    def __init__(
        self, block: ConvBlock, mean: npt.NDArray[np.floating], variance: npt.NDArray[np.floating]
    ) -> None:
        channels = block.kernel.shape[-1]
        if mean.shape != (channels,) or variance.shape != (channels,):
            msg = (
                f"block {block.index + 1}: frozen statistics of shapes {mean.shape} and "
                f"{variance.shape}, expected ({channels},) each"
            )
            raise ValueError(msg)
        if not (np.isfinite(mean).all() and np.isfinite(variance).all() and (variance >= 0).all()):
            msg = f"block {block.index + 1}: frozen statistics must be finite, variances >= 0"
            raise ValueError(msg)
        signed = np.where(block.negated, -mean, mean)
        self.mean = tf.constant(signed.reshape(1, 1, 1, channels), tf.float32)
        self.variance = tf.constant(variance.reshape(1, 1, 1, channels), tf.float32)

    def __call__(self, block_input: Any, conv_output: Any) -> tuple[Any, Any]:
        """The frozen statistics, whatever the input."""
        return self.mean, self.variance


def frozen_statistics(
    statistics: Sequence[tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]],
) -> StatisticsFactory:
    """A factory giving block ``k`` the ``k``-th ``(mean, variance)`` pair, frozen.

    Args:
        statistics: Per block, the conv output's channel mean and biased variance, estimated on
            the original network (unfolded kernels).

    Returns:
        A :data:`StatisticsFactory` for ``build_choi2017``; a block beyond ``statistics``
        raises ``IndexError`` when the model is built.
    """

    def factory(block: ConvBlock) -> ChannelStatistics:
        mean, variance = statistics[block.index]
        return FrozenStatistics(block, np.asarray(mean), np.asarray(variance))

    return factory


class NormalizeEluPool(keras.layers.Layer):  # type: ignore[misc]  # keras ships no types
    """``MaxPool(ELU(gamma (y - mean) / sqrt(var + eps) + beta))``, pooled first (see module).

    Called on ``[block_input, conv_output]``; returns the pooled map.
    """

    def __init__(
        self,
        statistics: ChannelStatistics,
        gamma: F32,
        beta: F32,
        pool: tuple[int, int],
        epsilon: float = NORM_EPSILON,
        **kwargs: Any,
    ) -> None:
        super().__init__(trainable=False, **kwargs)
        self.statistics = statistics
        self.pool = pool
        self.epsilon = epsilon
        if np.any(gamma < 0):
            msg = f"{self.name}: gamma must be >= 0 to pool first; fold the negative channels"
            raise ValueError(msg)
        self._gamma = tf.constant(gamma)
        self._beta = tf.constant(beta)

    def call(self, inputs: list[Any]) -> Any:
        """Normalise with the strategy's statistics, pool and apply ELU."""
        block_input, conv_output = inputs
        mean, variance = self.statistics(block_input, conv_output)
        pooled = tf.nn.max_pool2d(conv_output, self.pool, self.pool, "VALID")
        scale = self._gamma * tf.math.rsqrt(variance + self.epsilon)
        return tf.nn.elu((pooled - mean) * scale + self._beta)

    def compute_output_shape(self, input_shapes: list[tuple[int | None, ...]]) -> tuple[Any, ...]:
        """Pooled shape of the conv output."""
        batch, height, width, channels = input_shapes[1]
        rows, cols = self.pool
        return (
            batch,
            None if height is None else height // rows,
            None if width is None else width // cols,
            channels,
        )
