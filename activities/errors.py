"""Activity boundary helpers: typed errors become ApplicationErrors; thread-safe heartbeats.

Permanent problems (bad project, bad parameters, missing input) are non-retryable, so the user
hears about them in seconds instead of after a long retry schedule.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from parallels.errors import ParallelsError

P = ParamSpec("P")
R = TypeVar("R")


def translate_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except ParallelsError as e:
            raise ApplicationError(
                str(e), type=type(e).__name__, non_retryable=not e.retryable
            ) from e

    return wrapper


def heartbeater() -> Callable[[str], None]:
    """A heartbeat function that blocking code in `asyncio.to_thread` can call."""
    loop = asyncio.get_running_loop()

    def beat(detail: str) -> None:
        loop.call_soon_threadsafe(activity.heartbeat, detail)

    return beat
