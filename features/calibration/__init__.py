"""Frozen normalisation statistics of the calibrated Choi 2017 model, and how they are made.

``stats`` reads and writes the versioned statistics file (no TensorFlow, so the indexer and the
query nodes can name the model version); ``estimate`` runs the network over a folder of audio to
recompute it. ``choi2017-calibrated.json`` is the committed file the default model uses.
"""
