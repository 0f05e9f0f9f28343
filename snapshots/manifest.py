"""The snapshot manifest: what a snapshot holds and how to check it, as strict JSON.

Reads and writes nothing itself; :meth:`Manifest.to_json` and :meth:`Manifest.from_json` turn
a manifest into the ``manifest.json`` bytes stored beside the snapshot's files and back. The
manifest is written last when a snapshot is published, so its presence is what makes the
snapshot visible.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from snapshots.errors import SnapshotCorrupt

#: Bumped whenever a reader of the previous format could misread a new snapshot. Format 2 added
#: the vectors, neighbour lists, tag lists and offset-indexed metadata beside the ANNOY index.
FORMAT = 2
METRIC: Final = "angular"
MANIFEST_NAME = "manifest.json"
#: ANNOY index of the unit-normalised retrieval vectors (row ``i`` is item ``i``).
INDEX_NAME = "index.ann"
#: ``(count, dim)`` float32: the same vectors, for exact scoring (memory-mapped).
VECTORS_NAME = "vectors.npy"
#: ``(count,)`` fixed-width UTF-8 track ids, sorted: row ``i``'s id, found by binary search.
IDS_NAME = "ids.npy"
#: One JSON object per row (``track_id``, ``name``, ``artists``, ``album``, ``tags``).
TRACKS_NAME = "tracks.jsonl"
#: ``(count + 1,)`` int64 byte offsets of the lines of ``tracks.jsonl``.
OFFSETS_NAME = "offsets.npy"
#: ``(count, neighbours)`` int32 rows and float32 cosine scores of each row's nearest rows,
#: best first (``-1`` pads a list when the snapshot is smaller).
NEIGHBOURS_NAME = "neighbours.npy"
SCORES_NAME = "scores.npy"
#: Rows carrying each tag, concatenated (int32, sorted within a tag), and per lower-cased tag
#: its ``[start, end)`` in that array.
TAGGED_NAME = "tagged.npy"
TAGS_NAME = "tags.json"
#: ``(count, 2)`` float32: each row's place on the catalogue map (``snapshots.projection``).
XY_NAME = "xy.npy"
#: Every format-2 snapshot has exactly these data files (the manifest lists them).
DATA_FILES = (
    INDEX_NAME,
    VECTORS_NAME,
    IDS_NAME,
    TRACKS_NAME,
    OFFSETS_NAME,
    NEIGHBOURS_NAME,
    SCORES_NAME,
    TAGGED_NAME,
    TAGS_NAME,
    XY_NAME,
)
#: The search index's postings over names, artists and albums (``snapshots.text_index``):
#: sorted tokens one per line, each token's ``[start, end)`` in the int32 postings, and each
#: row's name length. Built since these files exist; a snapshot without them is still valid,
#: and its query nodes build the search index themselves.
SEARCH_WORDS_NAME = "search_words.txt"
SEARCH_OFFSETS_NAME = "search_offsets.npy"
SEARCH_POSTINGS_NAME = "search_postings.npy"
NAME_LENGTHS_NAME = "name_lengths.npy"
SEARCH_FILES = (SEARCH_WORDS_NAME, SEARCH_OFFSETS_NAME, SEARCH_POSTINGS_NAME, NAME_LENGTHS_NAME)
#: Each tag's rows grouped by cell (``snapshots.tag_cells``): the cells' centres, the rows of
#: ``tagged.npy`` ordered by cell within each tag, and per tag and cell its end and radius.
#: Built since these files exist; without them a tag filter scores or searches as before.
TAG_CENTRES_NAME = "tag_centres.npy"
TAG_ROWS_NAME = "tag_rows.npy"
TAG_CELLS_NAME = "tag_cells.npy"
TAG_CELL_FILES = (TAG_CENTRES_NAME, TAG_ROWS_NAME, TAG_CELLS_NAME)
#: Groups of files a snapshot lists all of or none of.
OPTIONAL_FILES = (SEARCH_FILES, TAG_CELL_FILES)

#: ``20261123T220501.123Z-1a2b3c4d``: UTC build time to the millisecond, then a random suffix.
#: Fixed width, so sorting version strings sorts snapshots by build time.
VERSION_RE = re.compile(r"^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{8}$")
#: Model versions become key and folder names, so no slashes and no ``.``/``..``.
MODEL_VERSION_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
)  # "+" joins model and decode path
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = (
    "format",
    "version",
    "model_version",
    "count",
    "dim",
    "metric",
    "trees",
    "files",
    "built_at",
    "source_mark",
    "transform",
    "neighbours",
    "search_k",
    "recall",
)
#: Fields added within format 1: a manifest written before them reads as their default.
_OPTIONAL_FIELDS = ("missing",)


def new_version(now: datetime | None = None) -> str:
    """A fresh snapshot version for a build started at ``now`` (default: the current time)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class FileEntry:
    """The expected size and sha256 of one file of a snapshot."""

    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """Everything needed to find, check and interpret one snapshot.

    Attributes:
        version: The snapshot's version (see :data:`VERSION_RE`); sorts by build time.
        model_version: The embedding model whose vectors were indexed.
        count: Number of rows; rows are the dense ids ``0..count-1``.
        dim: Vector dimension.
        trees: ANNOY trees built.
        files: Data file name -> expected sha256 and size.
        built_at: When the build started (UTC, kept to the millisecond).
        source_mark: ``model_versions.updated_at`` read before the vectors, in milliseconds since
            the epoch (``None`` when no mark was recorded): the indexer rebuilds when it moves.
        transform: How vectors were transformed before indexing (``None``: as stored), e.g. the
            frozen z-scoring statistics.
        neighbours: Length of each row's stored neighbour list.
        search_k: ANNOY ``search_k`` that reached the recall target for query vectors.
        recall: How recall was measured and what it came to (``at``, ``sample``, ``target``,
            ``lists``: recall of the stored lists, ``search``: of ANNOY search at ``search_k``
            re-ranked exactly, ``probes``: cells each row was listed in when the lists were
            built, 0 for exact lists).
        missing: Tracks that have a vector of another model version but none of this one, and
            whose audio did not turn out unusable or fail, when the snapshot was built. A snapshot
            with ``missing > 0`` is incomplete: a reindex to this model version is under way,
            and query nodes keep serving a complete snapshot instead.
        metric: Always ``"angular"`` in format 1.
        format: The manifest format; readers refuse formats they do not know.
    """

    version: str
    model_version: str
    count: int
    dim: int
    trees: int
    files: Mapping[str, FileEntry]
    built_at: datetime
    source_mark: int | None
    transform: Mapping[str, Any] | None = None
    neighbours: int = 0
    search_k: int = -1
    recall: Mapping[str, Any] | None = None
    missing: int = 0
    metric: str = METRIC
    format: int = FORMAT

    def __post_init__(self) -> None:
        # Validate on construction as well, so an invalid manifest is never written either.
        _validate(self)
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))
        # JSON keeps milliseconds; truncating here makes a manifest equal its own round trip.
        at = self.built_at.astimezone(UTC)
        object.__setattr__(self, "built_at", at.replace(microsecond=at.microsecond // 1000 * 1000))

    @property
    def complete(self) -> bool:
        """Whether every track indexed under another model version is indexed here too."""
        return self.missing == 0

    def to_dict(self) -> dict[str, Any]:
        """The manifest as plain JSON-ready data."""
        return {
            "format": self.format,
            "version": self.version,
            "model_version": self.model_version,
            "count": self.count,
            "dim": self.dim,
            "metric": self.metric,
            "trees": self.trees,
            "files": {
                name: {"sha256": entry.sha256, "size": entry.size}
                for name, entry in sorted(self.files.items())
            },
            "built_at": self.built_at.astimezone(UTC).isoformat(timespec="milliseconds"),
            "source_mark": self.source_mark,
            "transform": None if self.transform is None else dict(self.transform),
            "neighbours": self.neighbours,
            "search_k": self.search_k,
            "recall": None if self.recall is None else dict(self.recall),
            "missing": self.missing,
        }

    def to_json(self) -> bytes:
        """The ``manifest.json`` bytes (stable key order, so equal manifests are equal bytes)."""
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "manifest") -> Manifest:
        """Build and validate a manifest from decoded JSON.

        Args:
            data: The decoded JSON object.
            source: Where the data came from (a key or path), named in error messages.

        Raises:
            SnapshotCorrupt: A field is missing, unknown, of the wrong type or out of range.
        """
        if not isinstance(data, dict):
            msg = f"{source}: expected a JSON object, got {type(data).__name__}"
            raise SnapshotCorrupt(msg)
        fmt = data.get("format")
        if fmt != FORMAT:
            msg = f"{source}: expected manifest format {FORMAT}, got {fmt!r}"
            raise SnapshotCorrupt(msg)
        missing = [name for name in _FIELDS if name not in data]
        unknown = sorted(set(data) - set(_FIELDS) - set(_OPTIONAL_FIELDS))
        if missing or unknown:
            msg = f"{source}: missing fields {missing}, unknown fields {unknown}"
            raise SnapshotCorrupt(msg)
        try:
            files = {
                str(name): FileEntry(sha256=entry["sha256"], size=entry["size"])
                for name, entry in _expect(data["files"], dict, "files").items()
            }
            built_at = datetime.fromisoformat(_expect(data["built_at"], str, "built_at"))
            return cls(
                format=fmt,
                version=data["version"],
                model_version=data["model_version"],
                count=data["count"],
                dim=data["dim"],
                metric=data["metric"],
                trees=data["trees"],
                files=files,
                built_at=built_at,
                source_mark=data["source_mark"],
                transform=data["transform"],
                neighbours=data["neighbours"],
                search_k=data["search_k"],
                recall=data["recall"],
                missing=data.get("missing", 0),
            )
        except SnapshotCorrupt as exc:
            msg = f"{source}: {exc}"
            raise SnapshotCorrupt(msg) from exc
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"{source}: malformed manifest field ({exc!r})"
            raise SnapshotCorrupt(msg) from exc

    @classmethod
    def from_json(cls, raw: bytes, *, source: str = "manifest") -> Manifest:
        """Parse and validate ``manifest.json`` bytes.

        Raises:
            SnapshotCorrupt: The bytes are not JSON or the manifest does not validate.
        """
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            msg = f"{source}: not valid JSON ({exc})"
            raise SnapshotCorrupt(msg) from exc
        return cls.from_dict(data, source=source)


def _expect(value: Any, kind: type, name: str) -> Any:
    if not isinstance(value, kind):
        msg = f"{name} must be a {kind.__name__}, got {type(value).__name__}"
        raise SnapshotCorrupt(msg)
    return value


def _is_int(value: Any) -> bool:
    # bool is an int subclass; a manifest saying ``"count": true`` is malformed.
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(m: Manifest) -> None:
    problems: list[str] = []
    if m.format != FORMAT:
        problems.append(f"format must be {FORMAT}, got {m.format!r}")
    if not isinstance(m.version, str) or not VERSION_RE.match(m.version):
        problems.append(f"version must look like 20261123T220501.123Z-1a2b3c4d, got {m.version!r}")
    if not isinstance(m.model_version, str) or not MODEL_VERSION_RE.match(m.model_version):
        problems.append(
            f"model_version must match {MODEL_VERSION_RE.pattern}, got {m.model_version!r}"
        )
    for name in ("count", "dim", "trees"):
        value = getattr(m, name)
        if not _is_int(value) or value < 1:
            problems.append(f"{name} must be a positive integer, got {value!r}")
    if m.metric != METRIC:
        problems.append(f"metric must be {METRIC!r}, got {m.metric!r}")
    optional = {name for group in OPTIONAL_FILES for name in group}
    if not isinstance(m.files, Mapping) or set(m.files) - optional != set(DATA_FILES):
        got = sorted(m.files) if isinstance(m.files, Mapping) else m.files
        problems.append(
            f"files must list exactly {sorted(DATA_FILES)} (and may list {sorted(optional)}),"
            f" got {got!r}"
        )
    elif any(set(g) & set(m.files) not in (set(), set(g)) for g in OPTIONAL_FILES):
        group = next(g for g in OPTIONAL_FILES if set(g) & set(m.files) not in (set(), set(g)))
        problems.append(f"files must list all of {sorted(group)} or none of them")
    else:
        for name, entry in m.files.items():
            if not isinstance(entry.sha256, str) or not _SHA256_RE.match(entry.sha256):
                problems.append(f"files[{name!r}].sha256 must be 64 hex digits")
            if not _is_int(entry.size) or entry.size < 0:
                problems.append(f"files[{name!r}].size must be a non-negative integer")
    if not isinstance(m.built_at, datetime) or m.built_at.tzinfo is None:
        problems.append(f"built_at must be a time with a zone, got {m.built_at!r}")
    if m.source_mark is not None and not _is_int(m.source_mark):
        problems.append(f"source_mark must be an integer or null, got {m.source_mark!r}")
    if not _is_int(m.neighbours) or m.neighbours < 0:
        problems.append(f"neighbours must be a non-negative integer, got {m.neighbours!r}")
    if not _is_int(m.search_k) or m.search_k < -1:
        problems.append(f"search_k must be an integer of at least -1, got {m.search_k!r}")
    if m.recall is not None and not isinstance(m.recall, Mapping):
        problems.append(f"recall must be an object or null, got {m.recall!r}")
    if not _is_int(m.missing) or m.missing < 0:
        problems.append(f"missing must be a non-negative integer, got {m.missing!r}")
    if m.transform is not None and not isinstance(m.transform, Mapping):
        problems.append(f"transform must be an object or null, got {m.transform!r}")
    if problems:
        raise SnapshotCorrupt("invalid manifest: " + "; ".join(problems))
