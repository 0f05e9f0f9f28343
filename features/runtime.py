"""Import TensorFlow and Keras once, quietly, and size TensorFlow's thread pools.

Reads nothing. Writes ``TF_CPP_MIN_LOG_LEVEL`` into the process environment (only if unset) and
nothing else. Every module of ``features`` gets ``tf`` and ``keras`` from here, so the quieting
happens before the first import wherever the import comes from.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    # TensorFlow's C++ runtime prints its oneDNN and CPU-feature banners straight to file
    # descriptor 2 while it loads, before absl logging is configured, so neither Python's
    # warnings machinery nor TF_CPP_MIN_LOG_LEVEL reaches them.
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# Must precede the import: TensorFlow reads it once, when its C++ logging starts.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
with _stderr_silenced():
    import keras
    import tensorflow as tf

_configured: int | None = None


def configure_threads(threads: int) -> None:
    """Size TensorFlow's CPU thread pools, once per process.

    One inter-op thread suffices because the graph is a chain; ``threads`` intra-op threads
    parallelise each convolution. TensorFlow fixes its pools when it runs the first op, so later
    calls with a different value are logged and ignored.

    Args:
        threads: Intra-op threads; 0 lets TensorFlow use every core.
    """
    global _configured
    if _configured == threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        logger.warning(
            "TensorFlow already started with %s intra-op threads; keeping them, not %d",
            tf.config.threading.get_intra_op_parallelism_threads() or "all",
            threads,
        )
        return
    _configured = threads


__all__ = ["configure_threads", "keras", "tf"]
