"""Apache Kafka 3.9 in KRaft mode (combined broker and controller) in its own JVM.

Reads ``infra/kafka/{server.properties.tmpl,log4j.properties}`` and the jars in
``infra/kafka/lib``; writes ``<run_dir>/kafka/{server.properties,cluster.id,data/}``.
"""

from __future__ import annotations

import base64
import string
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from config.settings import KafkaSettings
from infra.servers.maven import INFRA_DIR, lib_dir
from infra.servers.process import LocalServer, ServerError, require_java

CONFIG_DIR = INFRA_DIR / "kafka"


class KafkaServer(LocalServer):
    """One Kafka node listening on 127.0.0.1."""

    name = "kafka"
    marker = "kafka.Kafka"

    def __init__(self, settings: KafkaSettings, run_dir: Path) -> None:
        super().__init__(run_dir, settings.start_timeout_s)
        self.settings = settings

    @property
    def endpoint(self) -> str:  # noqa: D102
        return self.settings.bootstrap

    @property
    def ports(self) -> Sequence[int]:  # noqa: D102
        return (self.settings.port, self.settings.controller_port)

    @property
    def _properties(self) -> Path:
        return self.home / "server.properties"

    def _java(self, *args: str, heap: str) -> list[str]:
        return [
            require_java(),
            f"-Xmx{heap}",
            f"-Dlog4j.configuration=file:{CONFIG_DIR / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self.home / 'logs'}",
            "-cp",
            f"{lib_dir('kafka')}/*",  # expanded by java, not the shell
            *args,
        ]

    def check_prerequisites(self) -> None:  # noqa: D102
        require_java()
        if not any(lib_dir("kafka").glob("kafka_2.13-*.jar")):
            msg = "kafka: jars missing in infra/kafka/lib; run `make jars`"
            raise ServerError(msg)

    def prepare(self) -> None:
        """Render ``server.properties`` and format the log directory on first use."""
        template = string.Template((CONFIG_DIR / "server.properties.tmpl").read_text())
        data_dir = self.home / "data"
        self._properties.write_text(
            template.substitute(
                port=self.settings.port,
                controller_port=self.settings.controller_port,
                data_dir=data_dir,
                partitions=self.settings.topic_partitions,
            )
        )
        if (data_dir / "meta.properties").exists():
            return
        cluster_file = self.home / "cluster.id"
        if not cluster_file.exists():
            # The same 22-character base64url form that `kafka-storage random-uuid` prints.
            raw = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            cluster_file.write_text(raw + "\n")
        result = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_file.read_text().strip(),
                "-c",
                str(self._properties),
                "--ignore-formatted",
                heap="256m",
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            msg = f"kafka: formatting {data_dir} failed:\n{result.stdout}{result.stderr}"
            raise ServerError(msg)

    def command(self) -> list[str]:  # noqa: D102
        return self._java(
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            "kafka.Kafka",
            str(self._properties),
            heap=self.settings.heap,
        )

    async def probe(self) -> None:
        """Fetch cluster metadata and check that our broker is in it."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.settings.bootstrap, request_timeout_ms=5000
        )
        await admin.start()
        try:
            cluster = await admin.describe_cluster()
        finally:
            await admin.close()
        if not cluster.get("brokers"):
            msg = f"kafka: metadata from {self.endpoint} lists no broker"
            raise ServerError(msg)
