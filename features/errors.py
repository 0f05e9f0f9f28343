"""The feature extractor's exception tree; reads and writes nothing.

::

    FeatureError                     retriable
    ├── AudioError                   False   the input cannot give a vector
    │   ├── UnreadableAudio          False   the file cannot be opened
    │   ├── EmptyAudio               False   no bytes, or no samples
    │   ├── SilentAudio              False   the analysed window is digital silence
    │   ├── TruncatedAudio           False   the stream ends before its container says
    │   └── CorruptAudio             False   undecodable, unknown format, non-finite samples
    ├── WeightsError                 False   the model cannot start
    │   ├── WeightsMissing           False   a weight file or dataset is absent
    │   ├── WeightsCorrupt           False   a weight file fails its sha256 or shape check
    │   └── WeightsUnavailable       True    the upstream download failed
    ├── CalibrationError             False   a calibrated model's statistics cannot be used
    │   ├── CalibrationMissing       False   the statistics file is absent
    │   └── CalibrationCorrupt       False   malformed, altered, or for other weights
    ├── UnknownModel                 False   no extractor is registered under that version
    └── NonFiniteEmbedding           False   the network produced NaN or infinity

Callers branch on ``retriable``, not on the type: a retriable error may succeed if the same call
is repeated later, anything else will fail the same way every time.
"""

from __future__ import annotations


class FeatureError(Exception):
    """Base of every error the feature extractor raises."""

    retriable: bool = False


class AudioError(FeatureError):
    """The audio cannot be turned into a feature vector."""


class UnreadableAudio(AudioError):
    """The file does not exist or cannot be opened; nothing was decoded."""


class EmptyAudio(AudioError):
    """The input has no bytes, or the container holds no samples."""


class SilentAudio(AudioError):
    """Every sample of the analysed window is below the front end's dynamic range."""


class TruncatedAudio(AudioError):
    """The stream stops before the length its container declares."""


class CorruptAudio(AudioError):
    """The bytes are not a readable mp3, ogg, wav or flac stream, or hold non-finite samples."""


class WeightsError(FeatureError):
    """The model's weights cannot be used."""


class WeightsMissing(WeightsError):
    """A weight file, or a dataset inside it, is absent."""


class WeightsCorrupt(WeightsError):
    """A weight file's sha256 or a dataset's shape differs from the pinned value."""


class WeightsUnavailable(WeightsError):
    """Downloading the weights failed; a network error may clear on a later attempt."""

    retriable = True


class CalibrationError(FeatureError):
    """The frozen normalisation statistics of a calibrated model cannot be used."""


class CalibrationMissing(CalibrationError):
    """The calibration file does not exist."""


class CalibrationCorrupt(CalibrationError):
    """The calibration file is malformed, fails its content hash, or names other weights."""


class UnknownModel(FeatureError):
    """No extractor is registered under the requested model version."""


class NonFiniteEmbedding(FeatureError):
    """The network produced NaN or infinity; such a vector never leaves the extractor."""
