"""Decode mp3, ogg, wav or flac (bytes or a path) into the model's fixed 12 kHz mono window.

Reads audio with soundfile (libsndfile) and resamples with soxr; writes nothing. The path is
pinned because the features depend on it: decode to float32, average the channels, keep the
first 29 s at the native rate, resample that to 12 kHz with soxr "HQ" (what
``librosa.load(path, sr=12000, duration=29, res_type="soxr_hq")`` does), then zero-pad at the end
to exactly 348,000 samples. ``features.versions.DECODE_TAG`` names this path in versions.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from features.errors import (
    CorruptAudio,
    EmptyAudio,
    SilentAudio,
    TruncatedAudio,
    UnreadableAudio,
)

#: The audio files the decoder reads, by suffix, with the content type each is stored under.
CONTENT_TYPES = {
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
}

#: Raw encoded audio, or a file to read it from.
AudioSource = bytes | Path

SAMPLE_RATE = 12_000
CLIP_SECONDS = 29
CLIP_SAMPLES = SAMPLE_RATE * CLIP_SECONDS

#: Peak amplitude below which the window counts as silence: the front end keeps 80 dB below the
#: loudest bin, so a window quieter than -80 dBFS is dither at best and its vector is noise.
SILENCE_PEAK = 1e-4

#: Peak amplitude above which a float container holds garbage, not audio (+120 dBFS).
MAX_PEAK = 1e6

#: A stream may end this fraction short of the length its header estimates before it counts as
#: truncated, because MP3 headers without a Xing/Info frame only estimate the length.
_LENGTH_SLACK = 0.01

# libsndfile notes a short WAV/AIFF data chunk and a missing Ogg end-of-stream page only in its
# log, not as an error; these are the log lines of libsndfile 1.2.
_SHORT_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_OGG_UNFINISHED = "Last page lacks an end-of-stream bit"
# Streaming writers put these in the size field when they do not know the length yet.
_SIZE_PLACEHOLDERS = frozenset({0, 0x7FFFFFFF, 0xFFFFFFFF})


def _describe(source: AudioSource) -> str:
    return str(source) if isinstance(source, Path) else f"<{len(source)} bytes>"


def _truncation(log: str) -> str | None:
    if _OGG_UNFINISHED in log:
        return "the Ogg stream has no end-of-stream page"
    for declared, actual in _SHORT_CHUNK.findall(log):
        if int(declared) > int(actual) and int(declared) not in _SIZE_PLACEHOLDERS:
            return f"the data chunk declares {declared} bytes but holds {actual}"
    return None


def _read_window(source: AudioSource) -> tuple[npt.NDArray[np.float32], int]:
    """The first 29 s at the native rate, channels kept, with the container's checks applied."""
    what = _describe(source)
    _check_size(source, what)
    stream = source if isinstance(source, Path) else io.BytesIO(source)
    try:
        with sf.SoundFile(stream) as audio:
            rate = int(audio.samplerate)
            declared = int(audio.frames)
            wanted = CLIP_SECONDS * rate
            samples = audio.read(frames=wanted, dtype="float32", always_2d=True)
            log = str(audio.extra_info)
    except (sf.SoundFileError, RuntimeError, ValueError) as exc:
        msg = f"{what}: not a readable mp3, ogg, wav or flac stream: {exc}"
        raise CorruptAudio(msg) from exc
    if samples.shape[0] == 0:
        msg = f"{what}: the container holds no samples"
        raise EmptyAudio(msg)
    expected = min(wanted, declared)
    if samples.shape[0] < expected * (1 - _LENGTH_SLACK):
        msg = f"{what}: the stream ends after {samples.shape[0]} of {expected} samples"
        raise TruncatedAudio(msg)
    reason = _truncation(log)
    if reason is not None:
        msg = f"{what}: truncated: {reason}"
        raise TruncatedAudio(msg)
    return samples, rate


#: Native-rate sample spans ``[start, stop)`` to read, chosen from ``(rate, declared frames)``.
SpanPlan = Callable[[int, int], Sequence[tuple[int, int]]]


def read_spans(source: AudioSource, plan: SpanPlan) -> tuple[list[npt.NDArray[np.float32]], int]:
    """Read chosen spans of a stream at its native rate, mixed to mono, with the usual checks.

    The file is opened once; ``plan`` picks the spans from its sample rate and declared length,
    and each span is reached by seeking, so a long file costs only what the spans hold. A span
    reaching past the end is cut there.

    Returns:
        The spans' mono float32 samples, in ``plan``'s order, and the native sample rate.

    Raises:
        UnreadableAudio, EmptyAudio, TruncatedAudio, CorruptAudio, SilentAudio: as
            :func:`decode`, with the checks applied to the spans read.
    """
    what = _describe(source)
    _check_size(source, what)
    stream = source if isinstance(source, Path) else io.BytesIO(source)
    pieces = []
    try:
        with sf.SoundFile(stream) as audio:
            rate, declared = int(audio.samplerate), int(audio.frames)
            # Where the stream really ended, when a span came back short.
            ended: int | None = None
            for start, stop in plan(rate, declared):
                audio.seek(min(start, declared))
                wanted = max(0, min(stop, declared) - start)
                piece = audio.read(frames=wanted, dtype="float32", always_2d=True)
                if piece.shape[0] < wanted:
                    end = min(start, declared) + piece.shape[0]
                    ended = end if ended is None else min(ended, end)
                pieces.append(piece)
            log = str(audio.extra_info)
    except (sf.SoundFileError, RuntimeError, ValueError) as exc:
        msg = f"{what}: not a readable mp3, ogg, wav or flac stream: {exc}"
        raise CorruptAudio(msg) from exc
    got = sum(piece.shape[0] for piece in pieces)
    if got == 0:
        msg = f"{what}: the container holds no samples"
        raise EmptyAudio(msg)
    # An estimated length (MP3 without a Xing frame) may overshoot a little: only a stream
    # ending well before its declared length is truncated.
    if ended is not None and ended < declared * (1 - _LENGTH_SLACK):
        msg = f"{what}: the stream ends after {ended} of {declared} samples"
        raise TruncatedAudio(msg)
    reason = _truncation(log)
    if reason is not None:
        msg = f"{what}: truncated: {reason}"
        raise TruncatedAudio(msg)
    monos = [_mix_down(piece) for piece in pieces]
    peak = 0.0
    for mono in monos:
        if not np.isfinite(mono).all():
            msg = f"{what}: the stream holds NaN or infinite samples"
            raise CorruptAudio(msg)
        peak = max(peak, float(np.max(np.abs(mono), initial=0.0)))
    if peak > MAX_PEAK:
        msg = f"{what}: peak amplitude {peak:.3g} is not audio (limit {MAX_PEAK:g})"
        raise CorruptAudio(msg)
    if peak < SILENCE_PEAK:
        msg = f"{what}: silent: peak amplitude {peak:.3g} is below {SILENCE_PEAK:g} (-80 dBFS)"
        raise SilentAudio(msg)
    return monos, rate


def _check_size(source: AudioSource, what: str) -> None:
    if isinstance(source, Path):
        try:
            size = source.stat().st_size
        except OSError as exc:
            msg = f"{what}: cannot open the file: {exc.strerror or exc}"
            raise UnreadableAudio(msg) from exc
    else:
        size = len(source)
    if size == 0:
        msg = f"{what}: no bytes"
        raise EmptyAudio(msg)


def _mix_down(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The channel mean; for two channels ``(l + r) / 2`` in float32, as ``np.mean`` rounds it.

    ``samples.mean(axis=1)`` reduces over a length-2 axis one row at a time, ten times slower.
    """
    channels = samples.shape[1]
    if channels == 1:
        return np.ascontiguousarray(samples[:, 0])
    total = samples[:, 0].copy()
    for channel in range(1, channels):
        total += samples[:, channel]
    total /= np.float32(channels)
    return total


def decode(source: AudioSource) -> npt.NDArray[np.float32]:
    """Decode audio into the model's input: 348,000 float32 samples of 12 kHz mono.

    Args:
        source: Encoded mp3, ogg, wav or flac bytes, or the path of such a file.

    Returns:
        The first 29 s, resampled and zero-padded at the end, contiguous float32.

    Raises:
        UnreadableAudio: The path does not exist or cannot be opened.
        EmptyAudio: No bytes, or no samples.
        TruncatedAudio: The stream ends before the length its container declares.
        CorruptAudio: Unreadable, an unknown format, or samples that are not finite.
        SilentAudio: The window's peak is below :data:`SILENCE_PEAK`.
    """
    what = _describe(source)
    samples, rate = _read_window(source)
    mono = _mix_down(samples)
    if not np.isfinite(mono).all():
        msg = f"{what}: the stream holds NaN or infinite samples"
        raise CorruptAudio(msg)
    peak = float(np.max(np.abs(mono)))
    if peak > MAX_PEAK:
        msg = f"{what}: peak amplitude {peak:.3g} is not audio (limit {MAX_PEAK:g})"
        raise CorruptAudio(msg)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")
    window = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    kept = min(CLIP_SAMPLES, mono.shape[0])
    window[:kept] = mono[:kept]
    peak = float(np.max(np.abs(window)))
    if peak < SILENCE_PEAK:
        msg = f"{what}: silent: peak amplitude {peak:.3g} is below {SILENCE_PEAK:g} (-80 dBFS)"
        raise SilentAudio(msg)
    return window


#: A track up to this many seconds long is analysed from its start: a 30-s preview keeps the
#: window it always had. Longer tracks get windows spread over them (:func:`decode_windows`).
PREVIEW_LIMIT_S = 35.0


def window_starts(rate: int, frames: int, count: int) -> list[int]:
    """Native-rate starts of ``count`` 29-s windows spread evenly over a track.

    A track of at most :data:`PREVIEW_LIMIT_S` gives one window at its start. A longer one gives
    ``count`` windows, the first at the start and the last ending at the end (one window: the
    middle of the track).
    """
    wanted = CLIP_SECONDS * rate
    if frames <= PREVIEW_LIMIT_S * rate:
        return [0]
    room = frames - wanted
    if count == 1:
        return [room // 2]
    return [round(i * room / (count - 1)) for i in range(count)]


def decode_windows(source: AudioSource, count: int) -> npt.NDArray[np.float32]:
    """The model's 29-s windows spread over a track, ``(n, 348000)``, each read by seeking.

    Args:
        source: Encoded mp3, ogg, wav or flac bytes, or the path of such a file.
        count: Windows for a track longer than :data:`PREVIEW_LIMIT_S` (1: its middle).

    Returns:
        One window (the first 29 s, as :func:`decode`) for a preview-length track, else
        ``count`` windows, each resampled to 12 kHz and zero-padded at the end if short.

    Raises:
        AudioError: As :func:`decode`.
    """

    def plan(rate: int, frames: int) -> list[tuple[int, int]]:
        wanted = CLIP_SECONDS * rate
        return [(start, start + wanted) for start in window_starts(rate, frames, count)]

    monos, rate = read_spans(source, plan)
    windows = np.zeros((len(monos), CLIP_SAMPLES), dtype=np.float32)
    for row, mono in zip(windows, monos, strict=True):
        if rate != SAMPLE_RATE and mono.size:
            mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")
        kept = min(CLIP_SAMPLES, mono.shape[0])
        row[:kept] = mono[:kept]
    return windows
