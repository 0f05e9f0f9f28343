"""The extractor interface, the Choi 2017 extractor and the registry that builds one from settings.

Reads the configured weight file (through ``features.weights``), the calibration file of
``choi2017-calibrated`` (through ``features.calibration.stats``) and audio (through
``features.audio``); writes nothing. Callers depend only on :class:`Extractor`: a version string
naming model and preprocessing, the vector dimension, and batched ``embed``/``extract``. Every
:class:`Embedding` carries that version, so vectors of different models never mix unnoticed.
A new model adds its version to ``features.versions`` and its loader to :data:`_LOADERS`;
nothing that consumes vectors changes. Three models are registered: ``choi2017`` (faithful,
per-example normalisation), ``choi2017-calibrated`` (frozen statistics) and
``musicnn-msd`` (``features.musicnn_extractor``).
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from config.settings import PROJECT_ROOT, ModelSettings
from features.audio import CLIP_SAMPLES, AudioSource, decode, decode_windows
from features.calibration.stats import read_calibration
from features.choi2017 import FEATURE_DIM, build_choi2017
from features.errors import AudioError, CalibrationCorrupt, NonFiniteEmbedding, UnknownModel
from features.normalization import StatisticsFactory, frozen_statistics, per_example_statistics
from features.runtime import configure_threads, tf
from features.tags import CHOI2017_TAGS
from features.versions import (
    FAITHFUL,
    calibrated_version,
    choi_decode_tag,
    model_name_of,
    model_version_of,
    pinned_windows,
)
from features.weights import CHOI2017_FILE, PINNED_SHA256, Choi2017Weights, load_choi2017_weights

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Embedding:
    """One clip's feature vector and tag probabilities, stamped with the extractor's version.

    Attributes:
        vector: The feature vector, float32, finite.
        tag_probabilities: One probability per tag, in ``tag_names`` order.
        tag_names: The names of the tags.
        version: Model plus preprocessing, e.g. ``choi2017+sf-soxrhq-12k-29s``.
    """

    vector: F32
    tag_probabilities: F32
    tag_names: tuple[str, ...]
    version: str

    def top_tags(self, count: int = 5) -> list[tuple[str, float]]:
        """The ``count`` most probable tags with their probabilities, most probable first."""
        order = np.argsort(-self.tag_probabilities, kind="stable")[:count]
        return [(self.tag_names[i], float(self.tag_probabilities[i])) for i in order]


#: What :meth:`Extractor.extract` yields per source: a vector, or why there is none.
Outcome = Embedding | AudioError | NonFiniteEmbedding


class Extractor(ABC):
    """Turns audio into fixed-length vectors; one implementation per model version."""

    #: Model and preprocessing, e.g. ``choi2017+sf-soxrhq-12k-29s``; stored with every vector.
    version: str
    #: Length of every vector.
    dim: int
    #: Names of the tag probabilities, in output order.
    tag_names: tuple[str, ...]
    #: Clips per network call.
    batch_size: int
    #: Threads that decode while the network runs, in :meth:`extract`.
    decode_workers: int

    @abstractmethod
    def decode(self, source: AudioSource) -> F32:
        """Decode one source into this model's input; raises :class:`AudioError`."""

    @abstractmethod
    def embed(self, clips: Sequence[F32]) -> list[Embedding]:
        """Run decoded clips through the network in batches, one embedding per clip, in order.

        Raises:
            NonFiniteEmbedding: A vector or probability came out NaN or infinite.
        """

    def extract(self, sources: Iterable[AudioSource]) -> Iterator[Outcome]:
        """Decode and embed sources, yielding one outcome per source, in order.

        Sources decode on ``decode_workers`` threads, up to ``batch_size + 2 * decode_workers``
        ahead, so decoding continues while the network runs on a batch of ``batch_size``. A
        source that cannot be decoded yields its :class:`AudioError` in its place, a clip whose
        output is not finite its :class:`NonFiniteEmbedding`; the others are unaffected.
        """
        remaining = iter(sources)
        ahead = self.batch_size + 2 * self.decode_workers
        with ThreadPoolExecutor(self.decode_workers, thread_name_prefix="decode") as pool:
            pending: deque[Future[F32]] = deque()

            def submit_ahead() -> None:
                for source in itertools.islice(remaining, ahead - len(pending)):
                    pending.append(pool.submit(self.decode, source))

            submit_ahead()
            while pending:
                batch = [pending.popleft() for _ in range(min(self.batch_size, len(pending)))]
                submit_ahead()
                decoded = [_decoded(future) for future in batch]
                clips = [item for item in decoded if not isinstance(item, AudioError)]
                embedded = iter(self._embed_each(clips))
                for item in decoded:
                    yield item if isinstance(item, AudioError) else next(embedded)

    def _embed_each(self, clips: Sequence[F32]) -> list[Embedding | NonFiniteEmbedding]:
        if not clips:
            return []
        try:
            return list(self.embed(clips))
        except NonFiniteEmbedding:
            # Vectors do not depend on batch-mates, so one at a time isolates the bad clip.
            return [_embedded_alone(self, clip) for clip in clips]


def _embedded_alone(extractor: Extractor, clip: F32) -> Embedding | NonFiniteEmbedding:
    try:
        return extractor.embed([clip])[0]
    except NonFiniteEmbedding as exc:
        return exc


def _decoded(future: Future[F32]) -> F32 | AudioError:
    try:
        return future.result()
    except AudioError as exc:
        return exc


class Choi2017Extractor(Extractor):
    """Choi et al. 2017 features: 160 floats from the Theano weights, normalised by a strategy."""

    dim = FEATURE_DIM
    tag_names = CHOI2017_TAGS

    def __init__(
        self,
        weights: Choi2017Weights,
        *,
        batch_size: int = 16,
        decode_workers: int = 2,
        model_name: str = FAITHFUL,
        statistics: StatisticsFactory = per_example_statistics,
        windows: int = 0,
    ) -> None:
        """Build the network and its compiled inference function.

        Args:
            weights: The arrays of the weight file.
            batch_size: Clips per network call.
            decode_workers: Decoding threads in :meth:`extract`.
            model_name: The model part of :attr:`version`.
            statistics: The normalisation statistics; per example (faithful) by default.
            windows: 0: the first 29 s of every track; N: N windows spread over a track longer
                than a preview, their vectors averaged.
        """
        self.version = f"{model_name}+{choi_decode_tag(windows)}"
        self.windows = windows
        self.batch_size = batch_size
        self.decode_workers = decode_workers
        self.model = build_choi2017(weights, statistics=statistics)
        model = self.model

        def infer(audio: object) -> tuple[object, object]:
            outputs = model(audio, training=False)
            return outputs["features"], outputs["tags"]

        # One trace serves every batch size: the batch axis is left unknown.
        spec = tf.TensorSpec([None, CLIP_SAMPLES], tf.float32)
        self._infer = tf.function(infer, input_signature=[spec])

    def decode(self, source: AudioSource) -> F32:
        """Decode with the pinned path of ``features.audio`` (windows spread when asked)."""
        return decode(source) if self.windows == 0 else decode_windows(source, self.windows)

    def embed(self, clips: Sequence[F32]) -> list[Embedding]:
        """Run decoded clips through the network, ``batch_size`` windows at a time.

        A clip is one 348,000-sample window, or ``(n, 348000)`` windows whose vectors and tag
        probabilities are averaged.
        """
        windows: list[F32] = []
        owners: list[int] = []
        for index, clip in enumerate(clips):
            rows = clip[np.newaxis] if clip.ndim == 1 else clip
            if rows.ndim != 2 or rows.shape[1] != CLIP_SAMPLES or not rows.shape[0]:
                msg = f"clip {index} has shape {clip.shape}, expected ({CLIP_SAMPLES},)"
                raise ValueError(msg)
            windows.extend(rows)
            owners.extend([index] * rows.shape[0])
        outputs: list[tuple[F32, F32]] = []
        for start in range(0, len(windows), self.batch_size):
            batch = np.stack(windows[start : start + self.batch_size]).astype(
                np.float32, copy=False
            )
            vectors, tags = (np.asarray(t) for t in self._infer(tf.constant(batch)))
            finite = np.isfinite(vectors).all(axis=1) & np.isfinite(tags).all(axis=1)
            if not finite.all():
                bad = sorted({owners[start + int(i)] for i in np.flatnonzero(~finite)})
                msg = f"{self.version}: non-finite output for clips {bad} of {len(clips)}"
                raise NonFiniteEmbedding(msg)
            outputs.extend(zip(vectors, tags, strict=True))
        embeddings: list[Embedding] = []
        counts = np.bincount(owners, minlength=len(clips))
        cursor = 0
        for count in counts:
            mine = outputs[cursor : cursor + count]
            cursor += count
            vector, probabilities = mine[0] if count == 1 else (_mean(mine, 0), _mean(mine, 1))
            embeddings.append(Embedding(vector, probabilities, self.tag_names, self.version))
        return embeddings


def _mean(outputs: Sequence[tuple[F32, F32]], part: int) -> F32:
    """The mean of one part (0: vectors, 1: tag probabilities) of several windows' outputs."""
    stacked = np.stack([output[part] for output in outputs]).astype(np.float64)
    return np.asarray(stacked.mean(axis=0), dtype=np.float32)


def _resolve(path: Path, root: Path) -> Path:
    return path if path.is_absolute() else root / path


def _load_choi2017(model: ModelSettings, root: Path) -> Extractor:
    weights = load_choi2017_weights(_resolve(model.weights_dir, root))
    return Choi2017Extractor(
        weights,
        batch_size=model.batch_size,
        decode_workers=model.decode_workers,
        windows=model.choi_windows,
    )


def _load_choi2017_calibrated(model: ModelSettings, root: Path) -> Extractor:
    path = _resolve(model.calibration_file, root)
    calibration = read_calibration(path)
    if calibration.weights_sha256 != PINNED_SHA256[CHOI2017_FILE]:
        msg = (
            f"{path} was estimated for weights with sha256 {calibration.weights_sha256}, not "
            f"the pinned {CHOI2017_FILE}; run `spotrec calibrate FOLDER --out {path}`"
        )
        raise CalibrationCorrupt(msg)
    weights = load_choi2017_weights(_resolve(model.weights_dir, root))
    return Choi2017Extractor(
        weights,
        batch_size=model.batch_size,
        decode_workers=model.decode_workers,
        model_name=calibrated_version(calibration.content_sha256).partition("+")[0],
        statistics=frozen_statistics(calibration.statistics),
        windows=model.choi_windows,
    )


def _load_musicnn(model: ModelSettings, root: Path) -> Extractor:
    # Imported here: that module builds on this one's interface.
    from features.musicnn_extractor import load_musicnn

    return load_musicnn(model, root)


#: Model name -> loader; ``features.versions.MODELS`` holds their version strings.
_LOADERS: dict[str, Callable[[ModelSettings, Path], Extractor]] = {
    "choi2017": _load_choi2017,
    "choi2017-calibrated": _load_choi2017_calibrated,
    "musicnn-msd": _load_musicnn,
}


def load_extractor(model: ModelSettings, *, root: Path = PROJECT_ROOT) -> Extractor:
    """Build the extractor the settings name, after verifying its weights.

    Args:
        model: ``settings.model``. ``version`` is a model name (``choi2017-calibrated``,
            ``choi2017``) or a full version (``choi2017+sf-soxrhq-12k-29s``), which must then
            match exactly.
        root: Directory that relative paths in ``model`` are resolved against.

    Returns:
        A ready extractor whose ``version`` is the one ``features.versions`` lists.

    Raises:
        UnknownModel: No extractor has that name or version.
        WeightsMissing: The weight file is absent; run ``spotrec weights fetch``.
        WeightsCorrupt: The weight file fails its sha256 check.
        CalibrationError: The calibrated model's statistics file is missing, altered, or was
            estimated for other weights.
    """
    model = pinned_windows(model)
    version = model_version_of(model, root=root)
    configure_threads(model.threads)
    loader = _LOADERS.get(model_name_of(version))
    if loader is None:
        msg = f"{version!r} has no extractor in this build"
        raise UnknownModel(msg)
    extractor = loader(model, root)
    if extractor.version != version:
        msg = f"the loader of {version!r} built {extractor.version!r}"
        raise UnknownModel(msg)
    return extractor
