"""Snapshots in the object store: publish, list, find the newest, download and prune.

Reads and writes ``<prefix>/<model_version>/<version>/{index.ann,tracks.jsonl,manifest.json}``
in the bucket; writes verified copies to ``<cache_dir>/<model_version>/<version>/`` on local
disk. The manifest is uploaded last and deleted first, so a snapshot is visible exactly while
all its files are in place.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import shutil
from collections import defaultdict
from pathlib import Path

from snapshots.builder import BuiltSnapshot
from snapshots.errors import SnapshotCorrupt, SnapshotError, SnapshotMissing
from snapshots.local import PARTIAL_PREFIX, check_digest, verify_folder
from snapshots.manifest import (
    MANIFEST_NAME,
    MODEL_VERSION_RE,
    TAGS_NAME,
    TRACKS_NAME,
    VERSION_RE,
    FileEntry,
    Manifest,
)
from stores.objects import ObjectNotFound, ObjectStore

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "snapshots"
_CONTENT_TYPES = {
    TRACKS_NAME: "application/x-ndjson",
    TAGS_NAME: "application/json",
    MANIFEST_NAME: "application/json",
}
_BINARY = "application/octet-stream"
_PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


class SnapshotStore:
    """Snapshots under one key prefix of the object store; the store must be started."""

    def __init__(self, objects: ObjectStore, prefix: str = DEFAULT_PREFIX) -> None:
        if not _PREFIX_RE.match(prefix):
            msg = f"prefix must be slash-separated plain names, got {prefix!r}"
            raise ValueError(msg)
        self.objects = objects
        self.prefix = prefix

    def manifest_key(self, model_version: str, version: str) -> str:
        """The key of a snapshot's manifest (what ``index-updated`` carries)."""
        return f"{self._folder(model_version, version)}{MANIFEST_NAME}"

    def parse_manifest_key(self, key: str) -> tuple[str, str]:
        """The model version and version named by a manifest key.

        Raises:
            SnapshotMissing: The key is not a manifest key under this store's prefix (it may come
                from a message, so it is checked before it names any local folder).
        """
        head, _, rest = key.partition(f"{self.prefix}/")
        parts = rest.split("/")
        if (
            head
            or len(parts) != 3
            or parts[2] != MANIFEST_NAME
            or not MODEL_VERSION_RE.match(parts[0])
            or not VERSION_RE.match(parts[1])
        ):
            msg = (
                f"{key!r} is not a manifest key of the form "
                f"{self.prefix}/<model_version>/<version>/{MANIFEST_NAME}"
            )
            raise SnapshotMissing(msg)
        return parts[0], parts[1]

    async def publish(self, built: BuiltSnapshot) -> str:
        """Upload a built snapshot: its data files first, the manifest last.

        Publishing the same build again is a no-op; the files of a published version are never
        replaced.

        Returns:
            The manifest key.

        Raises:
            SnapshotCorrupt: A local file no longer matches the manifest.
            SnapshotError: Another snapshot with the same version is already published.
        """
        manifest = built.manifest
        key = self.manifest_key(manifest.model_version, manifest.version)
        existing = await self._manifest_or_none(key)
        if existing is not None:
            if existing == manifest:
                return key
            msg = f"{key} already holds a different snapshot; versions are immutable"
            raise SnapshotError(msg)
        folder = self._folder(manifest.model_version, manifest.version)
        for name, want in sorted(manifest.files.items()):
            # Streamed part by part and hashed on the way: what was sent is what was checked.
            got = await self.objects.put_file(
                folder + name, built.folder / name, _CONTENT_TYPES.get(name, _BINARY)
            )
            if got != (want.sha256, want.size):
                await self.objects.delete(folder + name)
                msg = (
                    f"snapshot {manifest.version}: local {name} changed since it was built "
                    f"(expected sha256 {want.sha256}, {want.size} bytes)"
                )
                raise SnapshotCorrupt(msg)
        # Last: until this put completes, listings do not show the version at all.
        await self.objects.put(key, manifest.to_json(), content_type=_CONTENT_TYPES[MANIFEST_NAME])
        logger.info(
            "published snapshot %s (%d tracks) at %s", manifest.version, manifest.count, key
        )
        return key

    async def versions(self, model_version: str) -> list[str]:
        """The published (manifest present) versions of a model version, newest first."""
        return _published(await self._listing(model_version))

    async def manifest(self, key: str) -> Manifest:
        """Fetch and validate the manifest stored under ``key``.

        Raises:
            SnapshotMissing: No manifest under ``key``.
            SnapshotCorrupt: It does not validate or names another snapshot than its key.
        """
        found = await self._manifest_or_none(key)
        if found is None:
            msg = f"no snapshot manifest at {key}"
            raise SnapshotMissing(msg)
        return found

    async def latest(self, model_version: str, *, complete: bool = False) -> Manifest | None:
        """The newest published snapshot with a valid manifest, or ``None`` if there is none.

        An invalid newest manifest is logged and passed over, so one bad publish neither stops
        query nodes from starting nor the indexer from building a replacement.

        Args:
            model_version: The model version.
            complete: Pass over snapshots built while a reindex to this version was under way.
        """
        return await self._newest(model_version, await self.versions(model_version), complete)

    async def _newest(
        self, model_version: str, versions: list[str], complete: bool
    ) -> Manifest | None:
        # ``versions`` newest first, as listed.
        for version in versions:
            try:
                manifest = await self.manifest(self.manifest_key(model_version, version))
            except SnapshotError as exc:  # corrupt, or pruned since the listing
                logger.warning("skipping snapshot %s/%s: %s", model_version, version, exc)
                continue
            if manifest.complete or not complete:
                return manifest
        return None

    async def model_versions(self) -> list[str]:
        """The model versions that have objects under the prefix, sorted."""
        found: set[str] = set()
        base = f"{self.prefix}/"
        async for key in self.objects.keys(prefix=base):
            model_version, _, rest = key[len(base) :].partition("/")
            if rest and MODEL_VERSION_RE.match(model_version):
                found.add(model_version)
        return sorted(found)

    async def download(self, manifest_key: str, cache_dir: Path) -> Path:
        """Download a snapshot, verify every file, and move it into ``cache_dir``.

        The files are assembled in a partial folder beside the target and renamed into
        ``<cache_dir>/<model_version>/<version>`` only once all of them match the manifest; a
        verified copy already there is reused.

        Returns:
            The local snapshot folder.

        Raises:
            SnapshotMissing: The manifest or one of its files is not in the store.
            SnapshotCorrupt: The manifest is invalid, or a file's size or sha256 does not match.
        """
        model_version, version = self.parse_manifest_key(manifest_key)
        manifest = await self.manifest(manifest_key)
        target = cache_dir / model_version / version
        reused = await asyncio.to_thread(_reuse, target, manifest)
        if reused is not None:
            return reused
        partial = await asyncio.to_thread(_new_partial, cache_dir, version)
        try:
            folder = self._folder(model_version, version)
            for name, want in sorted(manifest.files.items()):
                try:
                    # Streamed to disk and hashed on the way, never whole in memory.
                    sha256, size = await self.objects.get_file(folder + name, partial / name)
                except ObjectNotFound as exc:
                    msg = f"snapshot {version}: {folder + name} is listed but not stored"
                    raise SnapshotMissing(msg) from exc
                check_digest(name, FileEntry(sha256, size), want, snapshot=version)
            await asyncio.to_thread((partial / MANIFEST_NAME).write_bytes, manifest.to_json())
            await asyncio.to_thread(_install, partial, target, manifest)
        finally:
            await asyncio.to_thread(shutil.rmtree, partial, True)
        logger.info("downloaded snapshot %s to %s", version, target)
        return target

    async def prune_remote(self, model_version: str, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` published snapshots, and abandoned uploads.

        The newest complete snapshot (see :attr:`Manifest.complete`) is kept as well, however
        many incomplete ones a reindex published after it: query nodes may be serving it. An
        upload is abandoned when it has no manifest and is older than the newest published
        snapshot. Each old snapshot loses its manifest before its data files, so it disappears
        from listings before anything it needs is gone.

        Returns:
            The versions deleted, oldest first.
        """
        if keep < 1:
            msg = f"keep must be at least 1, got {keep}"
            raise ValueError(msg)
        listing = await self._listing(model_version)
        published = _published(listing)
        if not published:
            return []
        doomed = set(published[keep:])
        if doomed:
            newest_complete = await self._newest(model_version, published, complete=True)
            if newest_complete is not None:
                doomed.discard(newest_complete.version)
        doomed |= {v for v, n in listing.items() if MANIFEST_NAME not in n and v < published[0]}
        for version in sorted(doomed):
            folder = self._folder(model_version, version)
            names = sorted(listing[version], key=lambda n: n != MANIFEST_NAME)
            for name in names:
                await self.objects.delete(folder + name)
            logger.info("pruned remote snapshot %s/%s", model_version, version)
        return sorted(doomed)

    def _folder(self, model_version: str, version: str) -> str:
        if not MODEL_VERSION_RE.match(model_version) or not VERSION_RE.match(version):
            msg = f"not a snapshot name: model version {model_version!r}, version {version!r}"
            raise ValueError(msg)
        return f"{self.prefix}/{model_version}/{version}/"

    async def _listing(self, model_version: str) -> dict[str, set[str]]:
        # One listing of the model version's prefix, grouped by version folder.
        if not MODEL_VERSION_RE.match(model_version):
            msg = f"not a model version: {model_version!r}"
            raise ValueError(msg)
        base = f"{self.prefix}/{model_version}/"
        grouped: dict[str, set[str]] = defaultdict(set)
        async for key in self.objects.keys(prefix=base):
            version, _, name = key[len(base) :].partition("/")
            if VERSION_RE.match(version) and name and "/" not in name:
                grouped[version].add(name)
        return dict(grouped)

    async def _manifest_or_none(self, key: str) -> Manifest | None:
        model_version, version = self.parse_manifest_key(key)
        try:
            raw = await self.objects.get(key)
        except ObjectNotFound:
            return None
        manifest = Manifest.from_json(raw, source=key)
        if (manifest.model_version, manifest.version) != (model_version, version):
            msg = (
                f"{key} describes snapshot {manifest.model_version}/{manifest.version}, "
                "not the one its key names"
            )
            raise SnapshotCorrupt(msg)
        return manifest


def _published(listing: dict[str, set[str]]) -> list[str]:
    """The versions of a listing whose manifest is in place, newest first."""
    return sorted((v for v, names in listing.items() if MANIFEST_NAME in names), reverse=True)


async def to_serve(
    objects: ObjectStore, model_version: str, *, prefix: str = DEFAULT_PREFIX
) -> str | None:
    """The manifest key a query node of ``model_version`` should serve, or ``None``.

    The newest complete snapshot of ``model_version``; until one exists (a reindex to a new
    model is under way), the newest complete snapshot of any other model version, so the old
    model keeps serving.
    """
    store = SnapshotStore(objects, prefix)
    chosen = await store.latest(model_version, complete=True)
    if chosen is None:
        for other in await store.model_versions():
            if other != model_version:
                found = await store.latest(other, complete=True)
                if found is not None and (chosen is None or found.version > chosen.version):
                    chosen = found
    return None if chosen is None else store.manifest_key(chosen.model_version, chosen.version)


async def download(
    objects: ObjectStore, manifest_key: str, cache_dir: Path, *, prefix: str = DEFAULT_PREFIX
) -> Path:
    """Download and verify a snapshot into ``cache_dir``; see :meth:`SnapshotStore.download`."""
    return await SnapshotStore(objects, prefix).download(manifest_key, cache_dir)


def _reuse(target: Path, manifest: Manifest) -> Path | None:
    # A copy left by an earlier download is reused only if it still checks out.
    if not target.exists():
        return None
    try:
        verify_folder(target, manifest)
    except SnapshotError as exc:
        logger.warning("local copy %s is unusable (%s); downloading again", target, exc)
        shutil.rmtree(target, ignore_errors=True)
        return None
    return target


def _new_partial(cache_dir: Path, version: str) -> Path:
    # Inside cache_dir, so the final rename stays on one file system and is atomic.
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / f"{PARTIAL_PREFIX}{version}-{secrets.token_hex(4)}"
    partial.mkdir()
    return partial


def _install(partial: Path, target: Path, manifest: Manifest) -> None:
    # Every data file was checked as it was written; the manifest is ours.
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        partial.rename(target)
    except OSError:
        # A concurrent download of the same version won the rename; its copy must check out.
        if not target.is_dir():
            raise
        verify_folder(target, manifest)
