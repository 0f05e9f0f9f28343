"""musicnn-msd decoding: long tracks read by seeking, a bounded cost, and typed errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import soxr

from features.errors import CorruptAudio, EmptyAudio, SilentAudio, TruncatedAudio, UnreadableAudio
from features.musicnn_audio import decode_patches, patch_spans, spread, whole_patch_count
from features.musicnn_frontend import patches_of

from .conftest import Clip

F32 = npt.NDArray[np.float32]


def encoded(samples: npt.NDArray[np.floating], rate: int, fmt: str, subtype: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def test_patches_spread_from_first_to_last() -> None:
    assert spread(44, 3) == [0, 22, 43]
    assert spread(10, 1) == [4]
    assert spread(5, 10) == [0, 1, 2, 3, 4]


def test_an_hour_long_track_reads_a_bounded_part() -> None:
    rate, frames = 44_100, 3_600 * 44_100
    spans = patch_spans(rate, frames, 10)
    assert spans is not None
    assert [span.index for span in spans][::9] == [0, whole_patch_count(rate, frames) - 1]
    read = sum(span.stop - span.start for span in spans)
    # Ten 3-s patches, their STFT context and 0.1 s for the resampler on each side.
    assert read <= 10 * 3.3 * rate
    assert all(0 <= span.start < span.stop for span in spans)
    # A 30-s preview holds 10 patches: it is decoded whole, every patch kept.
    assert patch_spans(rate, 30 * rate, 10) is None


def test_a_long_file_gives_the_whole_tracks_patches_spread_over_it(
    clip_by_name: dict[str, Clip], tmp_path: Path
) -> None:
    native, rate = sf.read(clip_by_name["nutcracker"].path, dtype="float32")
    long = np.tile(native, 3)  # six minutes
    path = tmp_path / "long.flac"
    sf.write(path, long, rate, subtype="PCM_16")
    stored, _ = sf.read(path, dtype="float32")
    whole = patches_of(soxr.resample(stored, rate, 16_000, quality="HQ"))
    got = decode_patches(path, 7)
    chosen = spread(whole.shape[0], 7)
    assert got.shape == (7, 187, 96)
    assert chosen[0] == 0 and chosen[-1] == whole.shape[0] - 1
    # float16 rounding of the mel power may flip on a few bins: 4e-4 after the log.
    assert np.abs(got - whole[chosen]).max() <= 1e-3
    assert np.mean(np.abs(got - whole[chosen]) > 1e-6) < 1e-3


def test_short_clips_are_tiled_to_one_patch(clip_by_name: dict[str, Clip]) -> None:
    patches = decode_patches(clip_by_name["robin"].path, 10)
    assert patches.shape == (1, 187, 96)
    # The robin's 2.7 s give 169 frames: the patch starts over at frame 169.
    np.testing.assert_array_equal(patches[0, 169:], patches[0, : 187 - 169])


def test_bad_audio_gets_the_typed_errors(clip_by_name: dict[str, Clip], tmp_path: Path) -> None:
    tone = np.sin(np.arange(22_050 * 5) * 0.05).astype(np.float32)
    with pytest.raises(EmptyAudio):
        decode_patches(b"", 10)
    with pytest.raises(UnreadableAudio):
        decode_patches(tmp_path / "missing.ogg", 10)
    with pytest.raises(CorruptAudio):
        decode_patches(b"this is not audio\n" * 100, 10)
    with pytest.raises(SilentAudio):
        decode_patches(encoded(np.zeros_like(tone), 22_050, "WAV", "PCM_16"), 10)
    nan = tone.copy()
    nan[1000] = np.nan
    with pytest.raises(CorruptAudio, match="NaN"):
        decode_patches(encoded(nan, 22_050, "WAV", "FLOAT"), 10)
    ogg = clip_by_name["brahms"].path.read_bytes()
    for patches in (3, 64):  # read by seeking, and whole
        with pytest.raises(TruncatedAudio):
            decode_patches(ogg[: len(ogg) // 2], patches)
