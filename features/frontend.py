"""The Choi 2017 log-mel front end as a Keras layer: 348,000 samples in, a 96 x 1360 dB image out.

Reads nothing and writes nothing; the layer holds the stored mel filterbank and computes, per
example, what kapre @ a3bde3e on Theano computed for one clip:

* framing: 257 zeros before and 255 after, frames of 512 every 256 samples, 1360 frames. Theano
  ran the DFT as a true convolution with "half" padding; for the symmetric periodic Hann window
  that equals a plain STFT whose frames start one sample before librosa's centred ones.
* power spectrum of the periodic-Hann-windowed 512-point DFT, unnormalised;
* power times the stored Slaney mel filterbank (257 x 96, 0-6000 Hz);
* ``10 log10(max(S, 1e-10))``, minus the example's own maximum, floored at -80 dB.

The output is channels-last ``(batch, 96, 1360, 1)``: axis 1 mel bins, ascending; axis 2 time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from features.audio import CLIP_SAMPLES
from features.runtime import keras, tf

N_FFT = 512
HOP = 256
N_MELS = 96
N_FRAMES = -(-CLIP_SAMPLES // HOP)
# Theano's flipped "half" convolution puts frame t at sample 256 t - 257; see the docstring.
PAD_LEFT = HOP + 1
PAD_RIGHT = N_FFT - PAD_LEFT
AMIN = 1e-10
DYNAMIC_RANGE_DB = 80.0


def periodic_hann(length: int = N_FFT) -> npt.NDArray[np.float32]:
    """The periodic Hann window (``scipy.signal.get_window("hann", n)``)."""
    n = np.arange(length, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)).astype(np.float32)


class LogMelSpectrogram(keras.layers.Layer):  # type: ignore[misc]  # keras ships no types
    """Log-mel spectrogram in decibels relative to each example's loudest bin.

    The DFT is a real FFT of the windowed frames; it equals the stored windowed DFT kernels
    (``melgram/param_0``, ``param_1``) to within 3e-8 and ran two to three times faster here
    than a matmul against them.
    """

    def __init__(self, mel_basis: npt.NDArray[np.float32], **kwargs: Any) -> None:
        super().__init__(trainable=False, **kwargs)
        if mel_basis.shape != (N_FFT // 2 + 1, N_MELS):
            msg = f"mel basis has shape {mel_basis.shape}, expected {(N_FFT // 2 + 1, N_MELS)}"
            raise ValueError(msg)
        self._mel_basis = tf.constant(mel_basis, dtype=tf.float32)
        self._window = tf.constant(periodic_hann(), dtype=tf.float32)

    def call(self, audio: Any) -> Any:
        """Map ``(batch, 348000)`` audio to ``(batch, 96, 1360, 1)`` decibels."""
        padded = tf.pad(audio, [[0, 0], [PAD_LEFT, PAD_RIGHT]])
        frames = tf.signal.frame(padded, N_FFT, HOP) * self._window
        spectrum = tf.signal.rfft(frames)
        power = tf.math.square(tf.math.real(spectrum)) + tf.math.square(tf.math.imag(spectrum))
        mel = tf.linalg.matmul(power, self._mel_basis)
        decibels = (10.0 / np.log(10.0)) * tf.math.log(tf.maximum(mel, AMIN))
        # Per example, not over the batch as kapre 0.0.3 did: one clip per batch is what the
        # original extractor ran, and it keeps every vector independent of its batch-mates.
        decibels -= tf.reduce_max(decibels, axis=[1, 2], keepdims=True)
        decibels = tf.maximum(decibels, -DYNAMIC_RANGE_DB)
        return tf.transpose(decibels, [0, 2, 1])[..., tf.newaxis]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        """Shape of the output for a given input shape."""
        return (input_shape[0], N_MELS, N_FRAMES, 1)
