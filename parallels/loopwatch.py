"""Report an asyncio event loop that stops turning, with the stack that holds it.

A worker whose loop is blocked goes silent: no heartbeats, no workflow tasks, no log line.
Temporal retries its work elsewhere after timeouts, but nothing says why. A thread outside the
loop notices instead and logs where the loop's thread is stuck, then logs again when it moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def watching(threshold: float, logger: logging.Logger = log) -> AsyncIterator[None]:
    """While inside, warn when the running loop has not turned for `threshold` seconds."""
    if threshold <= 0:
        yield
        return
    last = [time.monotonic()]
    loop_thread = threading.get_ident()
    done = threading.Event()
    period = threshold / 4

    async def tick() -> None:
        while True:
            last[0] = time.monotonic()
            await asyncio.sleep(period)

    def watch() -> None:
        stalled_since: float | None = None
        while not done.wait(period):
            idle = time.monotonic() - last[0]
            if idle > threshold and stalled_since is None:
                stalled_since = last[0]
                frame = sys._current_frames().get(loop_thread)
                stack = "".join(traceback.format_stack(frame)) if frame else "(no frame)\n"
                logger.warning(
                    "event loop blocked for %.1fs: heartbeats and workflow tasks wait; "
                    "its thread is at:\n%s",
                    idle,
                    stack.rstrip(),
                )
            elif idle <= threshold and stalled_since is not None:
                logger.warning(
                    "event loop running again after %.1fs blocked", last[0] - stalled_since
                )
                stalled_since = None

    ticking = asyncio.create_task(tick())
    watcher = threading.Thread(target=watch, name="loop-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        ticking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticking
        watcher.join(5)
