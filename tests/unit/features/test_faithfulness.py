"""The port computes what the original computed: golden vector, oracle, kernels, statistics."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from features.choi2017 import build_choi2017
from features.extractor import Choi2017Extractor
from features.frontend import periodic_hann
from features.normalization import ChannelStatistics, ConvBlock
from features.runtime import tf
from features.weights import Choi2017Weights
from tests.oracle.choi2017 import OracleOutput, OracleWeights, forward

from .conftest import Clip

F32 = npt.NDArray[np.float32]
TOLERANCE = 1e-4


def run_taps(model: Any, audio: F32) -> dict[str, F32]:
    outputs = model(tf.constant(audio[None]), training=False)
    return {key: np.asarray(value)[0] for key, value in outputs.items()}


@pytest.fixture(scope="module")
def taps_model(weights: Choi2017Weights) -> Any:
    return build_choi2017(weights, taps=True)


def test_oracle_reproduces_the_golden_vector(
    golden: dict[str, F32], oracle_weights: OracleWeights
) -> None:
    result = forward(golden["audio12k"].astype(np.float64), oracle_weights)
    # The golden log-mel came from analytic kernels; the stored float32 ones differ by 3e-8,
    # which moves bins 70-80 dB down by up to 1e-4 dB.
    np.testing.assert_allclose(result.mel_db, golden["mel_db"], rtol=0, atol=2e-4)
    for k in range(2, 6):
        np.testing.assert_allclose(result.blocks[k - 1], golden[f"block{k}"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(result.features[:32], golden["block1_gap"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(result.features, golden["features"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(result.tags, golden["tags"], rtol=0, atol=1e-5)


def test_the_stored_dft_kernels_are_the_fft_the_port_uses(weights: Choi2017Weights) -> None:
    # The port runs an FFT instead of a matmul against the stored kernels; they must agree.
    n, k = np.arange(512)[:, None], np.arange(257)[None, :]
    angle = 2 * np.pi * n * k / 512
    window = periodic_hann()[:, None].astype(np.float64)
    np.testing.assert_allclose(weights.dft_real, window * np.cos(angle), rtol=0, atol=1e-7)
    np.testing.assert_allclose(weights.dft_imag, window * np.sin(angle), rtol=0, atol=1e-7)


def test_port_reproduces_the_golden_vector_layer_by_layer(
    golden: dict[str, F32], taps_model: Any
) -> None:
    out = run_taps(taps_model, golden["audio12k"])
    assert out["mel_db"].shape == (96, 1360, 1)
    # float32 STFT: bins near the -80 dB floor carry a few 1e-4 dB of rounding.
    np.testing.assert_allclose(out["mel_db"][..., 0], golden["mel_db"], rtol=0, atol=1e-3)
    for k in range(2, 6):
        theano_layout = out[f"block{k}"].transpose(2, 0, 1)
        np.testing.assert_allclose(theano_layout, golden[f"block{k}"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(out["features"], golden["features"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(out["tags"], golden["tags"], rtol=0, atol=TOLERANCE)


def test_port_matches_the_oracle_on_every_recording(
    clips: list[Clip],
    decoded: dict[str, F32],
    oracle: dict[str, OracleOutput],
    extractor: Choi2017Extractor,
) -> None:
    embeddings = extractor.embed([decoded[clip.name] for clip in clips])
    worst = {
        clip.name: float(np.abs(e.vector - oracle[clip.name].features).max())
        for clip, e in zip(clips, embeddings, strict=True)
    }
    assert max(worst.values()) < TOLERANCE, worst
    for clip, embedding in zip(clips, embeddings, strict=True):
        np.testing.assert_allclose(
            embedding.tag_probabilities, oracle[clip.name].tags, rtol=0, atol=TOLERANCE
        )


def test_features_are_block_averages_concatenated_low_to_high(
    golden: dict[str, F32], taps_model: Any
) -> None:
    out = run_taps(taps_model, golden["audio12k"])
    averages = [out[f"block{k}"].astype(np.float64).mean(axis=(0, 1)) for k in range(1, 6)]
    np.testing.assert_allclose(out["features"], np.concatenate(averages), rtol=0, atol=1e-6)
    assert [out[f"block{k}"].shape[:2] for k in range(1, 6)] == [
        (48, 340),
        (16, 85),
        (8, 17),
        (4, 4),
        (1, 1),
    ]


def test_oracle_catches_unflipped_kernels(
    weights: Choi2017Weights,
    golden: dict[str, F32],
    clip_by_name: dict[str, Clip],
    decoded: dict[str, F32],
    oracle: dict[str, OracleOutput],
) -> None:
    # Pre-flipping the stored kernels cancels the port's Theano-to-Keras flip: the classic bug.
    unflipped = dataclasses.replace(
        weights, conv_kernels=tuple(k[:, :, ::-1, ::-1].copy() for k in weights.conv_kernels)
    )
    buggy = Choi2017Extractor(unflipped)
    music = [name for name, clip in clip_by_name.items() if clip.kind == "music"]
    vectors = buggy.embed([decoded[name] for name in music])
    gaps = [
        float(np.abs(e.vector - oracle[n].features).max())
        for n, e in zip(music, vectors, strict=True)
    ]
    assert min(gaps) > 100 * TOLERANCE, dict(zip(music, gaps, strict=True))
    wrong = buggy.embed([golden["audio12k"]])[0].vector
    np.testing.assert_allclose(wrong, golden["features_wrong_orientation"], rtol=0, atol=TOLERANCE)


class FrozenStatistics:
    """Fixed channel statistics, as a calibrated model would supply them."""

    def __init__(self, mean: F32, variance: F32, negated: npt.NDArray[np.bool_]) -> None:
        # The builder negates channels with gamma < 0, and their conv output's mean with them.
        signed = np.where(negated, -mean, mean)
        self.mean = tf.constant(signed.reshape(1, 1, 1, -1), tf.float32)
        self.variance = tf.constant(variance.reshape(1, 1, 1, -1), tf.float32)

    def __call__(self, block_input: Any, conv_output: Any) -> tuple[Any, Any]:
        return self.mean, self.variance


def test_the_normalisation_statistics_are_swappable(
    weights: Choi2017Weights,
    decoded: dict[str, F32],
    oracle: dict[str, OracleOutput],
    extractor: Choi2017Extractor,
) -> None:
    # Frozen at brahms' own statistics: brahms comes out as with per-example normalisation,
    # another clip does not, and no clip's vector depends on its batch-mates.
    frozen = oracle["brahms"].statistics

    def statistics(block: ConvBlock) -> ChannelStatistics:
        mean, variance = frozen[block.index]
        return FrozenStatistics(mean, variance, block.negated)

    model = build_choi2017(weights, statistics=statistics)
    clips = np.stack([decoded["brahms"], decoded["libri1"]])
    features = np.asarray(model(tf.constant(clips), training=False)["features"])
    np.testing.assert_allclose(features[0], oracle["brahms"].features, rtol=0, atol=TOLERANCE)
    per_example = extractor.embed([decoded["libri1"]])[0].vector
    assert np.abs(features[1] - per_example).max() > 0.01
    alone = np.asarray(model(tf.constant(clips[1:]), training=False)["features"])[0]
    np.testing.assert_allclose(features[1], alone, rtol=0, atol=1e-5)
