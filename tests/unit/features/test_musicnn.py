"""The MSD_musicnn port against the reference vectors, and the two bugs those checks must catch.

The reference (``models/musicnn/golden_msd_musicnn_shared17.npz`` beside the shared audio
folder) holds, for the 17 shared recordings decoded whole, the mean penultimate vector and tag
probabilities, the patch counts, and brahms' penultimate vector per patch. A faithful port agrees
within 1e-3 per value and cosine >= 0.9999 per file; the package's float16 log (its behaviour
under NumPy 2) and its "first patch's intermediate outputs for every patch" bug must both fail
those same checks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import soxr

from config.settings import Settings
from features.extractor import Embedding, load_extractor
from features.musicnn_audio import decode_patches, spread
from features.musicnn_extractor import MusicnnExtractor
from features.musicnn_frontend import mel_power, to_patches
from features.musicnn_weights import default_checkpoint
from features.tags import MUSICNN_MSD_TAGS

from .conftest import Clip

F32 = npt.NDArray[np.float32]
#: Beside the shared recordings' folder (``SPOTREC_TEST_AUDIO_DIR``, ``../shared/audio``).
REFERENCE = Path("models") / "musicnn" / "golden_msd_musicnn_shared17.npz"
#: Every patch of every reference recording (the longest holds 44).
ALL_PATCHES = 64
VALUE_TOLERANCE = 1e-3
MIN_COSINE = 0.9999


@pytest.fixture(scope="module")
def reference(audio_dir: Path) -> dict[str, F32]:
    with np.load(audio_dir.parent / REFERENCE) as arrays:
        return {key: arrays[key] for key in arrays.files}


@pytest.fixture(scope="module")
def musicnn(settings: Settings) -> MusicnnExtractor:
    model = settings.model.model_copy(update={"version": "musicnn-msd", "max_patches": ALL_PATCHES})
    loaded = load_extractor(model)
    assert isinstance(loaded, MusicnnExtractor)
    return loaded


@pytest.fixture(scope="module")
def patches(
    reference: dict[str, F32], clip_by_name: dict[str, Clip], musicnn: MusicnnExtractor
) -> dict[str, F32]:
    return {
        str(name): musicnn.decode(clip_by_name[Path(str(name)).stem].path)
        for name in reference["names"]
    }


@pytest.fixture(scope="module")
def embedded(patches: dict[str, F32], musicnn: MusicnnExtractor) -> dict[str, Embedding]:
    return dict(zip(patches, musicnn.embed(list(patches.values())), strict=True))


@pytest.fixture(scope="module")
def vectors(embedded: dict[str, Embedding]) -> dict[str, F32]:
    return {name: embedding.vector for name, embedding in embedded.items()}


def cosine(a: F32, b: F32) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def disagreements(vectors: dict[str, F32], reference: dict[str, F32]) -> dict[str, str]:
    """The files whose vector fails the reference's checks, with how far off they are."""
    failing = {}
    for name, expected in zip(reference["names"], reference["penultimate_mean"], strict=True):
        got = vectors[str(name)]
        error, similarity = float(np.max(np.abs(got - expected))), cosine(got, expected)
        if not (error <= VALUE_TOLERANCE and similarity >= MIN_COSINE):
            failing[str(name)] = f"max error {error:.2e}, cosine {similarity:.6f}"
    return failing


def test_every_recording_matches_the_reference_vectors(
    vectors: dict[str, F32], reference: dict[str, F32], patches: dict[str, F32]
) -> None:
    assert [patches[str(n)].shape[0] for n in reference["names"]] == list(reference["patches"])
    assert disagreements(vectors, reference) == {}


def test_tag_probabilities_match_the_reference(
    embedded: dict[str, Embedding], reference: dict[str, F32]
) -> None:
    got = np.stack([embedded[str(name)].tag_probabilities for name in reference["names"]])
    assert np.abs(got - reference["tag_prob_mean"]).max() <= VALUE_TOLERANCE
    assert all(e.tag_names == MUSICNN_MSD_TAGS for e in embedded.values())


def test_each_brahms_patch_matches_its_own_reference(
    patches: dict[str, F32], reference: dict[str, F32], musicnn: MusicnnExtractor
) -> None:
    per_patch, _ = musicnn.run_patches(patches["brahms.ogg"])
    assert np.abs(per_patch - reference["brahms_patch_penultimate"]).max() <= VALUE_TOLERANCE


def test_batching_changes_nothing_beyond_float32_rounding(
    patches: dict[str, F32], vectors: dict[str, F32], musicnn: MusicnnExtractor
) -> None:
    # All 17 clips' patches shared batches of 10 in `vectors`; here some run alone, patch by patch.
    names = ["robin.ogg", "libri1.ogg", "choice.ogg", "asc_frontiers.mp3"]
    together = np.stack([vectors[name] for name in names])
    alone = np.stack([musicnn.embed([patches[name]])[0].vector for name in names])
    calls = musicnn.patches_per_call
    try:
        musicnn.patches_per_call = 1
        single = np.stack([e.vector for e in musicnn.embed([patches[n] for n in names[:2]])])
    finally:
        musicnn.patches_per_call = calls
    scale = np.abs(together).max()
    assert np.abs(together - alone).max() <= 1e-5 * scale
    assert np.abs(together[:2] - single).max() <= 1e-5 * scale


def test_the_float16_log_trap_is_caught(
    clip_by_name: dict[str, Clip], reference: dict[str, F32], musicnn: MusicnnExtractor
) -> None:
    # The package's log under NumPy 2: the float16 mel is never promoted, 10000 x overflows.
    def trapped(name: str) -> F32:
        samples, rate = sf.read(clip_by_name[Path(name).stem].path, dtype="float32", always_2d=True)
        audio = soxr.resample(samples.mean(axis=1), rate, 16_000, quality="HQ")
        mel16 = mel_power(audio).astype(np.float16)
        with np.errstate(over="ignore"):
            log16 = np.log10(np.float16(10_000) * mel16 + np.float16(1))
        return to_patches(log16.astype(np.float32))

    # Five of the reference files, music and speech; the rest keep their faithful vectors.
    names = ["asc_frontiers.mp3", "choice.ogg", "libri1.ogg", "trumpet.ogg", "vibeace.ogg"]
    vectors = {
        str(n): v for n, v in zip(reference["names"], reference["penultimate_mean"], strict=True)
    }
    for name in names:
        clip = trapped(name)
        # Infinite inputs make NaN vectors, which the extractor refuses; the package kept them.
        penultimate, _ = musicnn.run_patches(np.nan_to_num(clip, posinf=65504.0))
        vectors[name] = penultimate.mean(axis=0)
    assert set(disagreements(vectors, reference)) == set(names)


def test_first_patch_outputs_for_every_patch_are_caught(
    patches: dict[str, F32], reference: dict[str, F32], musicnn: MusicnnExtractor
) -> None:
    per_patch, _ = musicnn.run_patches(patches["brahms.ogg"])
    copied = np.repeat(per_patch[:1], per_patch.shape[0], axis=0)
    expected = reference["brahms_patch_penultimate"]
    assert np.abs(copied - expected).max() > 100 * VALUE_TOLERANCE
    vectors = {
        str(n): v for n, v in zip(reference["names"], reference["penultimate_mean"], strict=True)
    }
    vectors["brahms.ogg"] = copied.mean(axis=0)
    assert set(disagreements(vectors, reference)) == {"brahms.ogg"}


def test_patches_read_by_seeking_are_the_whole_tracks_patches(
    clip_by_name: dict[str, Clip], reference: dict[str, F32], musicnn: MusicnnExtractor
) -> None:
    brahms = clip_by_name["brahms"].path
    chosen = spread(15, 4)
    assert chosen == [0, 5, 9, 14]
    per_patch, _ = musicnn.run_patches(decode_patches(brahms, 4))
    expected = reference["brahms_patch_penultimate"][chosen]
    assert np.abs(per_patch - expected).max() <= VALUE_TOLERANCE


def test_tag_names_are_the_wheels_msd_labels() -> None:
    configuration = default_checkpoint().parent / "configuration.py"
    tree = ast.parse(configuration.read_text(encoding="utf-8"))
    labels = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "MSD_LABELS" for t in node.targets)
    )
    assert list(MUSICNN_MSD_TAGS) == labels
