"""Reading a worker's assignment from its log, as Faust's own formatter writes the table."""

from __future__ import annotations

import pytest
from aiokafka.structs import TopicPartition
from faust.worker import _partition_set_logtable

from tests.worker_logs import assignment_in, partitions


@pytest.mark.parametrize(
    "share",
    [{0, 1, 2, 3}, {0, 2, 4, 6}, {1, 3, 5, 7}, {0, 1, 2, 5, 7}, {6}],
    ids=lambda s: ",".join(map(str, sorted(s))),
)
def test_an_assignment_reads_back_whatever_runs_it_holds(share: set[int]) -> None:
    topics = ("p.audio-stored.v1", "p.playlists.v1")
    table = _partition_set_logtable([TopicPartition(t, n) for t in topics for n in share])
    log = (
        "[INFO] Setting newly assigned partitions "
        + table
        + " for group p\n[INFO] [^---Recovery]: Worker ready\n"
    )
    assert assignment_in(log) == dict.fromkeys(topics, share)


def test_no_assignment_until_the_worker_is_ready() -> None:
    table = _partition_set_logtable([TopicPartition("t", 0)])
    assert assignment_in("Setting newly assigned partitions " + table + " for group g\n") is None
    assert partitions("0-2, 5, 7") == {0, 1, 2, 5, 7}
