"""DagRunWorkflow: one durable run of a DAG template.

validate -> resolve git refs -> open the MLflow parent run -> start each node (a NodeWorkflow
child) as soon as its dependencies succeed -> close the parent run.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from parallels import naming, scheduling
    from parallels.errors import SpecInvalid
    from parallels.mlproject import check_parameters
    from parallels.models import (
        CloseRunInput,
        DagProgress,
        DagRunInput,
        DagRunResult,
        MlflowStatus,
        NodeProgress,
        NodeResult,
        NodeRunInput,
        OpenDagRunInput,
        OpenRunResult,
        PartitionUpdate,
        ResolvedProject,
        ResolveInput,
    )
    from parallels.spec import DagSpec, RunStatus
    from parallels.validation import (
        Problem,
        apply_overrides,
        load_spec,
        resolve_parameters,
    )
    from workflows.node import NodeWorkflow, bookkeeping, error_message

DAG_ATTR = SearchAttributeKey.for_keyword("ParallelsDag")
MLFLOW_RUN_ATTR = SearchAttributeKey.for_keyword("MlflowRunId")
#: Set by whoever starts the run (the API), so a user's runs can be listed.
OWNER_ATTR = SearchAttributeKey.for_keyword("ParallelsOwner")
SEARCH_ATTRIBUTES = (DAG_ATTR, MLFLOW_RUN_ATTR)

_RESOLVE_RETRY = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=20))


@workflow.defn(name="DagRunWorkflow")
class DagRunWorkflow:
    def __init__(self) -> None:
        self._progress = DagProgress(dag="", status="pending", nodes={})
        self._adopt_run_id: str | None = None

    @workflow.query
    def progress(self) -> DagProgress:
        return self._progress

    @workflow.signal
    def partition_update(self, update: PartitionUpdate) -> None:
        node = self._progress.nodes.get(update.node_id)
        if node is None:
            return
        if len(node.partitions) != update.total:
            node.partitions = ["pending"] * update.total
        for i, state in update.changes.items():
            if 0 <= i < update.total:
                node.partitions[i] = state

    @workflow.run
    async def run(self, inp: DagRunInput) -> DagRunResult:
        spec = self._validate(inp)
        self._adopt_run_id = inp.adopt_run_id
        self._progress = DagProgress(
            dag=spec.name,
            status="running",
            nodes={n.id: NodeProgress(upstream=n.upstream()) for n in spec.nodes},
        )
        workflow.upsert_search_attributes([DAG_ATTR.value_set(spec.name)])
        info = workflow.info()
        key = naming.dag_key(info.workflow_id, info.first_execution_run_id)

        projects = await self._resolve(spec)
        self._check_parameters(spec, projects)

        opened = await self._open(
            OpenDagRunInput(
                key=key,
                workflow_id=info.workflow_id,
                experiment_name=spec.experiment_name,
                run_name=inp.run_name or spec.name,
                dag_name=spec.name,
                dag_version=inp.template_version,
                owner=inp.owner,
                parameters=spec.parameters,
                spec=inp.spec,
            )
        )
        self._progress.mlflow_run_id = opened.run_id
        self._progress.experiment_id = opened.experiment_id
        workflow.upsert_search_attributes([MLFLOW_RUN_ATTR.value_set(opened.run_id)])

        results: dict[str, NodeResult] = {}
        for node_id, reused in inp.reuse.items():
            if reused.status == "succeeded" and node_id in self._progress.nodes:
                results[node_id] = reused
                progress = self._progress.nodes[node_id]
                progress.state = "succeeded"
                progress.node_run_id = reused.node_run_id
                progress.partitions = ["succeeded"] * reused.partitions
        try:
            await self._schedule(spec, key, opened, projects, results)
        except asyncio.CancelledError:
            self._progress.status = "cancelled"
            await self._close(opened.run_id, "KILLED", "cancelled")
            raise
        states = {n: p.state for n, p in self._progress.nodes.items()}
        status = scheduling.dag_status(states)
        error = next(
            (f"node '{n}' failed: {r.error}" for n, r in results.items() if r.status == "failed"),
            None,
        )
        self._progress.status = status
        self._progress.error = error
        await self._close(opened.run_id, "FINISHED" if status == "succeeded" else "FAILED", error)
        result = DagRunResult(
            dag=spec.name,
            status=status,
            mlflow_run_id=opened.run_id,
            experiment_id=opened.experiment_id,
            nodes=results,
            error=error,
        )
        if status != "succeeded":
            raise ApplicationError(
                f"DAG '{spec.name}' {status}: {error}", result, type="DagFailed", non_retryable=True
            )
        return result

    def _validate(self, inp: DagRunInput) -> DagSpec:
        try:
            spec = apply_overrides(load_spec(inp.spec), inp.parameters)
            if inp.adopt_run_id and (len(spec.nodes) != 1 or spec.nodes[0].parallelism != 1):
                raise SpecInvalid(
                    [Problem("nodes", "adopt_run_id needs exactly one node with parallelism 1")]
                )
            return spec
        except SpecInvalid as e:
            self._progress.status = "failed"
            self._progress.error = str(e)
            raise ApplicationError(str(e), type="SpecInvalid", non_retryable=True) from None

    async def _resolve(self, spec: DagSpec) -> dict[str, ResolvedProject]:
        """Resolve every distinct project ref once; the commits are recorded in history."""
        refs = {
            n.id: ResolveInput(
                uri=n.project.uri, version=n.project.version, subdirectory=n.project.subdirectory
            )
            for n in spec.nodes
        }
        unique = list({r.model_dump_json(): r for r in refs.values()}.values())
        try:
            resolved = await asyncio.gather(
                *(
                    bookkeeping(
                        "resolve_project",
                        r,
                        ResolvedProject,
                        timeout=timedelta(minutes=10),
                        retry=_RESOLVE_RETRY,
                    )
                    for r in unique
                )
            )
        except Exception as e:
            # A cancel while resolving arrives as an ActivityError: it is a cancel, not a failure.
            if is_cancelled_exception(e) and workflow.patched("cancel-while-resolving"):
                self._progress.status = "cancelled"
                raise asyncio.CancelledError() from e
            self._fail(error_message(e))
        by_ref = {r.model_dump_json(): p for r, p in zip(unique, resolved, strict=True)}
        return {node: by_ref[r.model_dump_json()] for node, r in refs.items()}

    async def _open(self, inp: OpenDagRunInput) -> OpenRunResult:
        """The DAG's MLflow run, opened; a cancel meanwhile closes it KILLED, never RUNNING."""
        if not workflow.patched("cancel-while-opening"):
            return await bookkeeping("open_dag_run", inp, OpenRunResult)
        # The activity does not heartbeat, so a cancel would not reach it: it would open the run
        # after the workflow had ended, and leave it RUNNING. Shielded, it is waited for instead.
        opening = asyncio.ensure_future(bookkeeping("open_dag_run", inp, OpenRunResult))
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            self._progress.status = "cancelled"
            try:
                opened = await opening
            except ActivityError:
                raise asyncio.CancelledError() from None  # nothing was opened to close
            await self._close(opened.run_id, "KILLED", "cancelled")
            raise

    def _check_parameters(self, spec: DagSpec, projects: dict[str, ResolvedProject]) -> None:
        problems: list[str] = []
        for i, node in enumerate(spec.nodes):
            project = projects[node.id].project
            try:
                ep = project.entry_point(node.entry_point)
            except Exception as e:
                problems.append(f"nodes[{i}].entry_point: {e}")
                continue
            params = resolve_parameters(node, spec.parameters)
            problems.extend(f"nodes[{i}].parameters: {p}" for p in check_parameters(ep, params))
        if problems:
            self._fail("invalid DAG run:\n" + "\n".join(f"  {p}" for p in problems))

    def _fail(self, message: str) -> NoReturn:
        self._progress.status = "failed"
        self._progress.error = message
        raise ApplicationError(message, type="DagInvalid", non_retryable=True)

    async def _schedule(
        self,
        spec: DagSpec,
        key: str,
        opened: OpenRunResult,
        projects: dict[str, ResolvedProject],
        results: dict[str, NodeResult],
    ) -> None:
        deps = scheduling.dependencies(spec)
        nodes = self._progress.nodes
        running: dict[str, asyncio.Task[NodeResult]] = {}
        stopping = False
        try:
            while True:
                states: dict[str, RunStatus] = {n: p.state for n, p in nodes.items()}
                for n in scheduling.blocked_nodes(deps, states):
                    nodes[n].state = "skipped"
                    results[n] = NodeResult(node_id=n, status="skipped")
                if not stopping:
                    for n in scheduling.ready_nodes(deps, states):
                        nodes[n].state = "running"
                        nodes[n].started_at = workflow.now()
                        running[n] = asyncio.create_task(
                            self._run_node(spec, n, key, opened, projects[n], results)
                        )
                if not running:
                    return
                await workflow.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
                for n, task in list(running.items()):
                    if not task.done():
                        continue
                    del running[n]
                    res = task.result()
                    results[n] = res
                    nodes[n].state = res.status
                    nodes[n].ended_at = workflow.now()
                    nodes[n].error = res.error
                    nodes[n].node_run_id = res.node_run_id or nodes[n].node_run_id
                    # A progress signal sent just before the child ended may arrive after this
                    # workflow does; the result's own states are final.
                    if res.partition_states:
                        nodes[n].partitions = list(res.partition_states)
                    if res.status == "failed" and spec.fail_fast and not stopping:
                        stopping = True
                        for other in running.values():
                            other.cancel()
                if stopping:
                    for n, p in nodes.items():
                        if p.state == "pending":
                            p.state = "skipped"
                            results[n] = NodeResult(node_id=n, status="skipped")
        except asyncio.CancelledError:
            for task in running.values():
                task.cancel()
            done = await asyncio.gather(*running.values(), return_exceptions=True)
            for n, outcome in zip(list(running), done, strict=True):
                nodes[n].state = outcome.status if isinstance(outcome, NodeResult) else "cancelled"
                nodes[n].ended_at = workflow.now()
            raise

    async def _run_node(
        self,
        spec: DagSpec,
        node_id: str,
        key: str,
        opened: OpenRunResult,
        project: ResolvedProject,
        results: dict[str, NodeResult],
    ) -> NodeResult:
        node = spec.node(node_id)
        progress = self._progress.nodes[node_id]
        upstream = {u: results[u].output_roots for u in node.upstream()}
        try:
            res = await workflow.execute_child_workflow(
                NodeWorkflow.run,
                NodeRunInput(
                    dag_key=key,
                    dag_workflow_id=workflow.info().workflow_id,
                    dag_name=spec.name,
                    experiment_id=opened.experiment_id,
                    dag_run_id=opened.run_id,
                    node=node,
                    project=project,
                    parameters=resolve_parameters(node, spec.parameters),
                    upstream_roots=upstream,
                    adopt_run_id=self._adopt_run_id,
                ),
                id=naming.node_workflow_id(workflow.info().workflow_id, node_id),
            )
        except asyncio.CancelledError:
            return NodeResult(node_id=node_id, status="cancelled", node_run_id=progress.node_run_id)
        except ChildWorkflowError as e:
            details = getattr(e.cause, "details", None) or ()
            if details and isinstance(details[0], dict):
                failed = NodeResult.model_validate(details[0])
                return failed.model_copy(update={"status": "failed"})
            if isinstance(e.cause, CancelledError):  # cancelled from outside this DAG run
                return NodeResult(node_id=node_id, status="cancelled")
            return NodeResult(node_id=node_id, status="failed", error=error_message(e))
        progress.node_run_id = res.node_run_id
        return res

    async def _close(self, run_id: str, status: MlflowStatus, error: str | None) -> None:
        await bookkeeping("close_run", CloseRunInput(run_id=run_id, status=status, error=error))
