"""Launchers for the three servers the project runs on 127.0.0.1, and ``up``/``down``/``status``.

Reads the settings and the files under ``infra/``; writes data, logs and pid files under the
configured run directory (``run/`` by default, git-ignored).
"""

from infra.servers.control import ServerStatus, down, status, up
from infra.servers.process import ServerError

__all__ = ["ServerError", "ServerStatus", "down", "status", "up"]
