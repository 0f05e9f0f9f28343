"""Audio -> feature vectors: the embedding models and everything they need.

Modules, along the data path: ``audio`` (decode to 12 kHz mono), ``frontend`` (log-mel),
``normalization`` and ``choi2017`` (the network), ``weights`` (pinned weight file), ``tags`` (tag
names), ``extractor`` (the interface other packages use: ``load_extractor(settings.model)``),
``errors`` (the exception tree), ``runtime`` (TensorFlow import and threads). Importing this
package imports nothing heavy; TensorFlow loads with ``features.extractor``.
"""
