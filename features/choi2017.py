"""The Choi et al. (ISMIR 2017) transfer-learning convnet, rebuilt in Keras 3 from its weights.

Reads nothing itself: :func:`build_choi2017` takes the arrays of ``features.weights`` and returns
a Keras model mapping ``(batch, 348000)`` 12 kHz audio to the 160-float feature vector and the
50 tag probabilities. Log-mel front end, then five blocks of 3 x 3 conv (32 channels) ->
batch-norm "mode 2" -> ELU -> max-pool; the feature is the average over (freq, time) of each
block's pooled output, concatenated block 1 -> 5; the tag head reads block 5's 32 values.

Where the normalisation takes its statistics is a parameter (``features.normalization``): the
faithful per-example statistics by default, frozen calibrated ones for another model version.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from features.audio import CLIP_SAMPLES
from features.frontend import LogMelSpectrogram
from features.normalization import (
    ConvBlock,
    NormalizeEluPool,
    StatisticsFactory,
    fold_negative_gamma,
    per_example_statistics,
)
from features.runtime import keras, tf
from features.weights import Choi2017Weights

F32 = npt.NDArray[np.float32]

#: Max-pool sizes (freq, time) of blocks 1..5 for 96 mel bins; the maps shrink to 1 x 1.
POOL_SIZES = ((2, 4), (3, 4), (2, 5), (2, 4), (4, 4))
CHANNELS = 32
FEATURE_DIM = CHANNELS * len(POOL_SIZES)


class ChannelMean(keras.layers.Layer):  # type: ignore[misc]  # keras ships no types
    """Average over (freq, time) per channel, ``(batch, F, T, C) -> (batch, C)``, summed in float64.

    ``GlobalAveragePooling2D`` sums the 16,320 positions of block 1's map in float32, which
    moved the feature by up to 7e-5 on real clips; in float64 the port stays within 4e-6.
    """

    def call(self, inputs: Any) -> Any:
        """The channel means."""
        return tf.cast(tf.reduce_mean(tf.cast(inputs, tf.float64), axis=[1, 2]), tf.float32)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        """``(batch, channels)``."""
        return (input_shape[0], input_shape[3])


def theano_to_keras_kernel(kernel: F32) -> F32:
    """Turn a Theano ``(out, in, rows, cols)`` convolution kernel into a Keras one.

    Theano convolves (it flips the kernel), Keras cross-correlates, so both spatial axes are
    reversed before moving to ``(rows, cols, in, out)``.
    """
    return np.ascontiguousarray(kernel[:, :, ::-1, ::-1].transpose(2, 3, 1, 0))


def build_choi2017(
    weights: Choi2017Weights,
    *,
    statistics: StatisticsFactory = per_example_statistics,
    taps: bool = False,
) -> Any:
    """Build the network and load the weights into it.

    Args:
        weights: The arrays of the Theano weight file.
        statistics: Builds each block's normalisation statistics strategy.
        taps: Also output ``mel_db`` and the pooled maps ``block1`` .. ``block5``, for tests.

    Returns:
        A ``keras.Model`` from ``(batch, 348000)`` float32 audio to a dict with ``features``
        ``(batch, 160)`` and ``tags`` ``(batch, 50)``, plus the taps when asked.
    """
    audio = keras.Input(shape=(CLIP_SAMPLES,), dtype="float32", name="audio")
    mel_db = LogMelSpectrogram(weights.mel_basis, name="log_mel")(audio)
    x = mel_db
    maps, averages = [], []
    blocks = zip(
        POOL_SIZES,
        weights.conv_kernels,
        weights.conv_biases,
        weights.norm_gamma,
        weights.norm_beta,
        strict=True,
    )
    for index, (pool, theano_kernel, bias, gamma, beta) in enumerate(blocks):
        name = f"block{index + 1}"
        kernel, bias, gamma, negated = fold_negative_gamma(
            theano_to_keras_kernel(theano_kernel), bias, gamma
        )
        conv = keras.layers.Conv2D(CHANNELS, 3, padding="same", name=f"{name}_conv")
        conv_output = conv(x)
        conv.set_weights([kernel, bias])
        tail = NormalizeEluPool(
            statistics(ConvBlock(index, kernel, bias, negated)),
            gamma,
            beta,
            pool,
            name=f"{name}_tail",
        )
        x = tail([x, conv_output])
        maps.append(x)
        averages.append(ChannelMean(name=f"{name}_mean")(x))
    features = keras.layers.Concatenate(name="features")(averages)
    # Block 5's map is 1 x 1, so the original's Flatten before the head equals its average.
    head = keras.layers.Dense(len(weights.dense_bias), activation="sigmoid", name="tags")
    tags = head(averages[-1])
    head.set_weights([weights.dense_kernel, weights.dense_bias])
    outputs: dict[str, Any] = {"features": features, "tags": tags}
    if taps:
        outputs["mel_db"] = mel_db
        outputs.update({f"block{i + 1}": block for i, block in enumerate(maps)})
    return keras.Model(audio, outputs, name="choi2017")
