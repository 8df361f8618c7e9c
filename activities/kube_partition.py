"""run_partition on a Kubernetes cluster: one pod per partition, awaited through a watch.

Safe to retry: the pod is named from the partition key, so an attempt after a worker restart
finds the running pod and awaits it instead of starting a second one. A pod is deleted once its
outcome and log are recorded, so the next attempt of a failed partition starts afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from temporalio import activity

from activities.errors import translate_errors
from activities.kube import Kube
from activities.kube_watch import PodWatcher
from activities.partition_runs import PartitionRuns
from activities.tracking import Tracking
from parallels.errors import EnvironmentError_, PartitionFailed, TransientError
from parallels.mlproject import format_command
from parallels.models import PartitionInput, PartitionResult
from parallels.pods import (
    RUNNER_FAILED,
    RUNNER_RETRYABLE,
    PodJob,
    PodRequest,
    partition_pod,
)
from parallels.podstatus import PodState, classify


class KubePartitions:
    def __init__(
        self,
        *,
        kube: Kube,
        tracking: Tracking,
        heartbeat_seconds: float = 5.0,
        threads: int = 16,
    ) -> None:
        self._kube = kube
        self._cluster = kube.cluster
        self._runs = PartitionRuns(tracking)
        self._beat = heartbeat_seconds
        # Blocking client calls get their own threads, so a busy cluster cannot starve the
        # default executor that MLflow calls use.
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=f"kube-{self._cluster.name}")
        self._watcher = PodWatcher(kube)

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args))

    @activity.defn(name="run_partition")
    @translate_errors
    async def run_partition(self, inp: PartitionInput) -> PartitionResult:
        started = time.monotonic()
        info = activity.info()
        run_id = await asyncio.to_thread(self._runs.open_attempt, inp)
        if not inp.env.image:
            raise EnvironmentError_(
                f"cluster '{self._cluster.name}' runs pods, but the node's environment was "
                "prepared without an image (a worker of another kind served prepare_environment)"
            )
        # Parameters are checked here, where a mistake costs no pod.
        format_command(inp.entry_point, inp.parameters, auto={"input_dir": ".", "output_dir": "."})
        limit = info.start_to_close_timeout
        budget = limit.total_seconds() if limit else 24 * 3600.0
        manifest = partition_pod(
            PodRequest(
                key=inp.key,
                workflow_id=inp.workflow_id,
                dag=inp.dag_name,
                node=inp.node_id,
                index=inp.index,
                count=inp.count,
                image=inp.env.image,
                repo_uri=inp.project.uri,
                commit=inp.project.commit,
                subdirectory=inp.project.subdirectory,
                job=PodJob(
                    run_id=run_id,
                    experiment_id=inp.experiment_id,
                    manifest_uri=inp.manifest_uri,
                    digest=inp.digest,
                    index=inp.index,
                    count=inp.count,
                    entry_point=inp.entry_point,
                    parameters=inp.parameters,
                ),
                resources=inp.resources,
                timeout_seconds=budget,
            ),
            self._cluster,
        )
        name = manifest["metadata"]["name"]
        # Ours fires a little before Temporal's timeout (the backstop), so the message is ours.
        deadline = started + budget - min(2.0, 0.1 * budget)
        status, error = "FAILED", None
        try:
            await self._ensure_pod(name, manifest)
            state = await self._await(name, deadline)
            await self._keep_log(run_id, name, info.attempt, state)
            await self._call(self._kube.delete_pod, name)
            if state.phase == "succeeded":
                status = "FINISHED"
                return PartitionResult(
                    index=inp.index,
                    run_id=run_id,
                    exit_code=0,
                    seconds=time.monotonic() - started,
                )
            error = f"partition {inp.index}: {_describe(state, budget)}"
            raise await self._failure(inp, run_id, state, error)
        except asyncio.CancelledError:
            details = activity.cancellation_details()
            if details is not None and details.worker_shutdown:
                # Drained, not cancelled (Temporal retries the attempt at once elsewhere): the
                # pod keeps running, the next attempt awaits it by name, the MLflow run stays open.
                status = "RUNNING"
                raise
            status, error = "KILLED", "cancelled"
            # Cancelling the run must not leave its pod running.
            await asyncio.shield(self._delete_quietly(name))
            raise
        except Exception as e:
            error = error or str(e)
            raise
        finally:
            if status != "RUNNING":
                with contextlib.suppress(Exception):
                    await asyncio.shield(
                        asyncio.to_thread(
                            self._runs.close, run_id, status, time.monotonic() - started, error
                        )
                    )

    async def _ensure_pod(self, name: str, manifest: dict[str, Any]) -> None:
        for _ in range(120):
            if await self._call(self._kube.create_pod, manifest) == "created":
                activity.logger.info("created pod %s", name)
                return
            existing = await self._call(self._kube.read_pod, name)
            if existing is None:
                continue  # deleted between the two calls
            if not (existing.get("metadata") or {}).get("deletionTimestamp"):
                activity.logger.info("pod %s already exists: awaiting it", name)
                return
            # An earlier attempt's pod is still terminating: wait for the name to free up.
            activity.heartbeat(f"waiting for the previous pod {name} to go")
            await asyncio.sleep(1.0)
        raise TransientError(f"pod {name} from an earlier attempt is still terminating")

    async def _await(self, name: str, deadline: float) -> PodState:
        queue = self._watcher.subscribe(name)
        first_seen = time.monotonic()
        last_read = 0.0
        pod: dict[str, Any] | None = await self._call(self._kube.read_pod, name)
        try:
            while True:
                now = time.monotonic()
                if pod is None:
                    return PodState(
                        "failed",
                        "Deleted",
                        "the pod was deleted before it finished (by someone else, or its node "
                        "went away)",
                        retryable=True,
                    )
                state = classify(
                    pod,
                    pending_for=now - first_seen,
                    unschedulable_after=self._cluster.unschedulable_seconds,
                    image_pull_after=self._cluster.image_pull_seconds,
                )
                if state.phase in ("succeeded", "failed"):
                    return state
                if now >= deadline:
                    return PodState("failed", "Timeout", "", retryable=False)
                activity.heartbeat(f"{state.phase} {state.reason}".strip())
                wait = min(self._beat, max(0.1, deadline - now))
                try:
                    kind, changed = await asyncio.wait_for(queue.get(), wait)
                    pod = None if kind == "DELETED" else changed
                except TimeoutError:
                    if time.monotonic() - last_read >= self._cluster.poll_seconds:
                        last_read = time.monotonic()
                        pod = await self._call(self._kube.read_pod, name)
        finally:
            self._watcher.unsubscribe(name)

    async def _keep_log(self, run_id: str, name: str, attempt: int, state: PodState) -> None:
        log = await self._call(self._kube.pod_log, name, "step")
        if state.reason == "SourceFetchFailed":
            log = await self._call(self._kube.pod_log, name, "fetch-source") + log
        if log:
            await asyncio.to_thread(self._runs.save_log, run_id, f"attempt-{attempt}.log", log)

    async def _failure(
        self, inp: PartitionInput, run_id: str, state: PodState, error: str
    ) -> Exception:
        if state.message.startswith(RUNNER_RETRYABLE) or state.retryable:
            return TransientError(error + " (retrying)")
        if state.message.startswith(RUNNER_FAILED) or state.setup:
            return EnvironmentError_(error)
        # The step's own failure (exit code, OOMKilled, deadline): counts against `retries`.
        failures = await asyncio.to_thread(self._runs.count_failure, run_id)
        return PartitionFailed(error, state.exit_code, final=failures > inp.retries)

    async def _delete_quietly(self, name: str) -> None:
        try:
            await self._call(self._kube.delete_pod, name)
        except Exception as e:  # the pod's activeDeadlineSeconds still bounds it
            activity.logger.warning("could not delete pod %s: %s", name, e)


def _describe(state: PodState, budget: float) -> str:
    if state.reason == "Timeout":
        return f"timed out after {budget:g}s (the node's timeout); its pod was stopped"
    if state.reason == "OOMKilled":
        return state.message
    if state.exit_code not in (None, 0) and not state.message:
        return f"exited with code {state.exit_code}"
    message = state.message
    for prefix in (RUNNER_RETRYABLE, RUNNER_FAILED):
        message = message.removeprefix(prefix).strip()
    return f"{state.reason}: {message}" if message else state.reason
