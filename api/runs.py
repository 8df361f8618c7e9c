"""DAG runs as the API sees them: started, read and cancelled in Temporal (the only run state)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.mlflow_runs import MlflowRuns
from api.models import ProjectRunBody
from api.specs import load_for
from parallels.errors import ParallelsError
from parallels.models import DagProgress, DagRunInput, DagRunResult, NodeResult
from parallels.projects import single_project_spec
from parallels.settings import Settings
from parallels.spec import Scalar
from parallels.watch import start_run
from workflows.dag import OWNER_ATTR

_STATUS = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "running",
    WorkflowExecutionStatus.COMPLETED: "succeeded",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
}
_QUERY_STATUS = {
    "running": "Running",
    "succeeded": "Completed",
    "failed": "Failed",
    "cancelled": "Canceled",
    "terminated": "Terminated",
}
STATUSES = tuple(_QUERY_STATUS)


class RunLinks(BaseModel):
    temporal: str
    mlflow: str | None = None


class Run(BaseModel):
    id: str
    dag: str | None
    status: str
    started_at: datetime | None
    closed_at: datetime | None
    owner: str | None = None
    template_version: int | None = None
    mlflow_run_id: str | None = None
    links: RunLinks
    retry_of: str | None = None
    #: For a single-project run: the MLflow run the project logs into.
    project_run_id: str | None = None
    progress: DagProgress | None = None


class RunService:
    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    @property
    def client(self) -> Client:
        return self._client

    async def start(
        self,
        raw_spec: dict[str, Any],
        *,
        parameters: Mapping[str, Scalar],
        run_name: str | None,
        owner: str,
        template_version: int | None,
    ) -> Run:
        inp = DagRunInput(
            spec=raw_spec,
            parameters=dict(parameters),
            run_name=run_name,
            template_version=template_version,
            owner=owner,
        )
        return await self._start(inp, retry_of=None)

    async def start_project(self, body: ProjectRunBody, owner: str, mlflow: MlflowRuns) -> Run:
        """One project entry point as a one-node DAG whose partition logs into one MLflow run."""
        raw = single_project_spec(
            body.project(),
            entry_point=body.entry_point,
            parameters=body.parameters,
            experiment=body.experiment,
            cluster=body.cluster,
            resources=body.resources,
            timeout=body.timeout,
            retries=body.retries,
            env_manager=body.env_manager,
        )
        spec = load_for(self._settings, raw)
        created = body.mlflow_run_id is None
        mlflow_run_id = body.mlflow_run_id or await mlflow.create_run(
            spec.experiment_name,
            body.run_name or spec.nodes[0].id,
            {
                "mlflow.source.type": "PROJECT",
                "mlflow.source.name": body.uri,
                "mlflow.project.entryPoint": body.entry_point,
                "mlflow.user": owner,
                "parallels.dag": spec.name,
            },
        )
        inp = DagRunInput(spec=raw, run_name=body.run_name, owner=owner, adopt_run_id=mlflow_run_id)
        try:
            return await self._start(inp, retry_of=None)
        except BaseException:
            if created:  # nothing will ever log into it: do not leave it RUNNING
                with contextlib.suppress(Exception):
                    await mlflow.fail_run(mlflow_run_id)
            raise

    async def _start(self, inp: DagRunInput, retry_of: str | None) -> Run:
        memo: dict[str, Any] = {"owner": inp.owner, "template_version": inp.template_version}
        if retry_of:
            memo["retry_of"] = retry_of
        if inp.adopt_run_id:
            memo["project_run_id"] = inp.adopt_run_id
        handle = await start_run(self._client, inp, task_queue=self._settings.task_queue, memo=memo)
        return await self.get(handle.id, with_progress=False)

    async def retry(self, run_id: str, owner: str, *, viewer: str | None = None) -> Run:
        """A new run of the same spec, parameters and commits, reusing nodes that succeeded."""
        original = await self.get(run_id, with_progress=False, viewer=viewer)
        if original.status in ("running", "succeeded"):
            raise RetryRefused(
                f"run '{run_id}' {original.status}: only ended, unsuccessful runs retry"
            )
        handle = self._client.get_workflow_handle(run_id)
        history = await handle.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        [inp] = await self._client.data_converter.decode(started.input.payloads, [DagRunInput])
        nodes: dict[str, NodeResult] = {}
        try:
            await handle.result()
        except WorkflowFailureError as e:
            details = getattr(e.cause, "details", None) or ()
            if details and isinstance(details[0], dict) and "nodes" in details[0]:
                nodes = DagRunResult.model_validate(details[0]).nodes
        spec = dict(inp.spec)
        # Pin each node to the commit it ran at, so reused outputs and new work match.
        spec["nodes"] = [
            _pinned(n, nodes[n.get("id")].commit if n.get("id") in nodes else None)
            for n in spec.get("nodes", [])
        ]
        retried = inp.model_copy(
            update={
                "spec": spec,
                "owner": owner,
                "reuse": {k: v for k, v in nodes.items() if v.status == "succeeded"},
                # A retry gets fresh MLflow runs: the adopted one holds the old attempt's failures.
                "adopt_run_id": None,
            }
        )
        return await self._start(retried, retry_of=run_id)

    async def list(
        self, dag: str | None, status: str | None, limit: int, *, owner: str | None = None
    ) -> list[Run]:
        clauses = ["WorkflowType = 'DagRunWorkflow'"]
        if owner is not None:
            clauses.append(f"{OWNER_ATTR.name} = '{_quote(owner)}'")
        if dag:
            clauses.append(f"ParallelsDag = '{_quote(dag)}'")
        if status:
            clauses.append(f"ExecutionStatus = '{_QUERY_STATUS[status]}'")
        runs: list[Run] = []
        async for wf in self._client.list_workflows(" AND ".join(clauses), limit=limit):
            memo = await wf.memo()
            runs.append(self._run(wf.id, wf, memo))
        return runs

    async def get(
        self, run_id: str, *, with_progress: bool = True, viewer: str | None = None
    ) -> Run:
        handle = self._client.get_workflow_handle(run_id)
        desc = await handle.describe()
        if desc.workflow_type != "DagRunWorkflow":
            raise RPCError(f"workflow '{run_id}' is not a DAG run", RPCStatusCode.NOT_FOUND, b"")
        run = self._run(run_id, desc, await desc.memo())
        if viewer is not None and run.owner != viewer:
            # Someone else's run is as good as missing: its id tells nothing.
            raise RPCError(f"workflow '{run_id}' not found", RPCStatusCode.NOT_FOUND, b"")
        if with_progress:
            run.progress = await self.progress(handle)
            if run.progress is not None:
                run.mlflow_run_id = run.progress.mlflow_run_id
                run.dag = run.progress.dag or run.dag
                run.links.mlflow = self._mlflow_link(run.progress)
        return run

    async def progress(self, handle: WorkflowHandle[Any, Any]) -> DagProgress | None:
        try:
            found: DagProgress = await handle.query(
                "progress", result_type=DagProgress, rpc_timeout=timedelta(seconds=5)
            )
            return found
        except RPCError:
            return None  # no worker to answer right now: the rest of the run is still shown

    async def cancel(self, run_id: str, *, viewer: str | None = None) -> None:
        # 404 for unknown or non-DAG workflows, and for someone else's
        await self.get(run_id, with_progress=False, viewer=viewer)
        await self._client.get_workflow_handle(run_id).cancel()

    def _run(self, run_id: str, wf: Any, memo: Mapping[str, Any]) -> Run:
        dags = wf.search_attributes.get("ParallelsDag") if wf.search_attributes else None
        mlflow_ids = wf.search_attributes.get("MlflowRunId") if wf.search_attributes else None
        return Run(
            id=run_id,
            dag=dags[0] if dags else None,
            status=_STATUS.get(wf.status, "running") if wf.status else "running",
            started_at=wf.start_time,
            closed_at=wf.close_time,
            owner=memo.get("owner"),
            template_version=memo.get("template_version"),
            retry_of=memo.get("retry_of"),
            project_run_id=memo.get("project_run_id"),
            mlflow_run_id=mlflow_ids[0] if mlflow_ids else None,
            links=RunLinks(
                temporal=f"{self._settings.temporal_ui_url}/namespaces/"
                f"{self._settings.temporal_namespace}/workflows/{run_id}"
            ),
        )

    def _mlflow_link(self, p: DagProgress) -> str | None:
        if not (p.experiment_id and p.mlflow_run_id):
            return None
        base = self._settings.mlflow_tracking_uri.rstrip("/")
        return f"{base}/#/experiments/{p.experiment_id}/runs/{p.mlflow_run_id}"


class RetryRefused(ParallelsError):
    pass


def _pinned(node: Any, commit: str | None) -> Any:
    if not commit or not isinstance(node, dict) or not isinstance(node.get("project"), dict):
        return node
    return {**node, "project": {**node["project"], "version": commit}}


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
