"""A TCP proxy on 127.0.0.1 that can be cut and restored: one client's view of a server outage.

Reads and writes nothing but sockets. A process pointed at the proxy's port reaches the real
server through it; :meth:`TcpProxy.cut` closes the listening socket and resets every open
connection (clients see "connection refused" and resets, as when the server dies), and
:meth:`TcpProxy.restore` listens on the same port again. With :attr:`TcpProxy.response_limit`
set, each connection passes on at most that many bytes of the server's answer and is then closed,
as when the server dies mid-response. Other clients of the same server are not affected, which
lets a test take a dependency away from one process only.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

#: Bytes read at once from either side.
CHUNK = 64 * 1024


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TcpProxy:
    """Forwards connections from ``port`` to ``127.0.0.1:target``; run it in the test's loop."""

    def __init__(self, target: int, port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Bytes of the server's side forwarded per connection before it is closed (None: all).
        self.response_limit: int | None = None

    @property
    def up(self) -> bool:
        """Whether the proxy accepts connections."""
        return self._server is not None

    async def start(self) -> None:
        """Listen (again) on :attr:`port`."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._serve, "127.0.0.1", self.port, reuse_address=True
            )

    async def cut(self) -> None:
        """Stop listening and reset every open connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            transport = writer.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()
        # Aborted transports end their pipes; a task is not cancelled, as asyncio logs a
        # cancelled connection handler as an error.
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
        if server is not None:
            await server.wait_closed()

    async def restore(self) -> None:
        """Accept connections again, on the same port."""
        await self.start()

    async def stop(self) -> None:
        """Cut for good."""
        await self.cut()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target)
            self._writers.add(upstream)
            await asyncio.gather(
                _pipe(reader, upstream), _pipe(up_reader, writer, self.response_limit)
            )
        except (OSError, asyncio.IncompleteReadError):
            pass  # the server or the client went away: so does the other side
        finally:
            self._tasks.discard(task)
            for side in (writer, upstream):
                if side is not None:
                    self._writers.discard(side)
                    side.close()


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int | None = None
) -> None:
    left = limit
    try:
        while data := await reader.read(CHUNK if left is None else min(CHUNK, left)):
            writer.write(data)
            await writer.drain()
            if left is not None:
                left -= len(data)
                if left <= 0:
                    writer.close()  # the answer stops here, short of what it announced
                    return
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
