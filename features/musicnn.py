"""MSD_musicnn (Pons & Serra 2019) rebuilt in Keras 3 from its TensorFlow-1 checkpoint.

Reads nothing itself: :func:`build_musicnn` takes the variables of ``features.musicnn_weights``
and returns a Keras layer mapping log-mel patches ``(batch, 187, 96)`` (time, mel band; see
``features.musicnn_frontend``) to each patch's 200-float penultimate vector and 50 MSD tag
probabilities. The layer order is ``build_musicnn`` of the wheel's ``musicnn/models.py``, every
batch norm in inference mode (moving statistics, epsilon 1e-3):

* input batch norm (one channel);
* front end: timbral convs 7 x 38 and 7 x 67 over (time, mel), zero-padded 3 frames on each side
  of time and valid over mel, 204 filters each; temporal convs 128 x 1, 64 x 1 and 32 x 1 with
  TensorFlow's ``SAME`` padding, 51 filters each; each ReLU -> batch norm -> max over mel, then
  concatenated (561 channels per frame);
* mid end: three 1-D convs over time (kernel 7, zero-padded 3 and 3, 64 filters, ReLU, batch
  norm), the second and third with residual sums; concatenated with the front end (753);
* back end: max and mean over time, flattened interleaved (max 0, mean 0, max 1, ...) as
  TensorFlow flattens the stacked pair, batch norm -> dense 200 + ReLU -> batch norm: the
  penultimate vector; dense 50 -> sigmoid: the tags.

Every output depends on its own patch only, so patches of several clips can share a batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from features.musicnn_weights import BatchNorm, batch_norms
from features.runtime import keras, tf

F32 = npt.NDArray[np.float32]

#: Frames per patch (about 3 s at 16 kHz, hop 256) and mel bands.
PATCH_FRAMES = 187
N_MELS = 96
#: Length of the penultimate vector, the embedding.
EMBEDDING_DIM = 200
#: The temporal convs: longest kernel, its ``SAME`` left padding, their 3 x 51 channels, and
#: the frames per block of their polyphase form.
TEMPORAL_TAPS = 128
TEMPORAL_LEFT = (TEMPORAL_TAPS - 1) // 2
TEMPORAL_CHANNELS = 3 * 51
PHASES = 8
#: TensorFlow-1 ``batch_normalization``'s default epsilon.
NORM_EPSILON = 1e-3


def _affine(norm: BatchNorm) -> tuple[Any, Any]:
    """The batch norm as ``x * scale + shift``, folded once in float64."""
    scale = norm.gamma.astype(np.float64) / np.sqrt(norm.variance.astype(np.float64) + NORM_EPSILON)
    shift = norm.beta.astype(np.float64) - norm.mean.astype(np.float64) * scale
    return tf.constant(scale, tf.float32), tf.constant(shift, tf.float32)


def _scale_sign(norm: BatchNorm) -> F32:
    """+1 or -1 per channel: the sign of the batch norm's scale ``gamma / sqrt(var + eps)``."""
    return np.where(norm.gamma < 0, -1.0, 1.0).astype(np.float32)


def _max_over(signed: Any, axis: int, bias: Any, norm: tuple[Any, Any], sign: Any) -> Any:
    """``max`` over ``axis`` of ``BN(ReLU(z + bias))``, from ``signed = sign * z``.

    The front end's ReLU -> batch norm -> max over mel bands is computed on the reduced map: per
    channel ``BN(ReLU(v)) = a ReLU(v) + c`` is monotonic in ``v``, increasing when ``a >= 0``, so
    its maximum is at ``max v``, and decreasing when ``a < 0``, at ``min v = -max(-v)``. The
    builder negated the kernels of the channels with ``a < 0`` (``sign``), so one max over the
    conv output serves both, and the elementwise work runs on a map 30 to 96 times smaller.
    """
    scale, shift = norm
    extreme = sign * (tf.reduce_max(signed, axis=axis) + sign * bias)
    return tf.nn.relu(extreme) * scale + shift


class MusicnnNetwork(keras.layers.Layer):  # type: ignore[misc]  # keras ships no types
    """The whole network as one layer holding the checkpoint's values as constants."""

    def __init__(self, variables: dict[str, F32], **kwargs: Any) -> None:
        super().__init__(trainable=False, **kwargs)
        folded = batch_norms(variables)
        norms = [_affine(norm) for norm in folded]
        # Per front-end channel, the sign of its batch norm's scale (see `_max_over`).
        signs = [_scale_sign(norm) for norm in folded[1:6]]
        self._timbral_signs = [tf.constant(sign) for sign in signs[:2]]
        temporal_sign = np.concatenate(signs[2:])
        self._temporal_sign = tf.constant(temporal_sign)
        self._input_norm = norms[0]
        self._front_norms = norms[1:6]
        self._mid_norms = norms[6:9]
        self._pool_norm, self._dense_norm = norms[9], norms[10]

        def constant(name: str) -> Any:
            return tf.constant(variables[name], tf.float32)

        self._timbral = [
            (
                tf.constant(variables[f"conv2d{suffix}/kernel"] * sign),
                constant(f"conv2d{suffix}/bias"),
            )
            for suffix, sign in zip(("", "_1"), signs[:2], strict=True)
        ]
        blocked = polyphase_temporal_kernel([variables[f"conv2d_{i}/kernel"] for i in (2, 3, 4)])
        self._temporal_kernel = tf.constant(blocked * np.tile(temporal_sign, PHASES))
        self._temporal_bias = tf.concat([constant(f"conv2d_{i}/bias") for i in (2, 3, 4)], 0)
        # The mid end's 2-D convs span all channels of their input: 1-D convs over time.
        self._mid = [
            (tf.constant(variables[f"conv2d_{i}/kernel"][:, :, 0, :]), constant(f"conv2d_{i}/bias"))
            for i in (5, 6, 7)
        ]
        self._dense = (constant("dense/kernel"), constant("dense/bias"))
        self._tags = (constant("dense_1/kernel"), constant("dense_1/bias"))

    def _temporal_convs(self, patches: Any) -> Any:
        """The three temporal convs of the input-normalised patches, ``(batch, 96, 187, 153)``.

        Each mel band is an independent 1-channel signal of 187 frames. Cut into blocks of
        :data:`PHASES` frames, a 128-tap filter becomes a 17-tap one with 8 input and 8 x 153
        output channels (:func:`polyphase_temporal_kernel`), which runs three times faster
        here than the 1-channel convolutions themselves.
        """
        scale, shift = self._input_norm
        batch = tf.shape(patches)[0]
        taps = self._temporal_kernel.shape[0]
        blocks = -(-PATCH_FRAMES // PHASES)
        length = (blocks + taps - 1) * PHASES
        bands = tf.transpose(patches * scale + shift, [0, 2, 1])
        bands = tf.pad(
            bands, [[0, 0], [0, 0], [TEMPORAL_LEFT, length - TEMPORAL_LEFT - PATCH_FRAMES]]
        )
        blocked = tf.reshape(bands, [-1, blocks + taps - 1, PHASES])
        y = tf.nn.conv1d(blocked, self._temporal_kernel, 1, "VALID")
        y = tf.reshape(y, [batch, N_MELS, blocks * PHASES, TEMPORAL_CHANNELS])
        return y[:, :, :PATCH_FRAMES]

    def call(self, patches: Any) -> dict[str, Any]:
        """Patches ``(batch, 187, 96)`` to ``penultimate`` (batch, 200) and ``tags`` (batch, 50)."""
        scale, shift = self._input_norm
        x = (patches * scale + shift)[..., tf.newaxis]
        padded = tf.pad(x, [[0, 0], [3, 3], [0, 0], [0, 0]])
        front = []
        for (kernel, bias), norm, sign in zip(
            self._timbral, self._front_norms[:2], self._timbral_signs, strict=True
        ):
            signed = tf.nn.conv2d(padded, kernel, 1, "VALID")
            front.append(_max_over(signed, 2, bias, norm, sign))
        norm = tuple(tf.concat(parts, 0) for parts in zip(*self._front_norms[2:], strict=True))
        signed = self._temporal_convs(patches)
        front.append(_max_over(signed, 1, self._temporal_bias, norm, self._temporal_sign))
        front_end = tf.concat(front, axis=2)
        layers = [front_end]
        previous = front_end
        for index, ((kernel, bias), (scale, shift)) in enumerate(
            zip(self._mid, self._mid_norms, strict=True)
        ):
            padded_mid = tf.pad(previous, [[0, 0], [3, 3], [0, 0]])
            y = tf.nn.relu(tf.nn.conv1d(padded_mid, kernel, 1, "VALID") + bias) * scale + shift
            previous = y if index == 0 else y + previous
            layers.append(previous)
        features = tf.concat(layers, axis=2)
        pooled = tf.stack([tf.reduce_max(features, axis=1), tf.reduce_mean(features, axis=1)], 2)
        flat = tf.reshape(pooled, [-1, 2 * pooled.shape[1]])
        scale, shift = self._pool_norm
        kernel, bias = self._dense
        dense = tf.nn.relu(tf.linalg.matmul(flat * scale + shift, kernel) + bias)
        scale, shift = self._dense_norm
        penultimate = dense * scale + shift
        kernel, bias = self._tags
        tags = tf.math.sigmoid(tf.linalg.matmul(penultimate, kernel) + bias)
        return {"penultimate": penultimate, "tags": tags}


def polyphase_temporal_kernel(kernels: list[F32]) -> F32:
    """The temporal convs' kernels ``(k, 1, 1, 51)``, k = 128, 64, 32, as one blocked kernel.

    TensorFlow's ``SAME`` padding puts ``(k - 1) // 2`` zeros before the signal, so output frame
    ``t`` of the kernel of length ``k`` reads frames ``t - (k - 1) // 2`` onwards. Put in one
    128-tap window starting at ``t - 63``, the kernels are zero outside their span; with frames
    cut into blocks of ``P`` (:data:`PHASES`), output frame ``P a + q`` is the sum over block
    taps ``j`` and phases ``p`` of input ``P (a + j) + p`` times tap ``m = P j + p - q`` of that
    window.

    Returns:
        ``(J, P, P * 153)``: block taps, input phases, (output phase, channel).
    """
    window = np.zeros((TEMPORAL_TAPS, TEMPORAL_CHANNELS), dtype=np.float32)
    for index, kernel in enumerate(kernels):
        length, width = kernel.shape[0], kernel.shape[-1]
        start = TEMPORAL_LEFT - (length - 1) // 2
        window[start : start + length, index * width : (index + 1) * width] = kernel[:, 0, 0, :]
    taps = (TEMPORAL_TAPS - 1 + PHASES - 1) // PHASES + 1
    blocked = np.zeros((taps, PHASES, PHASES, TEMPORAL_CHANNELS), dtype=np.float32)
    for j in range(taps):
        for p in range(PHASES):
            for q in range(PHASES):
                m = PHASES * j + p - q
                if 0 <= m < TEMPORAL_TAPS:
                    blocked[j, p, q] = window[m]
    return blocked.reshape(taps, PHASES, PHASES * TEMPORAL_CHANNELS)


def build_musicnn(variables: dict[str, F32]) -> MusicnnNetwork:
    """The network: call it on ``(batch, 187, 96)`` float32 patches (eager or in a tf.function)."""
    return MusicnnNetwork(variables, name="msd_musicnn")
