"""Audio -> feature vectors: the embedding models and everything they need.

Modules, along the data path: ``audio`` (decode to 12 kHz mono), ``frontend`` (log-mel),
``normalization`` and ``choi2017`` (the network), ``calibration`` (the frozen normalisation
statistics of ``choi2017-calibrated`` and how to recompute them), ``weights`` (pinned weight
file), ``tags`` (tag names), ``extractor`` (the interface other packages use:
``load_extractor(settings.model)``), ``versions`` (model versions, without TensorFlow),
``errors`` (the exception tree), ``runtime`` (TensorFlow import and threads). The
``musicnn-msd`` model: ``musicnn_weights`` (the pinned checkpoint), ``musicnn_audio`` (decode to
16 kHz, patches spread over long tracks), ``musicnn_frontend`` (log-mel patches), ``musicnn``
(the network), ``musicnn_extractor``. Importing this
package imports nothing heavy; TensorFlow loads with ``features.extractor``.
"""
