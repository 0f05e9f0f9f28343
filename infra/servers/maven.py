"""Resolves a server's jars from Maven Central through its pinned pom.

Reads ``infra/<server>/pom.xml``; writes the jars to ``infra/<server>/lib/`` (git-ignored) and a
stamp holding the pom's sha256, so a changed pom re-resolves and an unchanged one costs nothing.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from infra.servers.process import ServerError

INFRA_DIR = Path(__file__).resolve().parent.parent
#: Pinned so that Maven 3.8's plugin-prefix resolution cannot drift to a newer plugin.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


def lib_dir(server: str) -> Path:
    """The folder holding the resolved jars of ``server`` (``kafka`` or ``cassandra``)."""
    return INFRA_DIR / server / "lib"


def _pom_digest(server: str) -> str:
    return hashlib.sha256((INFRA_DIR / server / "pom.xml").read_bytes()).hexdigest()


def jars_resolved(server: str) -> bool:
    """Whether ``lib/`` holds the jars of the current pom."""
    stamp = lib_dir(server) / ".pom.sha256"
    return stamp.is_file() and stamp.read_text().strip() == _pom_digest(server)


def resolve_jars(server: str) -> bool:
    """Copy the runtime classpath of ``server`` into its ``lib/`` unless it is there already.

    Returns:
        Whether Maven had to run.

    Raises:
        ServerError: Maven is missing or failed; the message carries the end of its output.
    """
    if jars_resolved(server):
        return False
    mvn = shutil.which("mvn")
    if mvn is None:
        msg = (
            f"{server}: its jars are not resolved and mvn is not on PATH "
            "(Debian/Ubuntu: apt-get install maven)"
        )
        raise ServerError(msg)
    target = lib_dir(server)
    if target.exists():
        shutil.rmtree(target)  # a stale classpath must not mix two versions
    result = subprocess.run(
        [
            mvn,
            "-B",
            "-q",
            "-f",
            str(INFRA_DIR / server / "pom.xml"),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={target}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        msg = f"{server}: Maven could not resolve the jars (exit {result.returncode}):\n{tail}"
        raise ServerError(msg)
    (target / ".pom.sha256").write_text(_pom_digest(server) + "\n")
    return True
