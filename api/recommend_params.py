"""Request parameters of the recommendation routes, validated with pydantic.

Reads JSON bodies and query strings; writes nothing. One model per request kind, so the JSON
body of ``POST /recommend`` and the repeated query parameters of the GET forms are checked by
the same rules and a bad value is reported with the field's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from multidict import MultiMapping
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from api.recommendations import Filters, Query
from features.tags import CHOI2017_TAGS

MAX_K = 100
DEFAULT_K = 10
MAX_TRACK_ID = 200
MAX_SEEDS = 25
MAX_EXCLUDED = 1000
MAX_PATH = 100
KNOWN_TAGS = frozenset(t.lower() for t in CHOI2017_TAGS)

TrackId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TRACK_ID)
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class Seed(BaseModel):
    """A seed track and how much it counts."""

    model_config = ConfigDict(extra="forbid")

    track_id: TrackId
    weight: float = Field(default=1.0, gt=0, le=1000, allow_inf_nan=False)


class FilterParams(BaseModel):
    """Exclusions, tag filters, the per-artist cap and duplicate handling."""

    model_config = ConfigDict(extra="forbid")

    exclude_tracks: list[TrackId] = Field(default_factory=list, max_length=MAX_EXCLUDED)
    exclude_artists: list[Name] = Field(default_factory=list, max_length=MAX_EXCLUDED)
    exclude_albums: list[Name] = Field(default_factory=list, max_length=MAX_EXCLUDED)
    max_per_artist: int | None = Field(default=None, ge=1, le=MAX_K)
    tags: list[str] = Field(default_factory=list, max_length=len(KNOWN_TAGS))
    not_tags: list[str] = Field(default_factory=list, max_length=len(KNOWN_TAGS))
    duplicates: Literal["collapse", "include"] = "collapse"

    @field_validator("tags", "not_tags")
    @classmethod
    def _known_tags(cls, value: list[str]) -> list[str]:
        tags = [t.strip().lower() for t in value]
        unknown = [t for t in tags if t not in KNOWN_TAGS]
        if unknown:
            msg = f"unknown tag {unknown[0]!r:.40}; known tags: {', '.join(CHOI2017_TAGS)}"
            raise ValueError(msg)
        return tags

    def filters(self) -> Filters:
        """The engine's filters."""
        return Filters.of(
            exclude_tracks=self.exclude_tracks,
            exclude_artists=self.exclude_artists,
            exclude_albums=self.exclude_albums,
            tags=self.tags,
            not_tags=self.not_tags,
            max_per_artist=self.max_per_artist,
            collapse_duplicates=self.duplicates == "collapse",
        )


class RecommendParams(FilterParams):
    """``POST /recommend``'s body (and ``GET /recommend``'s query, see :data:`GET_NAMES`)."""

    seeds: list[Seed] = Field(min_length=1, max_length=MAX_SEEDS)
    negative: list[TrackId] = Field(default_factory=list, max_length=MAX_SEEDS)
    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K)
    diversity: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)

    @field_validator("seeds", mode="before")
    @classmethod
    def _plain_ids(cls, value: Any) -> Any:
        # A plain string is a seed of weight 1.
        if isinstance(value, list):
            return [{"track_id": s} if isinstance(s, str) else s for s in value]
        return value

    def query(self) -> Query:
        """The engine's query."""
        seeds = tuple((s.track_id, s.weight) for s in self.seeds)
        return Query(seeds, tuple(self.negative), self.k, self.filters(), self.diversity)


class AudioParams(FilterParams):
    """``POST /recommend/audio``'s query string."""

    k: int = Field(default=10, ge=1, le=MAX_K)
    diversity: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)


class PathParams(FilterParams):
    """``GET /path``'s query string (``from`` and ``to`` are Python keywords, hence aliases)."""

    start: TrackId = Field(alias="from")
    end: TrackId = Field(alias="to")
    steps: int = Field(default=10, ge=2, le=MAX_PATH)


#: Query parameter -> field. Lists repeat the parameter (``track_id=a&track_id=b``).
GET_NAMES = {
    "track_id": "seeds",
    "negative": "negative",
    "tag": "tags",
    "not_tag": "not_tags",
    "exclude_track": "exclude_tracks",
    "exclude_artist": "exclude_artists",
    "exclude_album": "exclude_albums",
}
_LISTS = frozenset(GET_NAMES.values())


def from_query(query: MultiMapping[str], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The query string as a dict for a model: repeated names collected into lists.

    Parameters a model does not know are left out, so clients that send extra ones (players
    add their own) are not refused.
    """
    data: dict[str, Any] = {}
    for name in dict.fromkeys(query.keys()):
        field = GET_NAMES.get(name, name)
        if field not in fields and name not in fields and not _alias_of(fields, name):
            continue
        if field in _LISTS:
            data[field] = [v for v in query.getall(name) if v.strip()]
        else:
            data[name] = query.get(name)
    return data


def _alias_of(fields: Mapping[str, Any], name: str) -> bool:
    return any(getattr(f, "alias", None) == name for f in fields.values())


def describe(error: ValidationError) -> str:
    """One line naming the first bad field and what is wrong with it."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    return f"{where}: {message}"
