"""Decode a track into MSD_musicnn's log-mel patches, reading at most a bounded part of it.

Reads audio with soundfile (seeking) and resamples with soxr; writes nothing. A track holding
at most ``max_patches`` whole 3-s patches (a 30-s preview holds 10) is decoded whole, as
``librosa.load(path, sr=16000)`` does (channel mean, soxr "HQ"), and every patch is kept: this
is what the reference vectors were computed from. A longer track gives ``max_patches`` patches
spread evenly from its first to its last, each decoded from its own stretch of the file (a
seek, a little context for the resampler and the centred STFT), so a one-hour file costs about
what a preview does. The patches read are exactly patches of the whole-track grid: a stretch
starts on a sample where the native and the 16 kHz sample grids meet, so its resampled samples
fall on the whole track's, and only the context around it sees the cut.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import soxr

from features.audio import AudioSource, read_spans
from features.musicnn import PATCH_FRAMES
from features.musicnn_frontend import (
    HOP,
    N_FFT,
    PATCH_SAMPLES,
    SAMPLE_RATE,
    frame_count,
    log_compress,
    mel_power,
    patches_of,
)

F32 = npt.NDArray[np.float32]

#: 16-kHz samples of context read on each side of a patch's stretch for the resampler (soxr
#: "HQ" filters span well under a millisecond at these rates; 0.1 s leaves a wide margin).
CONTEXT = 1_600
#: 16-kHz samples a patch's 187 centred frames span: half a window either side of the centres.
PATCH_SPAN = (PATCH_FRAMES - 1) * HOP + N_FFT


def whole_patch_count(rate: int, frames: int) -> int:
    """Whole patches in a track of ``frames`` samples at ``rate`` (at least 1: short is tiled)."""
    resampled = math.ceil(frames * SAMPLE_RATE / rate)
    return max(1, frame_count(resampled) // PATCH_FRAMES)


def spread(count: int, chosen: int) -> list[int]:
    """``chosen`` indices of ``count`` spread evenly from the first to the last (middle for 1)."""
    if chosen >= count:
        return list(range(count))
    if chosen == 1:
        return [(count - 1) // 2]
    return [round(i * (count - 1) / (chosen - 1)) for i in range(chosen)]


def _resample(mono: F32, rate: int) -> F32:
    if rate == SAMPLE_RATE or not mono.size:
        return mono
    return np.asarray(soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ"), dtype=np.float32)


@dataclass(frozen=True)
class PatchSpan:
    """Where one chosen patch is read from.

    Attributes:
        index: The patch's index on the whole track's grid of 187-frame patches.
        start: First native sample read (on a sample shared by both grids).
        stop: Native sample after the last one read.
        offset: The 16 kHz sample that ``start`` falls on.
    """

    index: int
    start: int
    stop: int
    offset: int


def patch_spans(rate: int, frames: int, max_patches: int) -> list[PatchSpan] | None:
    """The stretches to read for a track of ``frames`` samples, or ``None`` to read it whole.

    Args:
        rate: The native sample rate.
        frames: The track's length in native samples, as its container declares it.
        max_patches: Most patches kept.
    """
    count = whole_patch_count(rate, frames)
    if count <= max_patches:
        return None
    # Native and 16 kHz samples coincide every `native` and `target` samples.
    common = math.gcd(rate, SAMPLE_RATE)
    native, target = rate // common, SAMPLE_RATE // common
    spans = []
    for index in spread(count, max_patches):
        first = index * PATCH_SAMPLES - N_FFT // 2
        block = max(0, (first - CONTEXT) // target)
        stop = math.ceil((first + PATCH_SPAN + CONTEXT) / target) * native
        spans.append(PatchSpan(index, block * native, stop, block * target))
    return spans


def decode_patches(source: AudioSource, max_patches: int) -> F32:
    """The log-mel patches of a track, ``(n, 187, 96)`` float32, ``n <= max_patches``.

    Args:
        source: Encoded mp3, ogg, wav or flac bytes, or the path of such a file.
        max_patches: Most patches kept; a longer track gives this many, spread evenly.

    Raises:
        AudioError: As ``features.audio.decode`` (unreadable, empty, truncated, corrupt or
            silent).
    """
    chosen: list[PatchSpan] = []

    def plan(rate: int, frames: int) -> list[tuple[int, int]]:
        spans = patch_spans(rate, frames, max_patches)
        if spans is None:
            return [(0, frames)]
        chosen.extend(spans)
        return [(span.start, span.stop) for span in spans]

    monos, rate = read_spans(source, plan)
    if not chosen:
        return patches_of(_resample(monos[0], rate))
    patches = []
    for span, mono in zip(chosen, monos, strict=True):
        audio = _resample(mono, rate)
        first = span.index * PATCH_SAMPLES - N_FFT // 2 - span.offset
        # Zeros where the stretch ends at the track's start or end, as the centred STFT pads.
        before = max(0, -first)
        window = np.zeros(PATCH_SPAN, dtype=np.float32)
        piece = audio[max(0, first) : first + PATCH_SPAN]
        window[before : before + piece.shape[0]] = piece
        patches.append(log_compress(mel_power(window, centred=False)))
    return np.stack(patches)
