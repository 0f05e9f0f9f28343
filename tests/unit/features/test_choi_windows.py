"""Choi models over long tracks: 29-s windows spread over the track, their vectors averaged."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr

from features.audio import CLIP_SAMPLES, SAMPLE_RATE, decode, decode_windows, window_starts
from features.extractor import Choi2017Extractor
from features.weights import Choi2017Weights

from .conftest import Clip


def test_previews_keep_their_first_29_seconds(clip_by_name: dict[str, Clip]) -> None:
    for name in ("asc_frontiers", "choice", "robin"):
        path = clip_by_name[name].path
        windows = decode_windows(path, 3)
        assert windows.shape == (1, CLIP_SAMPLES)
        np.testing.assert_array_equal(windows[0], decode(path))


def test_long_tracks_give_windows_from_start_to_end(clip_by_name: dict[str, Clip]) -> None:
    path = clip_by_name["fishin"].path
    native, rate = sf.read(path, dtype="float32")
    starts = window_starts(rate, native.shape[0], 3)
    assert starts[0] == 0 and starts[-1] + 29 * rate == native.shape[0]
    windows = decode_windows(path, 3)
    assert windows.shape == (3, CLIP_SAMPLES)
    middle = window_starts(rate, native.shape[0], 1)[0]
    expected = soxr.resample(native[middle : middle + 29 * rate], rate, SAMPLE_RATE, quality="HQ")
    np.testing.assert_array_equal(decode_windows(path, 1)[0], expected[:CLIP_SAMPLES])


def test_several_windows_average_their_vectors(
    weights: Choi2017Weights, clip_by_name: dict[str, Clip]
) -> None:
    spread = Choi2017Extractor(weights, windows=3)
    assert spread.version == "choi2017+sf-soxrhq-12k-29sx3"
    windows = spread.decode(clip_by_name["nutcracker"].path)
    preview = spread.decode(clip_by_name["asc_frontiers"].path)
    together = spread.embed([windows, preview])
    alone = [spread.embed([window])[0].vector for window in windows]
    np.testing.assert_allclose(together[0].vector, np.mean(alone, axis=0), atol=1e-6)
    np.testing.assert_allclose(together[1].vector, spread.embed([preview[0]])[0].vector, atol=1e-6)
