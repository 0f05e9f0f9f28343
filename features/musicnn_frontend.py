"""The MSD_musicnn front end in NumPy: 16 kHz mono audio in, log-mel patches out.

Reads and writes nothing. What the network was trained on, computed as the ``musicnn`` package
does with librosa 0.11 (and NumPy 1.x):

* power STFT: n_fft 512, hop 256, periodic Hann window, centred frames with zero padding, so a
  signal of ``n`` samples has ``1 + n // 256`` frames and frame ``t`` is centred on sample
  ``256 t``;
* 96 mel bands, Slaney scale and normalisation (``librosa.filters.mel(sr=16000, n_fft=512,
  n_mels=96)``);
* the mel power rounded through float16, as the package stores it, then ``log10(10000 x + 1)``
  in float32. Computing the log in float16 (the package's behaviour under NumPy 2) overflows
  to infinity on nearly every clip; :func:`log_compress` never does.

Patches are 187 frames (about 3 s), non-overlapping from frame 0; frames that do not fill a patch
are dropped, and a signal shorter than one patch is tiled in time to fill it.
"""

from __future__ import annotations

import librosa
import numpy as np
import numpy.typing as npt

from features.musicnn import N_MELS, PATCH_FRAMES

F32 = npt.NDArray[np.float32]

SAMPLE_RATE = 16_000
N_FFT = 512
HOP = 256
#: 16-kHz samples one patch spans from its first frame's centre to the next patch's.
PATCH_SAMPLES = PATCH_FRAMES * HOP


def mel_basis() -> F32:
    """The Slaney mel filterbank, ``(96, 257)``."""
    basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)
    return np.asarray(basis, dtype=np.float32)


_BASIS = mel_basis()
_WINDOW = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)


def frame_count(samples: int) -> int:
    """Frames of a centred STFT of ``samples`` samples."""
    return 1 + samples // HOP


def mel_power(audio: F32, *, centred: bool = True) -> F32:
    """Mel power spectrogram ``(frames, 96)`` of 16 kHz mono audio, float32.

    Args:
        audio: The signal.
        centred: Zero-pad ``n_fft / 2`` samples on both sides (librosa's ``center=True``).
            Without it the caller supplies that context itself: frame ``t`` covers samples
            ``[256 t, 256 t + 512)`` of ``audio``.
    """
    signal = np.pad(audio, N_FFT // 2) if centred else audio
    count = 1 + (signal.shape[0] - N_FFT) // HOP
    if count < 1:
        return np.zeros((0, N_MELS), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(signal, N_FFT)[::HOP][:count]
    # librosa windows in float64 and stores the spectrum as complex64.
    spectrum = np.fft.rfft(frames * _WINDOW, axis=1).astype(np.complex64)
    power = spectrum.real**2 + spectrum.imag**2
    return np.asarray(power @ _BASIS.T, dtype=np.float32)


def log_compress(mel: F32) -> F32:
    """``log10(10000 x + 1)`` of the mel power rounded through float16, computed in float32."""
    rounded = mel.astype(np.float16).astype(np.float32)
    return np.asarray(np.log10(np.float32(10_000) * rounded + np.float32(1)), dtype=np.float32)


def to_patches(log_mel: F32) -> F32:
    """Non-overlapping 187-frame patches ``(n, 187, 96)``; tiled to one when shorter."""
    frames = log_mel.shape[0]
    if frames == 0:
        msg = "no frames to cut into patches"
        raise ValueError(msg)
    if frames < PATCH_FRAMES:
        log_mel = np.tile(log_mel, (-(-PATCH_FRAMES // frames), 1))[:PATCH_FRAMES]
        frames = PATCH_FRAMES
    count = frames // PATCH_FRAMES
    return np.ascontiguousarray(
        log_mel[: count * PATCH_FRAMES].reshape(count, PATCH_FRAMES, N_MELS), dtype=np.float32
    )


def patches_of(audio: F32) -> F32:
    """Every patch of a whole signal: the package's front end, log in float32."""
    return to_patches(log_compress(mel_power(audio)))
