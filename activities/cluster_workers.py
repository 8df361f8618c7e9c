"""Is anybody serving a cluster? A node on a cluster with no worker must say so, not wait."""

from __future__ import annotations

import asyncio
import time

from temporalio import activity
from temporalio.exceptions import ApplicationError

from parallels.models import AwaitWorkerInput
from parallels.temporal import pollers


class ClusterWorkers:
    def __init__(self, wait_seconds: float, poll_seconds: float = 2.0) -> None:
        self._wait = wait_seconds
        self._poll = poll_seconds

    @activity.defn(name="await_cluster_worker")
    async def await_cluster_worker(self, inp: AwaitWorkerInput) -> int:
        """The number of workers polling the cluster's queue, once there is one; a
        non-retryable error after `wait_seconds` without any (a worker may be starting)."""
        client = activity.client()
        namespace = activity.info().namespace
        deadline = time.monotonic() + self._wait
        while True:
            found = await pollers(client, namespace, inp.task_queue)
            if found:
                return found
            if time.monotonic() >= deadline:
                raise ApplicationError(
                    f"no worker serves cluster '{inp.cluster}' (nothing polled task queue "
                    f"'{inp.task_queue}' for {self._wait:.0f} s): start one with "
                    f"`parallels worker --cluster {inp.cluster}`, or check that the worker "
                    "uses the same Temporal namespace and task queue",
                    type="NoClusterWorker",
                    non_retryable=True,
                )
            activity.heartbeat(f"waiting for a worker on {inp.task_queue}")
            await asyncio.sleep(self._poll)
