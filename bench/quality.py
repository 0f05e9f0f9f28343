"""Retrieval quality of the embedding models on a labelled folder, beside an MFCC baseline.

Reads ``FOLDER/labels.csv`` (``file,label[,group]``; column names are options), the audio files it
lists, the settings' model group, the weight files and, for ``choi2017-calibrated``, the
calibration file; writes only the report, to stdout. Every model version is compared side by
side (by default every model of ``features.versions.MODELS``; musicnn-msd once per
``--musicnn-patches``, each Choi model once per ``--choi-windows``), each file decoded the way its
extractor decodes it (whole tracks, not a fixed window). For every model and retrieval space it
prints precision@k and mean average precision (``bench.metrics``: angular distance, items of one
group never each other's neighbours) with percentile-bootstrap intervals over queries, the same
for the baseline (mean and standard deviation of 20 MFCCs over the first 30 s at 22.05 kHz mono,
z-scored, cosine), and the chance level; then each model's MAP minus the first model's, paired over
the same queries, each in its own retrieval space (musicnn-msd: plain cosine, ``raw``).
``--shuffled-weights`` adds each Choi model with its conv kernels' values permuted (fixed seed): a
broken control. Mind that random kernels still make
useful spectral features: on the shared clips they group the speech recordings as well as the
real ones do, and only genre retrieval tells them apart.

Run from the repository root, e.g. ``.venv/bin/python bench/quality.py --folder ../shared/audio
--label-column genre --musicnn-patches 10 --musicnn-patches 3 --choi-windows 0 --choi-windows 1``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from bench.metrics import bootstrap, per_query, transform
from config.settings import PROJECT_ROOT, ModelSettings, Settings, load_settings
from features.calibration.stats import MODEL_NAME as CALIBRATED
from features.calibration.stats import read_calibration
from features.errors import FeatureError
from features.extractor import Choi2017Extractor, Extractor, load_extractor
from features.normalization import StatisticsFactory, frozen_statistics, per_example_statistics
from features.versions import MODELS, MUSICNN, model_name_of, model_spec, model_version_of
from features.weights import Choi2017Weights, load_choi2017_weights

F32 = npt.NDArray[np.float32]
DEFAULT_FOLDER = PROJECT_ROOT.parent / "shared" / "audio"
#: Seed of the kernel permutation of ``--shuffled-weights``.
SHUFFLE_SEED = 2017
BASELINE = "mfcc20-mean-std"
BASELINE_RATE = 22050


@dataclass(frozen=True)
class Item:
    """One labelled file."""

    path: Path
    label: str
    group: str


def read_items(folder: Path, label_column: str, group_column: str | None = None) -> list[Item]:
    """The rows of ``folder/labels.csv``; without a group column every item is its own group."""
    with (folder / "labels.csv").open(newline="") as stream:
        reader = csv.DictReader(stream)
        columns = set(reader.fieldnames or ())
        wanted = {"file", label_column} | ({group_column} if group_column else set())
        if not wanted <= columns:
            msg = f"{folder / 'labels.csv'} lacks {sorted(wanted - columns)}; has {sorted(columns)}"
            raise ValueError(msg)
        return [
            Item(
                folder / row["file"],
                row[label_column],
                row[group_column] if group_column else row["file"],
            )
            for row in reader
        ]


def mfcc_vectors(paths: Sequence[Path]) -> F32:
    """The baseline: mean and standard deviation over time of 20 MFCCs (40 values per file).

    The audio is what ``librosa.load(path, sr=22050, mono=True, duration=30)`` returns (channel
    mean, soxr HQ), read with soundfile directly: librosa's fallback reader imports a module that
    warns about its deprecation.
    """
    rows = []
    for path in paths:
        with sf.SoundFile(path) as stream:
            rate = int(stream.samplerate)
            samples = stream.read(frames=30 * rate, dtype="float32", always_2d=True)
        audio = soxr.resample(samples.mean(axis=1), rate, BASELINE_RATE, quality="HQ")
        mfcc = librosa.feature.mfcc(y=audio, sr=BASELINE_RATE, n_mfcc=20)
        rows.append(np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]))
    return np.asarray(rows, dtype=np.float32)


def shuffled_kernels(weights: Choi2017Weights, seed: int = SHUFFLE_SEED) -> Choi2017Weights:
    """The weights with each conv kernel's values randomly permuted: same values, no structure."""
    rng = np.random.default_rng(seed)
    kernels = tuple(rng.permutation(k.reshape(-1)).reshape(k.shape) for k in weights.conv_kernels)
    return dataclasses.replace(weights, conv_kernels=kernels)


def statistics_of(settings: Settings, model: ModelSettings) -> StatisticsFactory:
    """The normalisation statistics the model of ``model`` uses."""
    if model_name_of(model_version_of(model)) == CALIBRATED:
        calibration = read_calibration(settings.path(model.calibration_file))
        return frozen_statistics(calibration.statistics)
    return per_example_statistics


def extractor_for(settings: Settings, model: ModelSettings, *, shuffled: bool = False) -> Extractor:
    """The model ``model`` names (a name or full version), or its shuffled-kernel control."""
    if not shuffled:
        return load_extractor(model)
    weights = shuffled_kernels(load_choi2017_weights(settings.path(model.weights_dir)))
    label = model_name_of(model_version_of(model)) + "-shuffled"
    return Choi2017Extractor(weights, model_name=label, statistics=statistics_of(settings, model))


def embed(extractor: Extractor, paths: Sequence[Path]) -> F32:
    """The vectors of the files, one row each, decoded the extractor's own way.

    Raises:
        FeatureError: A file gives no vector (every labelled file must).
    """
    rows = []
    for outcome in extractor.extract(paths):
        if isinstance(outcome, FeatureError):
            raise outcome
        rows.append(outcome.vector)
    return np.stack(rows)


def retrieval_space(version: str) -> str:
    """The ``bench.metrics`` space the model's snapshots compare in (``cosine`` is ``raw``)."""
    return "raw" if model_spec(version).retrieval_space == "cosine" else "zscore"


def model_runs(
    settings: Settings, names: Sequence[str], patches: Sequence[int], windows: Sequence[int]
) -> list[ModelSettings]:
    """The models to compare: musicnn-msd per patch bound, a Choi model per window count."""
    runs = []
    for name in names:
        model = settings.model.model_copy(update={"version": name})
        if model_spec(name).name == MUSICNN:
            runs += [model.model_copy(update={"max_patches": n}) for n in patches]
        else:
            runs += [model.model_copy(update={"choi_windows": n}) for n in windows]
    return runs


def report_rows(
    name: str,
    vectors: F32,
    items: Sequence[Item],
    spaces: Sequence[str],
    k: int,
    resamples: int,
    reference: str = "zscore",
) -> list[list[str]]:
    """Table rows for one set of vectors in each space.

    Besides each space's scores, the paired difference of its MAP from the ``reference`` space's
    on the same queries: unpaired intervals of 17 clips overlap whatever the spaces do, while a
    difference whose interval excludes 0 is a consistent gain.
    """
    labels, groups = [i.label for i in items], [i.group for i in items]
    base = per_query(transform(vectors, reference), labels, k, groups).average_precision
    rows = []
    for space in spaces:
        scores = per_query(transform(vectors, space), labels, k, groups)
        if scores.queries.size == 0:
            # Every item's label occurs only in its own group: nothing to retrieve.
            rows.append([name, space, "0", "-", "", "-", "", ""])
            continue
        p, ap = (
            bootstrap(scores.precision, resamples),
            bootstrap(scores.average_precision, resamples),
        )
        delta = bootstrap(scores.average_precision - base, resamples)
        rows.append(
            [
                name,
                space,
                str(scores.queries.size),
                f"{p.mean:.3f}",
                f"[{p.low:.3f}, {p.high:.3f}]",
                f"{ap.mean:.3f}",
                f"[{ap.low:.3f}, {ap.high:.3f}]",
                f"{delta.mean:+.3f} [{delta.low:+.3f}, {delta.high:+.3f}]",
            ]
        )
    return rows


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def model_differences(
    embedded: dict[str, tuple[F32, str]], items: Sequence[Item], k: int, resamples: int
) -> list[list[str]]:
    """Each set of vectors' MAP minus the first set's, paired over the same queries."""
    labels, groups = [i.label for i in items], [i.group for i in items]
    scored = {
        name: per_query(transform(vectors, space), labels, k, groups).average_precision
        for name, (vectors, space) in embedded.items()
    }
    first = next(iter(scored.values()))
    rows = []
    for name, values in list(scored.items())[1:]:
        if values.size == 0:
            continue
        delta = bootstrap(values - first, resamples)
        rows.append(
            [name, embedded[name][1], f"{delta.mean:+.3f} [{delta.low:+.3f}, {delta.high:+.3f}]"]
        )
    return rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--folder", type=Path, default=DEFAULT_FOLDER, help="folder with labels.csv"
    )
    parser.add_argument("--label-column", default="label", help="relevance label (default: label)")
    parser.add_argument("--group-column", default=None, help="items never each other's neighbours")
    parser.add_argument(
        "--model", action="append", help="model name or version (repeatable; default: all)"
    )
    parser.add_argument(
        "--musicnn-patches",
        type=int,
        action="append",
        help="musicnn-msd patch bounds to compare (repeatable; default: the setting)",
    )
    parser.add_argument(
        "--choi-windows",
        type=int,
        action="append",
        help="Choi window counts over long tracks, 0: the first 29 s (repeatable; default: the "
        "setting)",
    )
    parser.add_argument(
        "--space", action="append", help="raw, zscore or blocks:w1,...,w5 (repeatable)"
    )
    parser.add_argument(
        "--reference-space", default="zscore", help="space the MAP differences are taken in"
    )
    parser.add_argument("--k", type=int, default=10, help="precision@k (default: 10)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples (default: 1000)")
    parser.add_argument("--shuffled-weights", action="store_true", help="add broken controls")
    parser.add_argument("--no-baseline", action="store_true", help="skip the MFCC baseline")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings()
    spaces = args.space or ["raw", "zscore"]
    reference = args.reference_space
    items = read_items(args.folder, args.label_column, args.group_column)
    paths = [item.path for item in items]
    rows = []
    embedded: dict[str, tuple[F32, str]] = {}
    names = args.model or list(MODELS)
    patches = args.musicnn_patches or [settings.model.max_patches]
    windows = args.choi_windows or [settings.model.choi_windows]
    for model in model_runs(settings, names, patches, windows):
        choi = model_spec(model.version).name != MUSICNN
        for shuffled in [False, True] if args.shuffled_weights and choi else [False]:
            extractor = extractor_for(settings, model, shuffled=shuffled)
            vectors = embed(extractor, paths)
            embedded[extractor.version] = (vectors, retrieval_space(extractor.version))
            rows += report_rows(
                extractor.version, vectors, items, spaces, args.k, args.bootstrap, reference
            )
    if not args.no_baseline:
        baseline = mfcc_vectors([item.path for item in items])
        embedded[BASELINE] = (baseline, "zscore")
        rows += report_rows(
            BASELINE, baseline, items, ["zscore"], args.k, args.bootstrap, reference
        )
    labels, groups = [i.label for i in items], [i.group for i in items]
    # The chance level depends only on the labels; any vectors give the same candidate sets.
    chance = per_query(np.eye(len(items)), labels, args.k, groups).chance
    level = f"{chance.mean():.3f}" if chance.size else "-"
    rows.append(["chance (random ranking)", "-", str(chance.size), level, "", "", "", ""])
    print(
        f"{args.folder}: {len(items)} items, label {args.label_column!r}, "
        f"group {args.group_column!r}, k={args.k}, {args.bootstrap} bootstrap resamples of queries"
    )
    header = ["model", "space", "queries", f"P@{args.k}", "95% CI", "MAP", "95% CI"]
    print_table([*header, f"MAP - MAP({reference}), 95% CI"], rows)
    if len(embedded) > 1:
        first = next(iter(embedded))
        print(
            f"\nMAP minus the MAP of {first}, each model in its own retrieval space (raw: plain "
            "cosine), paired over the same queries:"
        )
        differences = model_differences(embedded, items, args.k, args.bootstrap)
        print_table(["model", "space", "MAP difference, 95% CI"], differences)
    return 0


if __name__ == "__main__":
    sys.exit(main())
