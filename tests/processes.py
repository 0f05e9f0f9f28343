"""Helpers for tests that run ``spotrec`` processes: stopping them the way an operator would."""

from __future__ import annotations

import asyncio
import signal


async def terminate(process: asyncio.subprocess.Process, grace_s: float = 60.0) -> int:
    """SIGTERM, wait up to ``grace_s`` for a clean exit, then SIGKILL; returns the exit status."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(grace_s):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode
