"""The worker's long-lived connections and policies, passed explicitly to every work function.

Reads the settings; holds a Cassandra session (with the track store and the retry schedule over
it), the object store, the Deezer client (one rate limit for the whole worker), the playlist
crawler, the audio fetcher, the feature extractor (loaded on first use: only workers that extract
pay for TensorFlow and the weights), the worker's failure counters, and the function that
produces records. Nothing here needs the Faust app: tests build a :class:`Resources` with a plain
Kafka producer (:class:`KafkaEmitter`) and call the work functions directly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from aiokafka import AIOKafkaProducer

from config.settings import Settings
from features.extractor import Extractor, load_extractor
from sources.crawler import PlaylistCrawler
from sources.deezer import DeezerClient, rate_limiter
from sources.download import AudioFetcher
from stores.cassandra import CassandraSession
from stores.objects import ObjectStore
from stores.schedule import RetrySchedule
from stores.tracks import TrackStore
from streams.errors import topic_error
from streams.kafka_clients import started
from streams.retries import own_servers, retried
from streams.stats import WorkerStats

logger = logging.getLogger(__name__)

T = TypeVar("T")

Headers = Sequence[tuple[str, bytes]]


class Emit(Protocol):
    """Produces one record to a pipeline topic (by its logical name) and waits for delivery."""

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers = ()
    ) -> None:
        """Send ``value`` under ``key`` to the pipeline topic named ``topic``; wait for the ack."""


class KafkaEmitter:
    """An :class:`Emit` over a plain aiokafka producer (tests, command-line tools)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect the producer."""
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka.bootstrap, acks="all"
        )
        await started(self.producer)

    async def stop(self) -> None:
        """Flush and close the producer."""
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers = ()
    ) -> None:
        """Send and wait for the broker's acknowledgement."""
        if self.producer is None:
            msg = "KafkaEmitter used before start()"
            raise RuntimeError(msg)
        name = self.settings.kafka.topic(topic)
        try:
            await self.producer.send_and_wait(name, value, key=key, headers=list(headers) or None)
        except Exception as exc:
            raise topic_error(exc, name) from exc


class Resources:
    """Everything the work functions of one worker share; :meth:`start` before use."""

    def __init__(
        self,
        settings: Settings,
        model_version: str,
        emit: Emit,
        *,
        extractor: Extractor | None = None,
    ) -> None:
        self.settings = settings
        self.model_version = model_version
        self._emit = emit
        self.stats = WorkerStats()
        self.db = CassandraSession(settings.cassandra)
        self.tracks = TrackStore(self.db, settings.cassandra.keyspace)
        self.schedule = RetrySchedule(self.db, settings.cassandra.keyspace)
        self.objects = ObjectStore(settings.s3)
        # One Deezer client and one limiter for crawling and fetching: the rate limit is the
        # worker's, whatever the number of agents and concurrent downloads.
        self.deezer = DeezerClient(settings.deezer, rate_limiter(settings.deezer.rate_per_s))
        self.crawler = PlaylistCrawler(settings, self.deezer)
        self.fetcher = AudioFetcher(settings, self.deezer)
        self._extractor = extractor
        self._extractor_lock = asyncio.Lock()

    async def start(self) -> None:
        """Open every connection (retried while a server is down: the worker waits for it)."""
        await self.own("connect to Cassandra", self.db.start)
        await self.objects.start()
        await self.deezer.start()
        await self.crawler.start()
        await self.fetcher.start()

    async def stop(self) -> None:
        """Close in the reverse order."""
        await self.fetcher.stop()
        await self.crawler.stop()
        await self.deezer.stop()
        await self.objects.stop()
        await self.db.stop()

    async def __aenter__(self) -> Resources:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def extractor(self) -> Extractor:
        """The configured extractor, loaded (weights checked) on first use."""
        async with self._extractor_lock:
            if self._extractor is None:
                self._extractor = await asyncio.to_thread(load_extractor, self.settings.model)
            return self._extractor

    async def own(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()``, retried in place while Kafka, Cassandra or S3 is unavailable."""
        return await retried(own_servers(self.settings.retry, what, self.stats), call)

    async def emit(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers = ()
    ) -> None:
        """Produce a record and wait until the broker has it (retried while Kafka is down)."""
        await self.own(f"produce to {topic}", lambda: self._emit(topic, key, value, headers))

    def step_done(self, step: str) -> None:
        """Mark the end of a per-track step; the test-only crash hook kills the worker here.

        ``SPOTREC_WORKER_CRASH_AFTER=<step>`` (``config.settings.WorkerSettings.crash_after``)
        sends SIGKILL to this process right after the named step, so a test can check that the
        replayed events complete the steps that follow.
        """
        if step == self.settings.worker.crash_after:
            logger.warning("crash hook: killing the worker after step %s", step)
            os.kill(os.getpid(), signal.SIGKILL)
