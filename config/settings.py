"""One frozen, typed settings object read from the environment (prefix ``SPOTREC_``).

Reads environment variables and, when present, the dotenv file named by ``SPOTREC_ENV_FILE``
(default ``config/local.env``). Writes nothing. Every variable is documented in
``config/*.env.example``. Each entry point calls :func:`load_settings` once and passes the result
down; no other module reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository root: relative paths in settings are resolved against it, so commands behave
#: the same from any working directory.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

ENV_PREFIX = "SPOTREC_"

#: The embedding model used unless ``SPOTREC_MODEL_VERSION`` names another.
DEFAULT_MODEL = "musicnn-msd"


class SettingsError(ValueError):
    """A variable is missing or malformed; the message names the variable."""


class _Group(BaseSettings):
    """Base of every settings group: frozen, env-prefixed, strict about unknown keys."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")


class KafkaSettings(_Group):
    """Kafka bootstrap address and the local broker's knobs."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}KAFKA_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=19092, ge=1, le=65535)
    controller_port: int = Field(default=19093, ge=1, le=65535)
    heap: str = Field(default="512m", pattern=r"^\d+[kKmMgG]$")
    topic_partitions: int = Field(default=8, ge=1, le=1024)
    #: Prepended to every topic name: lets several deployments (or test runs) share a cluster.
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    start_timeout_s: float = Field(default=60.0, gt=0)
    #: How long the dead-letter topic keeps a message, in ms; -1 (default): until it is deleted
    #: by hand, so nothing parked is lost before ``spotrec dead-letters redrive`` sends it back.
    dead_letter_retention_ms: int = Field(default=-1, ge=-1)

    @property
    def bootstrap(self) -> str:
        """The ``host:port`` clients connect to."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The broker URL in the form Faust expects."""
        return f"kafka://{self.bootstrap}"

    def topic(self, name: str) -> str:
        """The full name of one of the pipeline's topics."""
        return self.topic_prefix + name


class CassandraSettings(_Group):
    """Cassandra contact point, keyspace and the local node's knobs."""

    model_config = SettingsConfigDict(
        env_prefix=f"{ENV_PREFIX}CASSANDRA_", frozen=True, extra="ignore"
    )

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=19042, ge=1, le=65535)
    storage_port: int = Field(default=17000, ge=1, le=65535)
    keyspace: str = Field(default="spotrec", pattern=r"^[a-z][a-z0-9_]{0,47}$")
    replication_factor: int = Field(default=1, ge=1)
    local_dc: str = "datacenter1"
    username: str | None = None
    password: SecretStr | None = None
    request_timeout_s: float = Field(default=10.0, gt=0)
    heap: str = Field(default="1G", pattern=r"^\d+[kKmMgG]$")
    start_timeout_s: float = Field(default=180.0, gt=0)


#: The secret the local SeaweedFS server is started with; never used for another S3 service.
LOCAL_S3_SECRET = "spotrec-local-secret"


class S3Settings(_Group):
    """The S3-compatible object store: endpoint, bucket, credentials, local server ports."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}S3_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=18333, ge=1, le=65535)
    endpoint_url: str | None = None
    bucket: str = Field(default="spotrec", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    region: str = "us-east-1"
    access_key_id: str = "spotrec"
    #: No default for another S3 service: only the local server gets the built-in secret.
    secret_access_key: SecretStr
    #: First of a block of ports the local SeaweedFS server uses for its internal services.
    internal_port_base: int = Field(default=18400, ge=1, le=65400)
    start_timeout_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _local_secret(cls, data: Any) -> Any:
        # The built-in secret is the one the project's own local server is started with; an
        # S3 service named by endpoint_url must be given its secret explicitly.
        if isinstance(data, dict) and not data.get("secret_access_key"):
            if data.get("endpoint_url"):
                msg = (
                    "SPOTREC_S3_SECRET_ACCESS_KEY is required when SPOTREC_S3_ENDPOINT_URL is "
                    "set (the built-in secret is only for the local server)"
                )
                raise ValueError(msg)
            return {**data, "secret_access_key": LOCAL_S3_SECRET}
        return data

    @property
    def url(self) -> str:
        """The endpoint clients use: ``endpoint_url`` if set, else the local server."""
        return self.endpoint_url or f"http://{self.host}:{self.port}"


class ModelSettings(_Group):
    """Where the embedding model's weights live and which model version is used."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}MODEL_", frozen=True, extra="ignore")

    weights_dir: Path = Path("models/choi2017")
    #: A model name or full version: ``musicnn-msd`` (the MSD_musicnn port, 200-d),
    #: ``choi2017-calibrated`` (Choi's convnet with frozen normalisation statistics, 160-d) or
    #: ``choi2017`` (its faithful per-example port, 160-d).
    version: str = DEFAULT_MODEL
    #: The frozen statistics of ``choi2017-calibrated`` (``spotrec calibrate`` writes one).
    calibration_file: Path = Path("features/calibration/choi2017-calibrated.json")
    batch_size: int = Field(default=16, ge=1, le=1024)
    #: Local mirror of the upstream weight files that ``spotrec weights fetch`` copies from.
    weights_source: Path = Path("../shared/models/choi2017/weights_transfer")
    #: Upstream directory the weights are downloaded from when there is no local mirror.
    weights_url: str = (
        "https://github.com/keunwoochoi/music-auto_tagging-keras/raw/"
        "a3e105d0c4c529c512cc197ad8770ff1cc52aa32/compact_cnn"
    )
    download_timeout_s: float = Field(default=60.0, gt=0)
    #: TensorFlow intra-op threads; 0 uses every core.
    threads: int = Field(default=2, ge=0, le=256)
    #: Threads decoding audio while the network runs.
    decode_workers: int = Field(default=2, ge=1, le=64)
    #: musicnn-msd: most 3-s patches embedded per track, spread evenly over it when it holds
    #: more (a 30-s preview holds 10); fewer is faster. Part of that model's version.
    max_patches: int = Field(default=10, ge=1, le=256)
    #: Choi models: N >= 1 averages N 29-s windows spread evenly over a track longer than a
    #: preview (1: its middle), a preview keeping its one window from the start; 0 analyses
    #: every track's first 29 s only (the rule before whole-track analysis). Part of their
    #: versions when not 0; a full version in ``version`` selects its own count when this is
    #: not set.
    choi_windows: int = Field(default=3, ge=0, le=16)
    #: musicnn-msd: the TensorFlow checkpoint folder; unset, ``MSD_musicnn`` of the installed
    #: ``musicnn`` wheel.
    musicnn_checkpoint: Path | None = None


class SpotifySettings(_Group):
    """Spotify Web API, used for playlist and track metadata only (never audio)."""

    model_config = SettingsConfigDict(
        env_prefix=f"{ENV_PREFIX}SPOTIFY_", frozen=True, extra="ignore"
    )

    client_id: str | None = None
    client_secret: SecretStr | None = None
    api_url: str = "https://api.spotify.com/v1/"
    token_url: str = "https://accounts.spotify.com/api/token"
    #: Market for playlist items: decides which tracks are playable (``is_playable``).
    market: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    timeout_s: float = Field(default=10.0, gt=0)
    #: Use a track's 30 s ``preview_url`` when Spotify returns one. Off: Spotify's Developer
    #: Policy forbids ingesting its content into a machine-learning model, and apps registered
    #: since November 2024 get no previews anyway; audio then comes from Deezer by ISRC.
    use_previews: bool = False


class DeezerSettings(_Group):
    """Deezer's public API: playlists, ISRC look-ups and 30 s preview URLs."""

    model_config = SettingsConfigDict(
        env_prefix=f"{ENV_PREFIX}DEEZER_", frozen=True, extra="ignore"
    )

    api_url: str = "https://api.deezer.com/"
    timeout_s: float = Field(default=10.0, gt=0)
    #: Requests per second to the API, across one worker (Deezer throttles with HTTP 200 errors).
    rate_per_s: float = Field(default=8.0, gt=0)
    #: Tries after the first when Deezer throttles (error 4), fails (5xx) or cannot be reached.
    retries: int = Field(default=4, ge=0, le=10)
    #: Seconds before the first of those retries; doubled each time, with jitter.
    backoff_s: float = Field(default=1.0, ge=0)


class AudioSettings(_Group):
    """How audio is fetched and kept: allowed hosts and folders, limits, retention."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}AUDIO_", frozen=True, extra="ignore")

    #: Hosts audio may be downloaded from (exact names, or ``.suffix`` for a domain and its
    #: sub-domains); anything else is refused, so an event cannot make us fetch any URL.
    allowed_hosts: tuple[str, ...] = (".dzcdn.net", ".scdn.co")
    #: Non-public IP addresses or networks (loopback, private...) that an allowed URL may name
    #: literally, e.g. ``["127.0.0.1"]`` for local test servers; empty (default): none. A host
    #: name must always resolve to public addresses.
    allowed_addresses: tuple[str, ...] = ()
    #: Folders ``local:`` playlists and file audio may come from (empty: none allowed).
    local_roots: tuple[Path, ...] = ()
    max_bytes: int = Field(default=20 * 2**20, ge=1024)
    timeout_s: float = Field(default=20.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    backoff_s: float = Field(default=0.5, ge=0)
    #: Seconds an audio object is kept after its features are stored; 0 deletes it at once.
    retention_s: float = Field(default=0.0, ge=0)

    @field_validator("allowed_addresses")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                msg = "each entry must be an IP address or network (CIDR)"
                raise ValueError(msg) from None
        return value


class RetrySettings(_Group):
    """How failures are retried: in place for the project's own servers, on a schedule after."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}RETRY_", frozen=True, extra="ignore")

    #: Seconds before the first in-place retry of a call to Kafka, Cassandra or S3; doubled per
    #: attempt with jitter, up to ``max_backoff_s``. These are retried for as long as the outage
    #: lasts: the agent holds its partition and resumes by itself.
    backoff_s: float = Field(default=0.5, gt=0)
    max_backoff_s: float = Field(default=30.0, gt=0)
    #: Seconds before a track whose audio failed for now (a timeout, a 5xx, a source that stayed
    #: unreachable) is tried again; doubled per attempt with jitter, up to ``max_delay_s``.
    delay_s: float = Field(default=60.0, gt=0)
    max_delay_s: float = Field(default=3600.0, gt=0)
    #: Scheduled attempts before such a track is recorded ``unavailable`` with the last reason.
    limit: int = Field(default=5, ge=0, le=100)
    #: Seconds between the leader's looks for scheduled retries that are due.
    sweep_interval_s: float = Field(default=10.0, gt=0)


class IndexSettings(_Group):
    """The indexer: how often and how ANNOY snapshots are built."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}INDEX_", frozen=True, extra="ignore")

    interval_s: float = Field(default=30.0, gt=0)
    trees: int = Field(default=50, ge=1, le=1000)
    #: Nodes inspected per query (ANNOY ``search_k``); -1 uses what each snapshot tuned to
    #: reach ``recall_target``.
    search_k: int = Field(default=-1, ge=-1)
    #: Neighbours stored per track: queries by id up to this ``k`` are lookups.
    neighbours: int = Field(default=32, ge=1, le=1000)
    #: Recall@10 against exact search that each snapshot's lists and search must reach.
    recall_target: float = Field(default=0.99, gt=0, le=1)
    #: Tracks recall is measured on when a snapshot is built (all of them when fewer).
    recall_sample: int = Field(default=1000, ge=10)
    #: Threads building ANNOY trees (-1: every core).
    build_jobs: int = Field(default=-1, ge=-1, le=256)
    #: Changed vectors are built into a snapshot once the newest is this old (seconds) ...
    rebuild_after_s: float = Field(default=600.0, ge=0)
    #: ... or once this many ``features-extracted`` records arrived since it was built.
    rebuild_changes: int = Field(default=5000, ge=1)
    #: Local folder where query nodes keep downloaded snapshots.
    cache_dir: Path = Path("run/snapshots")
    #: Seconds the indexer lease lives without renewal: how long a crashed indexer blocks builds.
    lease_ttl_s: int = Field(default=60, ge=5, le=3600)
    #: Snapshots of each model version kept in the object store; older ones are deleted.
    keep_remote: int = Field(default=5, ge=1)
    #: Downloaded snapshots of each model version a query node keeps in ``cache_dir``.
    keep_local: int = Field(default=2, ge=1)


class ApiSettings(_Group):
    """The aiohttp query node."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}API_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8080, ge=1, le=65535)
    #: Largest audio file ``POST /recommend/audio`` accepts, in bytes (413 above it).
    max_upload_bytes: int = Field(default=20 * 2**20, ge=1024)
    #: Audio queries extracted at once on a query node; more wait their turn.
    audio_concurrency: int = Field(default=1, ge=1, le=64)
    #: Seconds the snapshot follower may keep failing (Kafka or the object store unreachable)
    #: before ``/readyz`` answers 503; the node keeps serving its snapshot meanwhile.
    follower_unhealthy_after_s: float = Field(default=120.0, gt=0)
    #: Longest wait between the follower's (and the Cassandra connector's) retries.
    follower_backoff_max_s: float = Field(default=30.0, gt=0)
    #: Follow ``features-extracted.v1`` so new tracks are served before the next snapshot.
    fresh: bool = True
    #: Most tracks kept in the fresh segment (the oldest go first; a snapshot is overdue).
    fresh_limit: int = Field(default=200_000, ge=1)
    #: Threads running searches that are more than a lookup, off the event loop.
    query_threads: int = Field(default=4, ge=1, le=64)


class WorkerSettings(_Group):
    """The Faust worker."""

    model_config = SettingsConfigDict(
        env_prefix=f"{ENV_PREFIX}WORKER_", frozen=True, extra="ignore"
    )

    app_id: str = Field(default="spotrec", pattern=r"^[A-Za-z0-9._-]+$")
    web_port: int | None = Field(default=None, ge=1, le=65535)
    #: Address the web port (``/metrics``) binds to; ``0.0.0.0`` lets a scraper in another
    #: container reach it.
    web_host: str = "127.0.0.1"
    data_dir: Path | None = None
    #: Seconds without a heartbeat before Kafka drops a worker from the group and hands its
    #: partitions to the others: how long a crashed worker's share of the work waits. Kafka
    #: accepts 6 s to 300 s by default (``group.min/max.session.timeout.ms``).
    session_timeout_s: float = Field(default=60.0, ge=6.0, le=300.0)
    #: Seconds between heartbeats; must be well under the session timeout (a third at most).
    heartbeat_interval_s: float = Field(default=3.0, gt=0)
    #: Test-only fault injection: the worker kills itself with SIGKILL right after finishing
    #: the per-track step of this name (e.g. ``features.upsert``; see ``streams.steps``).
    #: Empty (the default): never.
    crash_after: str = Field(default="", pattern=r"^[a-z_.]*$")

    @field_validator("heartbeat_interval_s")
    @classmethod
    def _heartbeat_within_session(cls, value: float, info: ValidationInfo) -> float:
        # Kafka drops a member that misses its heartbeats for a whole session: a third leaves
        # room for two late ones. Checked on this field so the error names its variable.
        session = info.data.get("session_timeout_s")
        if session is not None and value * 3 > session:
            msg = "must be at most a third of SPOTREC_WORKER_SESSION_TIMEOUT_S"
            raise ValueError(msg)
        return value


class Settings(_Group):
    """Everything the project reads from its environment, grouped by concern."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    run_dir: Path = Path("run")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    cassandra: CassandraSettings = Field(default_factory=CassandraSettings)
    # No secret passed: the settings sources or the local default provide it.
    s3: S3Settings = Field(default_factory=lambda: S3Settings())  # type: ignore[call-arg]
    model: ModelSettings = Field(default_factory=ModelSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    spotify: SpotifySettings = Field(default_factory=SpotifySettings)
    deezer: DeezerSettings = Field(default_factory=DeezerSettings)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)

    def path(self, value: Path) -> Path:
        """Resolve a configured path against the project root unless it is absolute."""
        return value if value.is_absolute() else PROJECT_ROOT / value

    def redacted(self) -> dict[str, Any]:
        """The settings as a plain dict with every secret masked, safe to log."""
        return self.model_dump(mode="json")  # SecretStr dumps as "**********"


_G = TypeVar("_G", bound=_Group)


def _settings_error(group: type[_Group], exc: ValidationError) -> SettingsError:
    prefix = str(group.model_config.get("env_prefix", ENV_PREFIX))
    # pydantic's messages describe the problem without echoing the input, so no secret leaks.
    problems = [
        (f"{prefix}{err['loc'][0]}".upper() + ": " if err["loc"] else "") + err["msg"]
        for err in exc.errors()
    ]
    return SettingsError("invalid settings: " + "; ".join(problems))


def load_settings(env_file: Path | None = None) -> Settings:
    """Read and validate the settings once, at start-up.

    Variables in the process environment win over the dotenv file.

    Args:
        env_file: A dotenv file to read as well; defaults to ``$SPOTREC_ENV_FILE``, else
            ``config/local.env`` when it exists.

    Returns:
        The frozen settings.

    Raises:
        SettingsError: A value is malformed or the named env file is missing; the message names
            the variable and what was wrong, never the value.
    """
    if env_file is None:
        named = os.environ.get(f"{ENV_PREFIX}ENV_FILE")
        env_file = Path(named) if named else Path("config/local.env")
        if not env_file.is_absolute():
            env_file = PROJECT_ROOT / env_file
        if named and not env_file.is_file():
            msg = f"{ENV_PREFIX}ENV_FILE names {env_file}, which does not exist"
            raise SettingsError(msg)
    source = env_file if env_file.is_file() else None

    def read(group: type[_G]) -> _G:
        try:
            return group(_env_file=source)  # type: ignore[call-arg]  # pydantic-settings kwarg
        except ValidationError as exc:
            raise _settings_error(group, exc) from None

    try:
        return Settings(  # type: ignore[call-arg]  # _env_file: pydantic-settings kwarg
            _env_file=source,
            kafka=read(KafkaSettings),
            cassandra=read(CassandraSettings),
            s3=read(S3Settings),
            model=read(ModelSettings),
            api=read(ApiSettings),
            worker=read(WorkerSettings),
            spotify=read(SpotifySettings),
            deezer=read(DeezerSettings),
            audio=read(AudioSettings),
            index=read(IndexSettings),
            retry=read(RetrySettings),
        )
    except ValidationError as exc:
        raise _settings_error(Settings, exc) from None
