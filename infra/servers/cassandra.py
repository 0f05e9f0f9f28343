"""Apache Cassandra 5.0 in its own JVM, launched from the Maven classpath.

Reads ``infra/cassandra/{cassandra.yaml.tmpl,jvm17.args,logback.xml}`` and the jars in
``infra/cassandra/lib``; writes ``<run_dir>/cassandra/{cassandra.yaml,data/,logs/}``.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import Sequence
from pathlib import Path

from config.settings import CassandraSettings
from infra.servers.maven import INFRA_DIR, lib_dir
from infra.servers.process import LocalServer, ServerError, require_java
from stores.cassandra import make_cluster

CONFIG_DIR = INFRA_DIR / "cassandra"


class CassandraServer(LocalServer):
    """One Cassandra node listening on 127.0.0.1."""

    name = "cassandra"
    marker = "org.apache.cassandra.service.CassandraDaemon"

    def __init__(self, settings: CassandraSettings, run_dir: Path) -> None:
        super().__init__(run_dir, settings.start_timeout_s)
        self.settings = settings

    @property
    def endpoint(self) -> str:  # noqa: D102
        return f"{self.settings.host}:{self.settings.port}"

    @property
    def ports(self) -> Sequence[int]:  # noqa: D102
        return (self.settings.port, self.settings.storage_port)

    @property
    def _yaml(self) -> Path:
        return self.home / "cassandra.yaml"

    def _jamm(self) -> Path:
        jars = sorted(lib_dir("cassandra").glob("jamm-*.jar"))
        if not jars:
            msg = "cassandra: jars missing in infra/cassandra/lib; run `make jars`"
            raise ServerError(msg)
        return jars[-1]

    def check_prerequisites(self) -> None:  # noqa: D102
        require_java()
        self._jamm()

    def prepare(self) -> None:
        """Render ``cassandra.yaml`` with this node's ports and directories."""
        template = string.Template((CONFIG_DIR / "cassandra.yaml.tmpl").read_text())
        self._yaml.write_text(
            template.substitute(
                storage_port=self.settings.storage_port,
                native_port=self.settings.port,
                data_dir=self.home / "data",
            )
        )
        (self.home / "triggers").mkdir(exist_ok=True)

    def command(self) -> list[str]:  # noqa: D102
        heap = self.settings.heap
        return [
            require_java(),
            f"@{CONFIG_DIR / 'jvm17.args'}",
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+ExitOnOutOfMemoryError",
            # The bin/cassandra script always adds jamm as an agent for memory measurement.
            f"-javaagent:{self._jamm()}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.config=file://{self._yaml}",
            f"-Dcassandra.storagedir={self.home / 'data'}",
            f"-Dcassandra.logdir={self.home / 'logs'}",
            f"-Dcassandra.triggers_dir={self.home / 'triggers'}",
            f"-Dlogback.configurationFile={CONFIG_DIR / 'logback.xml'}",
            # One node: nothing to gossip with, so do not wait for gossip to settle.
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=1000",
            "-Dcassandra.superuser_setup_delay_ms=0",
            "-Djava.security.egd=file:/dev/urandom",
            "-cp",
            f"{lib_dir('cassandra')}/*",
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    async def probe(self) -> None:
        """Connect and read ``release_version`` from ``system.local``."""
        await asyncio.to_thread(self._probe_blocking)

    def _probe_blocking(self) -> None:
        cluster = make_cluster(self.settings)
        try:
            rows = cluster.connect().execute("SELECT release_version FROM system.local").all()
        finally:
            cluster.shutdown()
        if not rows or not rows[0]["release_version"]:
            msg = f"cassandra: {self.endpoint} returned no release_version"
            raise ServerError(msg)
