"""Which failures are worth retrying: the drivers' real exception types, classified."""

from __future__ import annotations

import errno

import aiohttp
import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
)
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    ParamValidationError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from cassandra import (
    ConsistencyLevel,
    InvalidRequest,
    OperationTimedOut,
    ReadTimeout,
    Unauthorized,
    Unavailable,
    WriteTimeout,
)
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionShutdown
from cassandra.policies import WriteType

from sources.errors import AudioTooLarge, SourceUnavailable, TrackNotFound
from stores.errors import StoreRejected, StoreUnavailable, store_error
from stores.objects import ObjectNotFound
from streams.errors import TopicRejected, TopicUnavailable, topic_error
from streams.retries import own_server_fault, third_party_fault


def _s3(status: int, code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


TRANSIENT_STORE_ERRORS: list[BaseException] = [
    NoHostAvailable("Unable to connect to any servers", {"127.0.0.1:9042": OSError("refused")}),
    Unavailable("x", consistency=ConsistencyLevel.ONE, required_replicas=1, alive_replicas=0),
    OperationTimedOut("timed out"),
    WriteTimeout(
        "x", consistency=ConsistencyLevel.ONE, received_responses=0, write_type=WriteType.SIMPLE
    ),
    ReadTimeout("x", consistency=ConsistencyLevel.ONE, received_responses=0),
    ConnectionShutdown("connection closed"),
    EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
    ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
    ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    # A body cut short when the server died mid-transfer, as aiohttp and botocore report it.
    aiohttp.ClientPayloadError("Response payload is not completed"),
    IncompleteReadError(actual_bytes=786432, expected_bytes=1323044),
    ResponseStreamingError(error=ConnectionResetError(errno.ECONNRESET, "reset")),
    _s3(500, "InternalError"),
    _s3(503, "SlowDown"),
    ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
    ConnectionResetError(errno.ECONNRESET, "reset"),
    OSError(errno.EHOSTUNREACH, "no route to host"),
    TimeoutError(),
]

PERMANENT_STORE_ERRORS: list[BaseException] = [
    InvalidRequest("Undefined column name nope"),
    Unauthorized("no"),
    _s3(403, "AccessDenied"),
    _s3(400, "InvalidArgument"),
    ParamValidationError(report="Bucket must be a string"),
    FileNotFoundError(errno.ENOENT, "missing"),
]


@pytest.mark.parametrize("exc", TRANSIENT_STORE_ERRORS, ids=lambda e: type(e).__name__)
def test_outages_of_our_stores_are_retriable(exc: BaseException) -> None:
    error = store_error(exc, "test")
    assert isinstance(error, StoreUnavailable)
    assert error.retriable
    assert type(exc).__name__ in str(error)
    assert own_server_fault(exc)
    assert own_server_fault(error)
    assert not third_party_fault(error)


@pytest.mark.parametrize("exc", PERMANENT_STORE_ERRORS, ids=lambda e: type(e).__name__)
def test_refusals_of_our_stores_are_not(exc: BaseException) -> None:
    error = store_error(exc, "test")
    assert isinstance(error, StoreRejected)
    assert not error.retriable
    assert not own_server_fault(exc)
    assert not own_server_fault(error)


def test_a_missing_object_is_a_permanent_store_error_and_still_a_key_error() -> None:
    missing = ObjectNotFound("audio/x")
    assert not missing.retriable
    assert isinstance(missing, KeyError)
    assert store_error(missing, "get") is missing


@pytest.mark.parametrize(
    "exc",
    [
        KafkaConnectionError("down"),
        NotLeaderForPartitionError(),
        RequestTimedOutError(),
        KafkaTimeoutError(),
        ConnectionResetError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_broker_outages_are_retriable(exc: BaseException) -> None:
    error = topic_error(exc, "audio-stored.v1")
    assert isinstance(error, TopicUnavailable)
    assert "audio-stored.v1" in str(error)
    assert own_server_fault(error)


@pytest.mark.parametrize(
    "exc",
    [MessageSizeTooLargeError(), TopicAuthorizationFailedError()],
    ids=lambda e: type(e).__name__,
)
def test_records_the_broker_refuses_are_not(exc: BaseException) -> None:
    error = topic_error(exc, "audio-stored.v1")
    assert isinstance(error, TopicRejected)
    assert not own_server_fault(error)


def test_third_party_failures_never_count_as_our_outage() -> None:
    # A source that is down must not hold a partition for ever: only the bounded policy retries it.
    assert third_party_fault(SourceUnavailable("Deezer answered HTTP 503"))
    assert not own_server_fault(SourceUnavailable("Deezer answered HTTP 503"))
    assert not third_party_fault(TrackNotFound("no such track"))
    assert not third_party_fault(AudioTooLarge("too big"))
    assert not own_server_fault(ValueError("a bug"))
