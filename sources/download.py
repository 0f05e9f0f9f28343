"""Fetches a track's audio: tries its locators in order, from allowed hosts and folders only.

Reads ``track-discovered.v1`` records; resolves ``deezer:``/``isrc:`` locators to a signed
preview URL just before downloading it (they expire); downloads over HTTP(S) from hosts on
``SPOTREC_AUDIO_ALLOWED_HOSTS`` only, at addresses checked before connecting (public ones, see
``sources.hosts``), checking every redirect hop the same way before following it; reads
``file:`` locators inside ``SPOTREC_AUDIO_LOCAL_ROOTS`` only. Writes nothing: the caller stores
the bytes it gets back.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

from config.settings import Settings
from features.audio import CONTENT_TYPES
from schemas.tracks import TrackDiscoveredV1
from sources.deezer import DeezerClient
from sources.errors import (
    AudioError,
    AudioRefused,
    AudioTooLarge,
    AudioUnavailable,
    SourceError,
    SourceUnavailable,
)
from sources.hosts import PinnedResolver, check_url
from sources.local import local_roots, root_of
from sources.tracks import normalize_isrc
from streams.retries import retried, third_party

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Bodies of these types are error or portal pages, never audio.
_NOT_AUDIO = frozenset({"text/html", "text/plain", "application/json", "application/xml"})
_CHUNK = 64 * 1024


class _Resolved(Exception):
    """Carries a Deezer look-up's final error past the download's retries (not retried twice)."""

    def __init__(self, error: SourceError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class FetchedAudio:
    """A track's audio bytes and where they came from.

    Attributes:
        data: The encoded audio, as served (never empty).
        sha256: Hex sha256 of ``data``.
        content_type: The media type, e.g. ``audio/mpeg``.
        audio_source: Provenance: ``deezer:<id>``, ``url:<host>`` or ``file:<file name>``.
    """

    data: bytes
    sha256: str
    content_type: str
    audio_source: str


class AudioFetcher:
    """Downloads audio with timeouts, a size cap, retries with back-off and a host allow-list."""

    def __init__(self, settings: Settings, deezer: DeezerClient | None = None) -> None:
        """Use ``deezer`` when given (its owner starts and stops it), else a client of its own.

        A worker shares one client between crawling and fetching, so that its rate limit holds
        for both together.
        """
        self.settings = settings
        self.audio = settings.audio
        self._owns_deezer = deezer is None
        self.deezer = deezer or DeezerClient(settings.deezer)
        self._roots = local_roots(settings)
        self._session: aiohttp.ClientSession | None = None
        self._resolver = PinnedResolver(settings.audio.allowed_addresses, settings.audio.timeout_s)

    async def start(self) -> None:
        """Open the download session and the Deezer client (if it is the fetcher's own)."""
        if self._session is None:
            # trust_env=False: no proxy from the environment may route our requests elsewhere.
            # The resolver answers only with addresses checked for this very request, and
            # without a DNS cache every connection asks it.
            connector = aiohttp.TCPConnector(resolver=self._resolver, use_dns_cache=False)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        if self._owns_deezer:
            await self.deezer.start()

    async def stop(self) -> None:
        """Close both."""
        if self._owns_deezer:
            await self.deezer.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AudioFetcher:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def fetch(self, track: TrackDiscoveredV1) -> FetchedAudio:
        """The audio of the first of the track's locators that works.

        Args:
            track: The track; its ``audio_refs`` are tried in order.

        Returns:
            The audio and its provenance.

        Raises:
            AudioUnavailable: Every locator failed for good (refused, too large, not found, 4xx,
                empty); ``reasons`` and ``causes`` say why, per locator.
            SourceUnavailable: Every locator failed and at least one only for now (timeouts,
                network, 5xx, 429, Deezer's quota, after every retry): worth trying later.
        """
        reasons: list[str] = []
        causes: list[AudioError | SourceError] = []
        for ref in track.audio_refs:
            try:
                return await self._fetch_ref(ref)
            except (AudioError, SourceError) as exc:
                label = _label(ref)
                reasons.append(f"{label}: {exc}")
                causes.append(exc)
                logger.debug("track %s: %s failed: %s", track.track_id, label, exc)
        if any(cause.retriable for cause in causes):
            msg = f"audio of track {track.track_id} unavailable for now: " + "; ".join(reasons)
            raise SourceUnavailable(msg)
        raise AudioUnavailable(track.track_id, tuple(reasons), tuple(causes))

    async def _fetch_ref(self, ref: str) -> FetchedAudio:
        scheme, _, rest = ref.partition(":")
        if scheme == "file":
            return await self._read_file(rest)
        if scheme not in ("url", "deezer", "isrc"):
            msg = f"unknown audio locator scheme {scheme!r}"
            raise AudioRefused(msg)

        async def attempt() -> FetchedAudio:
            url, source = rest, ""
            if scheme != "url":
                # Resolved on every try: a signed preview URL may expire while we back off.
                try:
                    url, source = await self._resolve(scheme, rest)
                except SourceError as exc:  # the Deezer client retried it already
                    raise _Resolved(exc) from exc
            data, content_type, host = await self._download(url)
            digest = hashlib.sha256(data).hexdigest()
            return FetchedAudio(data, digest, content_type, source or f"url:{host}")

        policy = third_party(self.audio.retries, self.audio.backoff_s, f"audio {_label(ref)}")
        try:
            return await retried(policy, attempt)
        except _Resolved as resolved:
            raise resolved.error from None

    async def _resolve(self, scheme: str, rest: str) -> tuple[str, str]:
        """A fresh preview URL for ``deezer:<id>`` or ``isrc:<ISRC>``, and its provenance."""
        if scheme == "deezer":
            obj = await self.deezer.track(rest)
        else:
            isrc = normalize_isrc(rest)
            if isrc is None:
                msg = f"{rest!r} is not an ISRC"
                raise AudioError(msg)
            obj = await self.deezer.track_by_isrc(isrc)
        deezer_id = obj.get("id")
        if obj.get("readable") is False:
            msg = f"Deezer track {deezer_id} is not readable"
            raise AudioError(msg)
        preview = obj.get("preview")
        if not isinstance(preview, str) or not preview:
            msg = f"Deezer track {deezer_id} has no preview"
            raise AudioError(msg)
        return preview, f"deezer:{deezer_id}"

    async def _download(self, url_text: str) -> tuple[bytes, str, str]:
        """GET the URL, following redirects by hand so each hop is checked before it is used."""
        if self._session is None:
            msg = "AudioFetcher used before start()"
            raise RuntimeError(msg)
        url = check_url(url_text, self.audio.allowed_hosts)
        timeout = aiohttp.ClientTimeout(total=self.audio.timeout_s)
        for _ in range(MAX_REDIRECTS + 1):
            host = url.raw_host or ""
            await self._resolver.pin(url)  # each hop: resolve once, check, connect to that
            try:
                async with self._session.get(url, allow_redirects=False, timeout=timeout) as resp:
                    if resp.status in _REDIRECTS:
                        url = _next_hop(url, resp.headers.get("Location"), self.audio.allowed_hosts)
                        continue
                    if resp.status == 429 or resp.status >= 500:
                        msg = f"HTTP {resp.status} from {host}"
                        raise SourceUnavailable(msg)
                    if resp.status != 200:
                        msg = f"HTTP {resp.status} from {host}"
                        raise AudioError(msg)
                    if resp.content_type in _NOT_AUDIO:
                        msg = f"{host} served {resp.content_type}, not audio"
                        raise AudioError(msg)
                    data = await self._read_capped(resp, host)
                    content_type = resp.content_type
            except (aiohttp.ClientError, TimeoutError) as exc:
                kind = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
                msg = f"download from {host} failed: {kind}"
                raise SourceUnavailable(msg) from exc
            if not data:
                msg = f"{host} served an empty body"
                raise AudioError(msg)
            return data, content_type, host
        msg = f"more than {MAX_REDIRECTS} redirects"
        raise AudioError(msg)

    async def _read_capped(self, resp: aiohttp.ClientResponse, host: str) -> bytes:
        cap = self.audio.max_bytes
        declared = resp.content_length
        if declared is not None and declared > cap:
            msg = f"{host} declares {declared} bytes; the cap is {cap}"
            raise AudioTooLarge(msg)
        body = bytearray()
        async for chunk in resp.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > cap:  # stop reading: the rest is never downloaded
                msg = f"{host} sent more than the cap of {cap} bytes"
                raise AudioTooLarge(msg)
        return bytes(body)

    async def _read_file(self, rest: str) -> FetchedAudio:
        path = self.settings.path(Path(rest))
        name = path.name
        if root_of(path, self._roots) is None:
            msg = f"refused file {name!r}: outside SPOTREC_AUDIO_LOCAL_ROOTS"
            raise AudioRefused(msg)
        resolved = path.resolve()
        content_type = CONTENT_TYPES.get(resolved.suffix.lower())
        if content_type is None:
            msg = f"refused file {name!r}: not one of {sorted(CONTENT_TYPES)}"
            raise AudioRefused(msg)
        try:
            size = resolved.stat().st_size
            if size > self.audio.max_bytes:
                msg = f"file {name!r} has {size} bytes; the cap is {self.audio.max_bytes}"
                raise AudioTooLarge(msg)
            data = await asyncio.to_thread(resolved.read_bytes)
        except OSError as exc:
            msg = f"file {name!r} cannot be read: {exc.strerror or type(exc).__name__}"
            raise AudioError(msg) from exc
        if not data or len(data) > self.audio.max_bytes:  # it may have changed since stat()
            msg = f"file {name!r} is empty or over the cap"
            raise AudioError(msg)
        digest = hashlib.sha256(data).hexdigest()
        return FetchedAudio(data, digest, content_type, f"file:{name}")


def _label(ref: str) -> str:
    """A locator as reasons name it: ``url:`` by host (signed URLs are long), ``file:`` by name."""
    scheme, _, rest = ref.partition(":")
    if scheme == "file":  # reasons reach the API: name the file, not where the server keeps it
        return f"file:{Path(rest).name}"
    if scheme != "url":
        return ref[:200]
    try:
        return f"url:{URL(rest).raw_host or '?'}"
    except ValueError:
        return "url:(malformed)"


def _next_hop(url: URL, location: str | None, allowed: tuple[str, ...]) -> URL:
    """The redirect target, refused unless allowed: it is checked before it is requested."""
    if not location:
        msg = f"redirect from {url.raw_host} without a Location"
        raise AudioError(msg)
    try:
        target = url.join(URL(location))
    except ValueError as exc:
        msg = f"refused a malformed redirect from {url.raw_host}"
        raise AudioRefused(msg) from exc
    return check_url(target, allowed)
