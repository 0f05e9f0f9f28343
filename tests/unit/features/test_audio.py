"""Decoding real recordings to the 12 kHz, 29 s window, and the typed errors of bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import soxr

from features.audio import CLIP_SAMPLES, SAMPLE_RATE, decode
from features.errors import (
    AudioError,
    CorruptAudio,
    EmptyAudio,
    SilentAudio,
    TruncatedAudio,
    UnreadableAudio,
)

from .conftest import Clip

F32 = npt.NDArray[np.float32]


def encoded(samples: npt.NDArray[np.floating], rate: int, fmt: str, subtype: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def test_every_recording_decodes_to_the_fixed_window(
    clips: list[Clip], decoded: dict[str, F32]
) -> None:
    for clip in clips:
        audio = decoded[clip.name]
        assert audio.shape == (CLIP_SAMPLES,), clip.name
        assert audio.dtype == np.float32, clip.name
        assert np.isfinite(audio).all(), clip.name
        assert 1e-3 < np.abs(audio).max() <= 1.5, clip.name


def test_the_pinned_path_reproduces_the_golden_input(
    clip_by_name: dict[str, Clip], decoded: dict[str, F32], golden: dict[str, F32]
) -> None:
    assert str(golden["clip"]).endswith("brahms.ogg")
    np.testing.assert_allclose(decoded["brahms"], golden["audio12k"], rtol=0, atol=1e-6)


def test_short_clips_are_zero_padded_at_the_end(
    clip_by_name: dict[str, Clip], decoded: dict[str, F32]
) -> None:
    for name in ("robin", "trumpet"):
        clip, audio = clip_by_name[name], decoded[name]
        length = int(np.flatnonzero(audio)[-1]) + 1
        assert abs(length / SAMPLE_RATE - clip.duration_s) < 0.1, name
        assert not audio[length:].any()
        assert np.abs(audio[: SAMPLE_RATE // 2]).max() > 0  # nothing was padded in front


def test_long_clips_keep_the_first_29_seconds(clip_by_name: dict[str, Clip]) -> None:
    path = clip_by_name["fishin"].path
    native, rate = sf.read(path, dtype="float32", always_2d=True)
    assert native.shape[0] > 100 * rate
    head = soxr.resample(native[: 29 * rate].mean(axis=1), rate, SAMPLE_RATE, quality="HQ")
    np.testing.assert_allclose(decode(path), head[:CLIP_SAMPLES], rtol=0, atol=1e-6)


def test_stereo_mp3_is_the_channel_mean(
    clip_by_name: dict[str, Clip], decoded: dict[str, F32]
) -> None:
    path = clip_by_name["asc_frontiers"].path
    native, rate = sf.read(path, dtype="float64", always_2d=True)
    assert native.shape[1] == 2
    mono = native[: 29 * rate].mean(axis=1).astype(np.float32)
    expected = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")[:CLIP_SAMPLES]
    np.testing.assert_allclose(decoded["asc_frontiers"], expected, rtol=0, atol=1e-6)


def test_bytes_and_paths_decode_alike(
    clip_by_name: dict[str, Clip], decoded: dict[str, F32]
) -> None:
    for name in ("brahms", "asc_machine_wars"):
        path = clip_by_name[name].path
        np.testing.assert_array_equal(decode(path.read_bytes()), decoded[name])


@pytest.mark.parametrize(
    ("fmt", "subtype"), [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_24")]
)
def test_wav_and_flac_decode_like_the_samples_they_hold(
    clip_by_name: dict[str, Clip], tmp_path: Path, fmt: str, subtype: str
) -> None:
    # A 44.1 kHz stereo file made from a real recording, read back through both source kinds.
    native, rate = sf.read(clip_by_name["brahms"].path, dtype="float32")
    stereo = np.stack([native, 0.5 * native], axis=1)[: 31 * rate]
    stereo44 = soxr.resample(stereo, rate, 44_100, quality="HQ")
    data = encoded(stereo44, 44_100, fmt, subtype)
    path = tmp_path / f"clip.{fmt.lower()}"
    path.write_bytes(data)
    reference = soxr.resample(
        stereo44[: 29 * 44_100].mean(axis=1), 44_100, SAMPLE_RATE, quality="HQ"
    )
    quantum = 2.0**-15 if subtype == "PCM_16" else 1e-6
    for source in (data, path):
        np.testing.assert_allclose(
            decode(source), reference[:CLIP_SAMPLES], rtol=0, atol=4 * quantum
        )


def test_empty_input_is_empty_audio(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ogg"
    empty.touch()
    for source in (b"", empty, encoded(np.zeros(0, np.float32), 22_050, "WAV", "PCM_16")):
        with pytest.raises(EmptyAudio):
            decode(source)


def test_digital_silence_is_silent_audio() -> None:
    silence = encoded(np.zeros(22_050 * 5, np.float32), 22_050, "WAV", "PCM_16")
    with pytest.raises(SilentAudio, match="silent"):
        decode(silence)
    dither = np.random.default_rng(0).uniform(-3e-5, 3e-5, 22_050 * 5).astype(np.float32)
    with pytest.raises(SilentAudio):
        decode(encoded(dither, 22_050, "WAV", "FLOAT"))


def test_truncated_streams_are_truncated_audio(clip_by_name: dict[str, Clip]) -> None:
    ogg = clip_by_name["brahms"].path.read_bytes()
    mp3 = clip_by_name["asc_frontiers"].path.read_bytes()
    native, rate = sf.read(clip_by_name["brahms"].path, dtype="float32")
    wav = encoded(native, rate, "WAV", "PCM_16")
    for data in (ogg, mp3, wav):
        with pytest.raises(TruncatedAudio):
            decode(data[: len(data) // 2])


def test_corrupt_streams_are_corrupt_audio(clip_by_name: dict[str, Clip], tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    native, rate = sf.read(clip_by_name["brahms"].path, dtype="float32")
    flac = encoded(native, rate, "FLAC", "PCM_16")
    mp3 = bytearray(clip_by_name["asc_frontiers"].path.read_bytes())
    mp3[len(mp3) // 4 : len(mp3) // 4 + 5000] = rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    sources: list[bytes] = [
        rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes(),
        b"this is not audio\n" * 100,
        bytes(mp3),
        flac[: len(flac) // 2],  # libsndfile's FLAC decoder reports a cut stream as lost sync
    ]
    for data in sources:
        with pytest.raises(CorruptAudio):
            decode(data)
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(sources[0])
    with pytest.raises(CorruptAudio):
        decode(garbage)


def test_non_finite_or_absurd_samples_are_corrupt_audio() -> None:
    tone = np.sin(np.arange(22_050 * 3) * 0.05).astype(np.float32)
    for bad, match in ((np.nan, "NaN"), (np.inf, "NaN or infinite"), (1e9, "not audio")):
        samples = tone.copy()
        samples[1000] = bad
        with pytest.raises(CorruptAudio, match=match):
            decode(encoded(samples, 22_050, "WAV", "FLOAT"))


def test_missing_file_is_unreadable_audio(tmp_path: Path) -> None:
    with pytest.raises(UnreadableAudio, match="nothing-here.ogg"):
        decode(tmp_path / "nothing-here.ogg")


def test_audio_errors_are_not_retriable() -> None:
    for error in (
        AudioError,
        EmptyAudio,
        SilentAudio,
        TruncatedAudio,
        CorruptAudio,
        UnreadableAudio,
    ):
        assert error.retriable is False
