"""The extractor interface: batching, versioning, per-source errors and the non-finite guard."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from config.settings import Settings
from features.audio import CLIP_SAMPLES, AudioSource
from features.errors import CorruptAudio, EmptyAudio, NonFiniteEmbedding, UnknownModel
from features.extractor import Choi2017Extractor, Embedding, Extractor, load_extractor
from features.tags import CHOI2017_TAGS
from features.weights import Choi2017Weights

from .conftest import Clip

F32 = npt.NDArray[np.float32]
#: Batch shapes change oneDNN's blocking and so float32 rounding (about 1e-6); a statistic that
#: leaked between examples (batch-wide dB maximum or batch-norm statistics) moves it by 1e-2.
ROUNDING = 1e-5
VERSION = "choi2017+sf-soxrhq-12k-29s"


def test_version_and_dimension_travel_with_every_vector(
    extractor: Choi2017Extractor, decoded: dict[str, F32]
) -> None:
    assert isinstance(extractor, Extractor)
    assert extractor.version == VERSION
    assert extractor.dim == 160
    embedding = extractor.embed([decoded["brahms"]])[0]
    assert embedding.version == VERSION
    assert embedding.vector.shape == (160,)
    assert embedding.vector.dtype == np.float32
    assert embedding.tag_probabilities.shape == (50,)
    assert ((embedding.tag_probabilities > 0) & (embedding.tag_probabilities < 1)).all()


def test_a_batch_of_16_equals_16_batches_of_1(
    clips: list[Clip], decoded: dict[str, F32], extractor: Choi2017Extractor
) -> None:
    sixteen = [decoded[clip.name] for clip in clips[:16]]
    assert extractor.batch_size >= 16
    together = np.stack([e.vector for e in extractor.embed(sixteen)])
    alone = np.stack([extractor.embed([clip])[0].vector for clip in sixteen])
    assert np.abs(together - alone).max() <= ROUNDING
    # The clips differ, so equal rows would mean the batch leaked between examples.
    assert np.abs(together[0] - together[1]).max() > 0.01


def test_extract_yields_one_outcome_per_source_in_order(
    clips: list[Clip], decoded: dict[str, F32], extractor: Choi2017Extractor
) -> None:
    good = [clip.path for clip in clips[:5]]
    sources: list[AudioSource] = [good[0], b"", good[1], b"garbage" * 100, *good[2:]]
    outcomes = list(extractor.extract(sources))
    assert len(outcomes) == len(sources)
    assert isinstance(outcomes[1], EmptyAudio)
    assert isinstance(outcomes[3], CorruptAudio)
    embedded = [o for o in outcomes if isinstance(o, Embedding)]
    assert len(embedded) == 5
    expected = extractor.embed([decoded[clip.name] for clip in clips[:5]])
    for got, want in zip(embedded, expected, strict=True):
        np.testing.assert_array_equal(got.vector, want.vector)


def test_extract_overlaps_batches(
    clips: list[Clip], weights: Choi2017Weights, extractor: Choi2017Extractor
) -> None:
    small = Choi2017Extractor(weights, batch_size=3, decode_workers=2)
    paths = [clip.path for clip in clips[:7]]
    outcomes = list(small.extract(paths))
    assert all(isinstance(o, Embedding) for o in outcomes)
    reference = list(extractor.extract(paths))
    for a, b in zip(outcomes, reference, strict=True):
        assert isinstance(a, Embedding) and isinstance(b, Embedding)
        assert np.abs(a.vector - b.vector).max() <= ROUNDING


def test_top_tags_are_the_most_probable(
    extractor: Choi2017Extractor, decoded: dict[str, F32]
) -> None:
    embedding = extractor.embed([decoded["vibeace"]])[0]
    top = embedding.top_tags(5)
    assert len(top) == 5
    probabilities = [p for _, p in top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert probabilities[0] == pytest.approx(float(embedding.tag_probabilities.max()))
    assert all(name in CHOI2017_TAGS for name, _ in top)


def test_non_finite_output_never_leaves_the_extractor(
    weights: Choi2017Weights, decoded: dict[str, F32], clip_by_name: dict[str, Clip]
) -> None:
    bias = weights.dense_bias.copy()
    bias[7] = np.nan
    broken = Choi2017Extractor(dataclasses.replace(weights, dense_bias=bias))
    with pytest.raises(NonFiniteEmbedding, match=r"clips \[0, 1\]"):
        broken.embed([decoded["brahms"], decoded["robin"]])
    outcomes = list(broken.extract([clip_by_name["brahms"].path, b""]))
    assert isinstance(outcomes[0], NonFiniteEmbedding)
    assert isinstance(outcomes[1], EmptyAudio)


def test_embed_rejects_clips_of_the_wrong_length(extractor: Choi2017Extractor) -> None:
    with pytest.raises(ValueError, match="348000"):
        extractor.embed([np.zeros(CLIP_SAMPLES - 1, np.float32)])


def test_load_extractor_refuses_unknown_models(settings: Settings, tmp_path: Path) -> None:
    for version in ("musicnn", "choi2017+librosa-22k-30s"):
        model = settings.model.model_copy(update={"version": version})
        with pytest.raises(UnknownModel, match=version.split("+")[0]):
            load_extractor(model)
