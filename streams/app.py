"""The one Faust app, built from the settings; agents register on it from ``agents/``.

Reads the ``kafka``, ``worker`` and ``model`` settings groups; connects to Kafka as consumer group
``<app id>``. Faust's decorators need a module-level ``app``, so this is the one module that
loads the settings for the worker.
"""

from __future__ import annotations

from typing import Any

import faust

from config.settings import Settings, load_settings
from features.versions import model_version_of
from streams import metrics
from streams.provision import DEAD_LETTER_MAX_BYTES


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured for the pipeline."""
    # Given here, not only as Faust's --datadir option: the app's configuration is settled when
    # the metrics sensor is added at import, before Faust parses its command line.
    data_dir = settings.worker.data_dir
    where: dict[str, Any] = {"datadir": str(settings.path(data_dir))} if data_dir else {}
    return faust.App(
        settings.worker.app_id,
        broker=settings.kafka.url,
        store="memory://",
        topic_partitions=settings.kafka.topic_partitions,
        topic_replication_factor=1,
        # At-least-once delivery; every sink is an idempotent upsert keyed by track id, so a
        # replayed event after a crash rewrites the same row instead of losing one.
        processing_guarantee="at_least_once",
        # How soon the group notices a worker that died without leaving (SIGKILL, power loss)
        # and hands its partitions to the survivors.
        broker_session_timeout=settings.worker.session_timeout_s,
        broker_heartbeat_interval=settings.worker.heartbeat_interval_s,
        web_enabled=settings.worker.web_port is not None,
        web_port=settings.worker.web_port or 6066,
        web_bind=settings.worker.web_host,
        # A dead letter carries its original value whole (base64): allow requests that large.
        producer_max_request_size=DEAD_LETTER_MAX_BYTES,
        autodiscover=["agents"],
        origin="streams",
        **where,
    )


settings = load_settings()
app = create_app(settings)
metrics.install(app)  # /metrics on the worker's web port
#: The model version this worker extracts and indexes. Resolved once: a missing or corrupt
#: calibration file stops the worker at start-up.
model_version = model_version_of(settings.model)
