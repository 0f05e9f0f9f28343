"""Large objects go to and from the real S3 server in parts, never whole in memory."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from config.settings import Settings
from stores.objects import PART_BYTES, ObjectNotFound, ObjectStore


async def test_a_file_of_several_parts_round_trips_in_bounded_memory(
    servers: Settings, unique: str, tmp_path: Path
) -> None:
    size = 7 * PART_BYTES + 12_345  # eight parts, the last one short
    source = tmp_path / "big.bin"
    rng = np.random.default_rng(3)
    with source.open("wb") as out:
        for _ in range(8):
            out.write(rng.bytes(PART_BYTES))
    with source.open("r+b") as out:
        out.truncate(size)
    want = hashlib.sha256(source.read_bytes()).hexdigest()
    key = f"{unique}/big.bin"
    async with ObjectStore(servers.s3) as store:
        try:
            tracemalloc.start()
            sent = await store.put_file(key, source)
            _, sending_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            target = tmp_path / "back.bin"
            got = await store.get_file(key, target)
            _, receiving_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert sent == got == (want, size)
            assert hashlib.sha256(target.read_bytes()).hexdigest() == want
            # A multipart upload's ETag ends in the number of parts.
            head = await store._client.head_object(Bucket=store.bucket, Key=key)
            assert head["ETag"].strip('"').endswith("-8")
            # Whole-file buffering would need the file's size at least; parts need a few parts
            # (the client keeps copies of the part it signs and sends).
            assert sending_peak < 4 * PART_BYTES < size, sending_peak
            assert receiving_peak < 4 * PART_BYTES, receiving_peak
            with pytest.raises(ObjectNotFound):
                await store.get_file(f"{unique}/absent", tmp_path / "absent")
        finally:
            await store.delete(key)
