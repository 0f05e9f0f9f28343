"""Errors of the stores layer (Cassandra and the S3 object store), one tree with ``retriable``.

Reads and writes nothing. The stores translate their drivers' exceptions into this tree, so a
caller decides with ``exc.retriable`` instead of knowing cassandra-driver's or botocore's types::

    StoreError                 retriable=False
    ├── StoreUnavailable       True: the server is down, unreachable, overloaded or timed out
    ├── StoreRejected          False: the server refused the request (bad query, 4xx, access)
    └── ObjectNotFound         False: no object under the key (``stores.objects``)

:func:`store_error` does the translation; it also serves callers that hold a raw driver
exception (e.g. the snapshot code, which talks to the session directly).
"""

from __future__ import annotations

import errno

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from cassandra import DriverException, OperationTimedOut, RequestExecutionException
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException

#: socket errors that say "the server is not there right now", not "the request is wrong".
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
    }
)
#: S3 error codes a well-behaved client retries (besides every HTTP 5xx).
_S3_TRANSIENT_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError"}
)


class StoreError(Exception):
    """Base of every error the stores raise."""

    retriable: bool = False


class StoreUnavailable(StoreError):
    """The server is down, unreachable, overloaded or timed out: the same call may work later."""

    retriable = True


class StoreRejected(StoreError):
    """The server refused the request; repeating it will fail the same way."""


def is_transient(exc: BaseException) -> bool:
    """Whether a raw driver or socket exception says the server is only unavailable for now.

    Cassandra: ``NoHostAvailable``, ``Unavailable``, ``ReadTimeout``/``WriteTimeout`` (every
    request-execution error the coordinator reports about replicas), ``OperationTimedOut`` and
    connection errors. S3: connection and timeout errors, a response body cut short, HTTP 5xx and
    throttling codes. Sockets: refused, reset, timed out, unreachable.
    """
    if isinstance(exc, StoreError):
        return exc.retriable
    if isinstance(
        exc, NoHostAvailable | OperationTimedOut | RequestExecutionException | ConnectionException
    ):
        return True
    if isinstance(
        exc,
        EndpointConnectionError | ConnectionClosedError | ConnectTimeoutError | ReadTimeoutError,
    ):
        return True
    if isinstance(exc, HTTPClientError):  # the connection broke mid-request
        return True
    # A body cut short: the server died while sending it. Reading it again is what works.
    if isinstance(exc, IncompleteReadError | ResponseStreamingError | aiohttp.ClientPayloadError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code", "")
        return status >= 500 or status == 429 or code in _S3_TRANSIENT_CODES
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ServerTimeoutError):
        return True  # aiobotocore's transport, when it lets one through untranslated
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


def store_error(exc: BaseException, what: str) -> StoreError:
    """The typed error for a driver exception raised while doing ``what``."""
    if isinstance(exc, StoreError):
        return exc
    detail = str(exc) or type(exc).__name__
    message = f"{what}: {type(exc).__name__}: {detail}"
    if is_transient(exc):
        return StoreUnavailable(message)
    return StoreRejected(message)


#: The exceptions the stores translate; anything else (a bug of ours) passes through unchanged.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    DriverException,
    NoHostAvailable,
    ConnectionException,
    BotoCoreError,
    ClientError,
    aiohttp.ClientError,
    OSError,
)
