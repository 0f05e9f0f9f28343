"""The ``musicnn-msd`` extractor: MSD_musicnn's 200-d penultimate vector averaged over patches.

Reads the pinned checkpoint (``features.musicnn_weights``) and audio (``features.musicnn_audio``);
writes nothing. ``decode`` turns a source into its log-mel patches (at most ``max_patches``,
spread over a long track); ``embed`` runs the patches of all given clips through the network
together, ``patches_per_call`` at a time, and gives each clip the mean of its patches'
penultimate vectors and of their tag probabilities. A patch's outputs depend on that patch
alone, so how patches share batches changes nothing beyond float32 rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from config.settings import ModelSettings
from features.audio import AudioSource
from features.errors import NonFiniteEmbedding
from features.extractor import Embedding, Extractor
from features.musicnn import EMBEDDING_DIM, N_MELS, PATCH_FRAMES, build_musicnn
from features.musicnn_audio import decode_patches
from features.musicnn_weights import default_checkpoint, load_musicnn_variables
from features.runtime import tf
from features.tags import MUSICNN_MSD_TAGS
from features.versions import musicnn_version

F32 = npt.NDArray[np.float32]

#: Patches per network call: the activations of one patch take tens of megabytes.
PATCHES_PER_CALL = 10


class MusicnnExtractor(Extractor):
    """MSD_musicnn (Pons & Serra 2019): 200 floats per track, plain cosine space, 50 MSD tags."""

    dim = EMBEDDING_DIM
    tag_names = MUSICNN_MSD_TAGS

    def __init__(
        self,
        variables: dict[str, F32],
        *,
        max_patches: int = 10,
        batch_size: int = 16,
        decode_workers: int = 2,
        patches_per_call: int = PATCHES_PER_CALL,
    ) -> None:
        """Build the network and its compiled inference function.

        Args:
            variables: The checkpoint's variables (``load_musicnn_variables``).
            max_patches: Most 3-s patches per track, spread evenly over longer tracks.
            batch_size: Clips per :meth:`embed` call in :meth:`extract`.
            decode_workers: Decoding threads in :meth:`extract`.
            patches_per_call: Patches per network call, across clips.
        """
        self.version = musicnn_version(max_patches)
        self.max_patches = max_patches
        self.batch_size = batch_size
        self.decode_workers = decode_workers
        self.patches_per_call = patches_per_call
        self.network = build_musicnn(variables)
        network = self.network

        def infer(patches: object) -> tuple[object, object]:
            outputs = network(patches)
            return outputs["penultimate"], outputs["tags"]

        spec = tf.TensorSpec([None, PATCH_FRAMES, N_MELS], tf.float32)
        self._infer = tf.function(infer, input_signature=[spec])

    def decode(self, source: AudioSource) -> F32:
        """The source's log-mel patches, ``(n, 187, 96)`` (``features.musicnn_audio``)."""
        return decode_patches(source, self.max_patches)

    def run_patches(self, patches: F32) -> tuple[F32, F32]:
        """Penultimate vectors ``(n, 200)`` and tag probabilities ``(n, 50)`` of patches."""
        vectors, tags = [], []
        for start in range(0, patches.shape[0], self.patches_per_call):
            chunk = tf.constant(patches[start : start + self.patches_per_call])
            penultimate, probabilities = self._infer(chunk)
            vectors.append(np.asarray(penultimate))
            tags.append(np.asarray(probabilities))
        return np.concatenate(vectors), np.concatenate(tags)

    def embed(self, clips: Sequence[F32]) -> list[Embedding]:
        """Each clip's mean penultimate vector and mean tag probabilities, in order.

        Raises:
            ValueError: A clip is not an ``(n, 187, 96)`` array of patches.
            NonFiniteEmbedding: A clip's vector or probabilities are not finite.
        """
        for index, clip in enumerate(clips):
            if clip.ndim != 3 or clip.shape[1:] != (PATCH_FRAMES, N_MELS) or not clip.shape[0]:
                msg = f"clip {index} has shape {clip.shape}, expected (n, {PATCH_FRAMES}, {N_MELS})"
                raise ValueError(msg)
        if not clips:
            return []
        vectors, tags = self.run_patches(np.concatenate(clips).astype(np.float32, copy=False))
        bounds = np.cumsum([0] + [clip.shape[0] for clip in clips])
        embeddings, bad = [], []
        for index, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            vector = vectors[start:stop].mean(axis=0, dtype=np.float64).astype(np.float32)
            probabilities = tags[start:stop].mean(axis=0, dtype=np.float64).astype(np.float32)
            if not (np.isfinite(vector).all() and np.isfinite(probabilities).all()):
                bad.append(index)
            embeddings.append(Embedding(vector, probabilities, self.tag_names, self.version))
        if bad:
            msg = f"{self.version}: non-finite output for clips {bad} of {len(clips)}"
            raise NonFiniteEmbedding(msg)
        return embeddings


def load_musicnn(model: ModelSettings, root: Path) -> MusicnnExtractor:
    """The extractor ``model`` configures, from its verified checkpoint."""
    folder = model.musicnn_checkpoint
    if folder is None:
        folder = default_checkpoint()
    elif not folder.is_absolute():
        folder = root / folder
    return MusicnnExtractor(
        load_musicnn_variables(folder),
        max_patches=model.max_patches,
        batch_size=model.batch_size,
        decode_workers=model.decode_workers,
    )
