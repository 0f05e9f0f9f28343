"""Files on local disk: their sha256 and size, read in chunks.

Reads the file it is given; writes nothing. Weights, audio files and snapshot files are all
checked or identified this way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Read size: bounded memory for files of any length.
CHUNK = 1 << 20


def digest(path: Path) -> tuple[str, int]:
    """The hex sha256 and the size in bytes of a file's content."""
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size
