"""Model versions by name, importable without TensorFlow (query nodes and the indexer need them).

Reads nothing; a version string names the model and the preprocessing, e.g.
``choi2017+sf-soxrhq-12k-29s``. The extractor registry builds its versions from this table.
"""

from __future__ import annotations

from config.settings import ModelSettings
from features.errors import UnknownModel

#: The audio decode path every current model shares (see ``features.audio``).
DECODE_TAG = "sf-soxrhq-12k-29s"

#: Model name -> full version string.
MODEL_VERSIONS: dict[str, str] = {
    "choi2017": f"choi2017+{DECODE_TAG}",
}


def model_version_of(model: ModelSettings) -> str:
    """The full version the settings select (``SPOTREC_MODEL_VERSION`` is a name or a version).

    Raises:
        UnknownModel: No model has that name, or the full version does not match it.
    """
    name = model.version.partition("+")[0]
    version = MODEL_VERSIONS.get(name)
    if version is None or (model.version != name and model.version != version):
        msg = (
            f"SPOTREC_MODEL_VERSION={model.version!r} is not a known model; "
            f"known: {', '.join(sorted(MODEL_VERSIONS.values()))}"
        )
        raise UnknownModel(msg)
    return version
