"""MLflow records: DAG parent run -> node runs -> partition runs, created idempotently.

A run is found by its `parallels.key` tag (a digest of workflow id, node and partition) before one
is created, so a retried activity never makes a second run.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from temporalio import activity

from activities.errors import translate_errors
from parallels.errors import ParallelsError, TransientError
from parallels.models import (
    CloseRunInput,
    OpenDagRunInput,
    OpenNodeRunInput,
    OpenRunResult,
    ResolvedProject,
)
from parallels.naming import KEY_TAG
from parallels.spec import Scalar

MAX_PARAM = 6000
MAX_TAG = 5000
_PARAM_BATCH = 100


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def source_tags(project: ResolvedProject, entry_point: str) -> dict[str, str]:
    """The tags `mlflow run` itself sets, so MLflow's UI shows the source and commit."""
    return {
        "mlflow.source.type": "PROJECT",
        "mlflow.source.name": project.uri,
        "mlflow.source.git.commit": project.commit,
        "mlflow.source.git.repoURL": project.uri,
        "mlflow.gitRepoURL": project.uri,
        "mlflow.project.entryPoint": entry_point,
        "parallels.project.subdirectory": project.subdirectory,
        "parallels.project.version": project.version or "",
    }


class Tracking:
    """Thin idempotent layer over an MlflowClient; every method is safe to call twice."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client

    def experiment_id(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            try:
                return str(self.client.create_experiment(name))
            except MlflowException as e:
                if e.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                exp = self.client.get_experiment_by_name(name)
                assert exp is not None
        if exp.lifecycle_stage == "deleted":
            raise ParallelsError(
                f"MLflow experiment '{name}' is deleted: restore it or choose another experiment"
            )
        return str(exp.experiment_id)

    def ensure_run(
        self,
        experiment_id: str,
        key: str,
        run_name: str,
        tags: Mapping[str, str],
        parent_run_id: str | None = None,
    ) -> str:
        return self.ensure_run_with_tags(experiment_id, key, run_name, tags, parent_run_id)[0]

    def ensure_run_with_tags(
        self,
        experiment_id: str,
        key: str,
        run_name: str,
        tags: Mapping[str, str],
        parent_run_id: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """The run for `key` (found or created) and the tags it had when found."""
        digest = key_digest(key)
        found = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{KEY_TAG}` = '{digest}'",
            run_view_type=3,  # ViewType.ALL: a deleted run still owns its key
            max_results=1,
        )
        if found:
            run_id = str(found[0].info.run_id)
            if found[0].info.status != "RUNNING":
                self.client.update_run(run_id, status="RUNNING")
            return run_id, dict(found[0].data.tags)
        all_tags = {**tags, KEY_TAG: digest, "parallels.key_text": key[:MAX_TAG]}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(experiment_id, tags=all_tags, run_name=run_name)
        return str(run.info.run_id), all_tags

    def adopt_run(
        self, run_id: str, key: str, tags: Mapping[str, str], parent_run_id: str | None
    ) -> tuple[str, dict[str, str]]:
        """Take over a run made by the caller (a single-project run): tag it as `key`'s run.

        Tags are set only the first time, so a retried activity reads the failures it counted.
        """
        try:
            run = self.client.get_run(run_id)
        except MlflowException as e:
            if e.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise ParallelsError(f"MLflow run '{run_id}' to log into does not exist") from e
            raise
        existing = dict(run.data.tags)
        if existing.get(KEY_TAG) != key_digest(key):
            added = {**tags, KEY_TAG: key_digest(key), "parallels.key_text": key[:MAX_TAG]}
            if parent_run_id:
                added["mlflow.parentRunId"] = parent_run_id
            self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in added.items()])
            existing.update(added)
        if run.info.status != "RUNNING":
            self.client.update_run(run_id, status="RUNNING")
        return run_id, existing

    def log_params(self, run_id: str, params: Mapping[str, Scalar]) -> None:
        items = [Param(k[:250], str(v)[:MAX_PARAM]) for k, v in params.items()]
        for i in range(0, len(items), _PARAM_BATCH):
            try:
                self.client.log_batch(run_id, params=items[i : i + _PARAM_BATCH])
            except MlflowException as e:
                # A retry logs the same values again; MLflow refuses only changed values.
                if e.error_code != "INVALID_PARAMETER_VALUE":
                    raise

    def close(
        self, run_id: str, status: str, metrics: Mapping[str, float], error: str | None
    ) -> None:
        ts = int(time.time() * 1000)
        batch_metrics = [Metric(k, float(v), ts, 0) for k, v in metrics.items()]
        batch_tags = [RunTag("parallels.error", error[:MAX_TAG])] if error else []
        if batch_metrics or batch_tags:
            self.client.log_batch(run_id, metrics=batch_metrics, tags=batch_tags)
        self.client.set_terminated(run_id, status=status)


class TrackingActivities:
    """The bookkeeping activities of the control task queue."""

    def __init__(self, tracking: Tracking) -> None:
        self._t = tracking

    @activity.defn(name="open_dag_run")
    @translate_errors
    async def open_dag_run(self, inp: OpenDagRunInput) -> OpenRunResult:
        return await asyncio.to_thread(_mlflow_call, self._open_dag_run, inp)

    def _open_dag_run(self, inp: OpenDagRunInput) -> OpenRunResult:
        exp = self._t.experiment_id(inp.experiment_name)
        tags = {
            "parallels.dag": inp.dag_name,
            "parallels.dag_version": str(inp.dag_version or ""),
            "parallels.workflow_id": inp.workflow_id,
            "parallels.kind": "dag",
        }
        if inp.owner:
            tags["mlflow.user"] = inp.owner
        run_id = self._t.ensure_run(exp, inp.key, inp.run_name, tags)
        self._t.log_params(run_id, inp.parameters)
        self._t.client.log_dict(run_id, inp.spec, "parallels/dag.json")
        return OpenRunResult(run_id=run_id, experiment_id=exp)

    @activity.defn(name="open_node_run")
    @translate_errors
    async def open_node_run(self, inp: OpenNodeRunInput) -> OpenRunResult:
        return await asyncio.to_thread(_mlflow_call, self._open_node_run, inp)

    def _open_node_run(self, inp: OpenNodeRunInput) -> OpenRunResult:
        tags = {
            "parallels.dag": inp.dag_name,
            "parallels.node": inp.node_id,
            "parallels.workflow_id": inp.workflow_id,
            "parallels.kind": "node",
            **source_tags(inp.project, inp.entry_point),
        }
        run_id = self._t.ensure_run(
            inp.experiment_id, inp.key, inp.node_id, tags, inp.parent_run_id
        )
        self._t.log_params(run_id, inp.parameters)
        return OpenRunResult(run_id=run_id, experiment_id=inp.experiment_id)

    @activity.defn(name="close_run")
    @translate_errors
    async def close_run(self, inp: CloseRunInput) -> None:
        await asyncio.to_thread(
            _mlflow_call, lambda i: self._t.close(i.run_id, i.status, i.metrics, i.error), inp
        )


def _mlflow_call(fn, arg):  # type: ignore[no-untyped-def]
    """MLflow server errors are worth retrying; the activity's retry policy bounds them."""
    try:
        return fn(arg)
    except MlflowException as e:
        raise TransientError(f"MLflow: {e.message}") from e
    except OSError as e:  # connection refused and friends, raised by requests
        raise TransientError(f"MLflow unreachable: {e}") from e
