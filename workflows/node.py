"""NodeWorkflow: one DAG node = prepare environment -> plan partitions -> run them -> result.

Deterministic: no I/O, clocks or randomness here; everything with a side effect is an activity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from parallels import naming
    from parallels.models import (
        AwaitWorkerInput,
        CloseRunInput,
        MlflowStatus,
        NodeResult,
        NodeRunInput,
        OpenNodeRunInput,
        OpenRunResult,
        PartitionInput,
        PartitionResult,
        PartitionUpdate,
        PlanInput,
        PlanResult,
        PreparedEnv,
        PrepareEnvInput,
    )
    from parallels.spec import RunStatus

# Bookkeeping activities talk to MLflow: retries with backoff ride out a server restart.
BOOKKEEPING_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=20,
)


def bookkeeping(
    name: str,
    arg: object,
    result_type: type[T] | None = None,
    *,
    heartbeat: timedelta | None = None,
    timeout: timedelta = timedelta(minutes=5),
    retry: RetryPolicy = BOOKKEEPING_RETRY,
) -> Awaitable[T]:
    """An activity on the control task queue (the workflow's own)."""
    return workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=timeout,
        heartbeat_timeout=heartbeat,
        retry_policy=retry,
    )


T = TypeVar("T")
HEARTBEAT = timedelta(seconds=30)
# Attempts beyond the node's `retries` for failures that are not the step's fault (a worker
# killed mid-partition, MLflow briefly down): the activity itself stops retrying the step's own
# failures once `retries` are used up.
INFRA_ATTEMPTS = 3
#: Progress signals to the DAG workflow are sent at most this often (and once at the end).
PROGRESS_INTERVAL = timedelta(seconds=2)


def error_message(err: BaseException) -> str:
    """The innermost message of a Temporal error chain: what the user needs to read."""
    while isinstance(err, ActivityError | ChildWorkflowError) and err.cause is not None:
        err = err.cause
    return err.message if isinstance(err, ApplicationError) else str(err)


@workflow.defn(name="NodeWorkflow")
class NodeWorkflow:
    def __init__(self) -> None:
        self._states: list[RunStatus] = []
        self._pending_changes: dict[int, RunStatus] = {}
        self._last_notify: datetime | None = None
        self._node_id = ""
        self._errors: dict[int, str] = {}

    @workflow.query
    def progress(self) -> list[RunStatus]:
        return list(self._states)

    @workflow.run
    async def run(self, inp: NodeRunInput) -> NodeResult:
        node = inp.node
        self._node_id = node.id
        queue = naming.cluster_queue(workflow.info().task_queue, node.cluster)
        key = naming.node_key(inp.dag_key, node.id)
        opened = await bookkeeping(
            "open_node_run",
            OpenNodeRunInput(
                key=key,
                workflow_id=inp.dag_workflow_id,
                experiment_id=inp.experiment_id,
                parent_run_id=inp.dag_run_id,
                dag_name=inp.dag_name,
                node_id=node.id,
                project=inp.project,
                entry_point=node.entry_point,
                parameters=inp.parameters,
            ),
            OpenRunResult,
        )
        result = NodeResult(
            node_id=node.id, status="running", node_run_id=opened.run_id, commit=inp.project.commit
        )
        try:
            env, planned = await asyncio.gather(
                self._prepare(inp, queue),
                bookkeeping(
                    "plan_partitions",
                    PlanInput(
                        node_run_id=opened.run_id,
                        node_id=node.id,
                        inputs=node.inputs,
                        upstream_roots=inp.upstream_roots,
                        parallelism=node.parallelism,
                    ),
                    PlanResult,
                    heartbeat=HEARTBEAT,
                ),
            )
            result.partitions = planned.partitions
            self._states = ["pending"] * planned.partitions
            await self._notify()
            runs = await self._run_partitions(inp, key, opened, planned, env, queue)
        except asyncio.CancelledError:
            await self._close(opened.run_id, "KILLED", result, "cancelled")
            raise
        except (ActivityError, ApplicationError) as e:
            # A cancel while the environment is built or partitions are planned arrives as an
            # ActivityError: the node was cancelled, it did not fail.
            if is_cancelled_exception(e) and workflow.patched("cancel-while-preparing"):
                result.status = "cancelled"
                await self._close(opened.run_id, "KILLED", result, "cancelled")
                raise asyncio.CancelledError() from e
            msg = error_message(e)
            result.status = "failed"
            result.error = msg
            result.partition_states = list(self._states)
            await self._close(opened.run_id, "FAILED", result, msg)
            raise ApplicationError(
                f"node '{node.id}' failed: {msg}", result, type="NodeFailed", non_retryable=True
            ) from e

        failures = [
            (i, self._errors[i]) for i in range(planned.partitions) if self._states[i] == "failed"
        ]
        if failures:
            first_msg = failures[0][1]
            msg = f"{len(failures)} of {planned.partitions} partitions failed; first: {first_msg}"
            result.status = "failed"
            result.error = msg
            result.partition_states = list(self._states)
            await self._close(opened.run_id, "FAILED", result, msg)
            raise ApplicationError(
                f"node '{node.id}' failed: {msg}", result, type="NodeFailed", non_retryable=True
            )
        result.partition_run_ids = [r.run_id for r in runs]
        result.output_roots = [f"runs:/{r.run_id}/output" for r in runs]
        result.status = "succeeded"
        result.partition_states = list(self._states)
        await self._close(opened.run_id, "FINISHED", result, None)
        return result

    async def _prepare(self, inp: NodeRunInput, queue: str) -> PreparedEnv:
        node = inp.node
        # An activity on a queue nobody polls waits forever: fail with a message instead.
        if workflow.patched("await-cluster-worker"):
            await bookkeeping(
                "await_cluster_worker",
                AwaitWorkerInput(cluster=node.cluster, task_queue=queue),
                int,
                heartbeat=HEARTBEAT,
                timeout=timedelta(hours=1),
                retry=RetryPolicy(maximum_attempts=3),
            )
        env: PreparedEnv = await workflow.execute_activity(
            "prepare_environment",
            PrepareEnvInput(project=inp.project, env_manager=node.env_manager),
            result_type=PreparedEnv,
            task_queue=queue,
            start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        return env

    async def _run_partitions(
        self,
        inp: NodeRunInput,
        key: str,
        opened: OpenRunResult,
        planned: PlanResult,
        env: PreparedEnv,
        queue: str,
    ) -> list[PartitionResult]:
        node = inp.node
        results: list[PartitionResult | None] = [None] * planned.partitions
        # A sliding window keeps pending activities well under Temporal's per-execution limit.
        window = asyncio.Semaphore(inp.max_in_flight)

        async def one(i: int) -> None:
            async with window:
                self._set(i, "running")
                try:
                    results[i] = await workflow.execute_activity(
                        "run_partition",
                        PartitionInput(
                            key=naming.partition_key(key, i),
                            workflow_id=inp.dag_workflow_id,
                            experiment_id=inp.experiment_id,
                            node_run_id=opened.run_id,
                            dag_name=inp.dag_name,
                            node_id=node.id,
                            index=i,
                            count=planned.partitions,
                            manifest_uri=planned.manifest_uri,
                            digest=planned.digest,
                            project=inp.project,
                            entry_point=inp.project.project.entry_point(node.entry_point),
                            parameters=inp.parameters,
                            env=env,
                            retries=node.retries,
                            adopt_run_id=inp.adopt_run_id if i == 0 else None,
                            resources=node.resources,
                        ),
                        result_type=PartitionResult,
                        task_queue=queue,
                        start_to_close_timeout=timedelta(seconds=node.timeout_seconds),
                        heartbeat_timeout=HEARTBEAT,
                        retry_policy=RetryPolicy(
                            initial_interval=timedelta(seconds=1),
                            backoff_coefficient=2.0,
                            maximum_attempts=node.retries + 1 + INFRA_ATTEMPTS,
                        ),
                        cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                    )
                    self._set(i, "succeeded")
                except asyncio.CancelledError:
                    self._set(i, "cancelled")
                    raise
                except ActivityError as e:
                    if isinstance(e.cause, CancelledError):
                        self._set(i, "cancelled")
                        raise asyncio.CancelledError() from e
                    self._errors[i] = error_message(e)
                    self._set(i, "failed")
            await self._notify()

        tasks = [asyncio.create_task(one(i)) for i in range(planned.partitions)]
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        await self._notify(final=True)
        return [r if r is not None else _missing(i) for i, r in enumerate(results)]

    def _set(self, i: int, state: RunStatus) -> None:
        self._states[i] = state
        self._pending_changes[i] = state

    async def _notify(self, *, final: bool = False) -> None:
        """Tell the DAG workflow what changed: at most every PROGRESS_INTERVAL (each signal
        costs events in both histories; a node of 1,000 partitions sent 1,000), and whatever is
        left once every partition has ended."""
        parent = workflow.info().parent
        if parent is None or not self._pending_changes:
            return
        if not final and workflow.patched("coalesce-progress"):
            now = workflow.now()
            if self._last_notify is not None and now - self._last_notify < PROGRESS_INTERVAL:
                return
            self._last_notify = now
        changes, self._pending_changes = self._pending_changes, {}
        try:
            await workflow.get_external_workflow_handle(parent.workflow_id).signal(
                "partition_update",
                PartitionUpdate(node_id=self._node_id, total=len(self._states), changes=changes),
            )
        except Exception:  # progress is best effort: never fail the node over it
            workflow.logger.warning("could not signal progress to %s", parent.workflow_id)

    async def _close(
        self, run_id: str, status: MlflowStatus, result: NodeResult, error: str | None
    ) -> None:
        counts = {s: self._states.count(s) for s in ("succeeded", "failed", "cancelled")}
        metrics = {"partitions": float(result.partitions)} | {
            f"partitions_{s}": float(c) for s, c in counts.items()
        }
        await bookkeeping(
            "close_run", CloseRunInput(run_id=run_id, status=status, metrics=metrics, error=error)
        )


def _missing(i: int) -> PartitionResult:
    # Only failed partitions have no result; they carry no run id worth reading from.
    return PartitionResult(index=i, run_id="", exit_code=-1, seconds=0.0)
