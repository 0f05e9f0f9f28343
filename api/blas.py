"""One BLAS thread per query in the query node: its matrix products are small and many.

Reads and writes nothing; limits the BLAS library's threads for the process while the node
runs, and restores them when it stops. A query's products (a few hundred rows against a vector
or a block of candidates) take well under a millisecond on one core, and queries run in
parallel on the node's threads already; BLAS's own threads, woken for each product on a busy
host, waited for the scheduler instead (measured on a loaded 2-core machine: 8 to 20 ms for a
64 x 400 product that takes 0.2 ms on one thread), which made a tag-filtered query several
times slower.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

from aiohttp import web
from threadpoolctl import threadpool_limits

#: BLAS threads per product while the node serves.
QUERY_BLAS_THREADS = 1


@contextmanager
def query_blas() -> Iterator[None]:
    """BLAS limited to :data:`QUERY_BLAS_THREADS` for the process, inside the block."""
    limits = threadpool_limits(QUERY_BLAS_THREADS, user_api="blas")
    try:
        yield
    finally:
        limits.restore_original_limits()


async def blas_threads(app: web.Application) -> AsyncIterator[None]:
    """The node's cleanup context: BLAS limited while it runs."""
    del app  # the limit is process-wide
    with query_blas():
        yield
