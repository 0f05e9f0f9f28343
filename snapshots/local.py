"""Snapshot folders on local disk: checksums, verification and pruning of old copies.

Reads the files of a snapshot folder (``manifest.json``, ``index.ann``, ``tracks.jsonl``);
deletes old snapshot folders and abandoned partial downloads under the cache folder. Everything
here blocks on disk I/O, so async callers run it in a thread.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from snapshots.errors import SnapshotCorrupt, SnapshotMissing
from snapshots.manifest import MANIFEST_NAME, VERSION_RE, FileEntry, Manifest
from stores.files import digest

logger = logging.getLogger(__name__)

#: Downloads are assembled in folders with this prefix, then renamed into place.
PARTIAL_PREFIX = ".partial-"


def digest_file(path: Path) -> FileEntry:
    """The size and sha256 of a file, as a manifest lists them."""
    sha256, size = digest(path)
    return FileEntry(sha256=sha256, size=size)


def read_manifest(folder: Path) -> Manifest:
    """Parse ``manifest.json`` of a snapshot folder.

    Raises:
        SnapshotMissing: The folder has no manifest.
        SnapshotCorrupt: The manifest does not validate.
    """
    path = folder / MANIFEST_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        msg = f"no {MANIFEST_NAME} in snapshot folder {folder}"
        raise SnapshotMissing(msg) from exc
    return Manifest.from_json(raw, source=str(path))


def verify_folder(folder: Path, expected: Manifest | None = None) -> Manifest:
    """Check every data file of a snapshot folder against its manifest.

    Args:
        folder: A folder holding ``manifest.json`` and the files it lists.
        expected: When given, the folder's manifest must equal it (e.g. the one just fetched
            from the object store).

    Returns:
        The folder's manifest.

    Raises:
        SnapshotMissing: The manifest or a listed file is absent.
        SnapshotCorrupt: The manifest differs from ``expected``, or a file's size or sha256
            differs from the manifest.
    """
    manifest = read_manifest(folder)
    if expected is not None and manifest != expected:
        msg = (
            f"snapshot folder {folder} holds manifest of {manifest.model_version}/"
            f"{manifest.version}, expected {expected.model_version}/{expected.version}"
        )
        raise SnapshotCorrupt(msg)
    for name, want in sorted(manifest.files.items()):
        check_file(folder / name, want, snapshot=manifest.version)
    return manifest


def check_file(path: Path, want: FileEntry, *, snapshot: str) -> None:
    """Raise unless ``path`` has the size and sha256 the manifest gives for it.

    Raises:
        SnapshotMissing: The file is absent.
        SnapshotCorrupt: Its size or sha256 differs.
    """
    if not path.is_file():
        msg = f"snapshot {snapshot}: {path.name} is missing from {path.parent}"
        raise SnapshotMissing(msg)
    # The size check is free and catches truncation before hashing a large file.
    size = path.stat().st_size
    check_digest(path.name, FileEntry(sha256=want.sha256, size=size), want, snapshot=snapshot)
    check_digest(path.name, digest_file(path), want, snapshot=snapshot)


def check_digest(name: str, got: FileEntry, want: FileEntry, *, snapshot: str) -> None:
    """Raise unless a file's size and sha256 (taken as it was written) match the manifest.

    Raises:
        SnapshotCorrupt: Its size or sha256 differs.
    """
    if got.size != want.size:
        msg = f"snapshot {snapshot}: {name} should be {want.size} bytes, found {got.size}"
        raise SnapshotCorrupt(msg)
    if got.sha256 != want.sha256:
        msg = f"snapshot {snapshot}: {name} should have sha256 {want.sha256}, found {got.sha256}"
        raise SnapshotCorrupt(msg)


def prune_local(
    cache_dir: Path,
    keep: int,
    *,
    protect: frozenset[Path] = frozenset(),
    partial_age_s: float = 3600.0,
) -> list[Path]:
    """Delete all but the newest ``keep`` snapshot folders of each model version.

    The layout is ``<cache_dir>/<model_version>/<version>/``. Partial downloads older than
    ``partial_age_s`` are deleted too (younger ones may belong to a running download).

    Args:
        cache_dir: The query node's snapshot cache folder.
        keep: Snapshot folders to keep per model version (at least 1).
        protect: Folders never deleted, e.g. the snapshot being served.
        partial_age_s: Age after which a partial download counts as abandoned.

    Returns:
        The folders deleted.
    """
    if keep < 1:
        msg = f"keep must be at least 1, got {keep}"
        raise ValueError(msg)
    if not cache_dir.is_dir():
        return []
    protected = {p.resolve() for p in protect}
    deleted: list[Path] = []
    now = time.time()
    for model_dir in sorted(p for p in cache_dir.iterdir() if p.is_dir()):
        if model_dir.name.startswith(PARTIAL_PREFIX):
            if now - model_dir.stat().st_mtime > partial_age_s:
                shutil.rmtree(model_dir, ignore_errors=True)
                deleted.append(model_dir)
            continue
        versions = sorted(
            (p for p in model_dir.iterdir() if p.is_dir() and VERSION_RE.match(p.name)),
            key=lambda p: p.name,
            reverse=True,
        )
        for old in versions[keep:]:
            if old.resolve() in protected:
                continue
            # Deleting files a loaded index has mmap'ed is safe on POSIX: the mapping keeps the
            # inode alive until it is unloaded.
            shutil.rmtree(old, ignore_errors=True)
            deleted.append(old)
            logger.info("pruned local snapshot %s", old)
    return deleted
