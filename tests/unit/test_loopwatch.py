"""The loop watch reports a blocked event loop with the stack that blocks it, then its recovery."""

from __future__ import annotations

import asyncio
import logging
import time

from parallels.loopwatch import watching


def a_step_that_blocks_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # a synchronous call on the loop's thread, as Popen's exec wait was


async def test_a_blocked_loop_is_reported_with_its_stack_and_its_recovery(caplog):
    caplog.set_level(logging.WARNING, logger="parallels.loopwatch")
    async with watching(0.4):
        await asyncio.sleep(0.5)  # turning normally: nothing to report
        assert caplog.records == []
        a_step_that_blocks_the_loop(1.5)
        await asyncio.sleep(0.5)  # the watch sees the loop turn again
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    blocked, recovered = messages
    assert blocked.startswith("event loop blocked for ")
    assert "a_step_that_blocks_the_loop" in blocked and "time.sleep(seconds)" in blocked
    assert recovered.startswith("event loop running again after ")
    seconds = float(recovered.removeprefix("event loop running again after ").split("s")[0])
    assert 1.0 <= seconds <= 3.0, seconds


async def test_zero_turns_the_watch_off(caplog):
    caplog.set_level(logging.WARNING, logger="parallels.loopwatch")
    async with watching(0):
        a_step_that_blocks_the_loop(0.8)
        await asyncio.sleep(0.3)
    assert caplog.records == []
    async with watching(0.2):  # the same block, watched, is reported
        a_step_that_blocks_the_loop(0.8)
        await asyncio.sleep(0.3)
    assert [r.getMessage()[:18] for r in caplog.records] == [
        "event loop blocked",
        "event loop running",
    ]
