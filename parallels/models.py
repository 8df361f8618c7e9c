"""Inputs and outputs of workflows and activities: one module shared by every layer.

Plain pydantic models, so `temporal workflow start --input '{json}'` can build them and the
API returns them as they are. Nothing here is large: file lists travel by artifact URI.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from parallels.mlproject import EntryPointSpec, ProjectSpec
from parallels.spec import EnvManager, NodeInput, NodeSpec, Resources, RunStatus, Scalar

MlflowStatus = Literal["FINISHED", "FAILED", "KILLED"]


class DagRunInput(BaseModel):
    # Raw on purpose: a spec that fails validation must fail the workflow with a readable
    # error, not fail the workflow task (which Temporal retries forever).
    spec: dict[str, Any]
    parameters: dict[str, Scalar] = Field(default_factory=dict)
    run_name: str | None = None
    template_version: int | None = None
    owner: str | None = None
    #: Results of nodes that succeeded in an earlier run of the same DAG (a retry): they are not
    #: run again, and their outputs feed the nodes downstream.
    reuse: dict[str, NodeResult] = Field(default_factory=dict)
    #: An existing MLflow run that the only partition of a one-node, parallelism-1 DAG logs
    #: into (a single-project run: `mlflow run --backend parallels` reports this run).
    adopt_run_id: str | None = None


class ResolvedProject(BaseModel):
    uri: str
    version: str | None
    subdirectory: str
    commit: str
    project: ProjectSpec


class ResolveInput(BaseModel):
    uri: str
    version: str | None = None
    subdirectory: str = ""


class OpenDagRunInput(BaseModel):
    key: str
    workflow_id: str
    experiment_name: str
    run_name: str
    dag_name: str
    dag_version: int | None
    owner: str | None
    parameters: dict[str, Scalar]
    spec: dict[str, Any]


class OpenRunResult(BaseModel):
    run_id: str
    experiment_id: str


class OpenNodeRunInput(BaseModel):
    key: str
    workflow_id: str
    experiment_id: str
    parent_run_id: str
    dag_name: str
    node_id: str
    project: ResolvedProject
    entry_point: str
    parameters: dict[str, Scalar]


class CloseRunInput(BaseModel):
    run_id: str
    status: MlflowStatus
    metrics: dict[str, float] = Field(default_factory=dict)
    error: str | None = None


class PrepareEnvInput(BaseModel):
    project: ResolvedProject
    env_manager: EnvManager


class PreparedEnv(BaseModel):
    source_dir: str  # the project directory (subdirectory applied) on the worker's machine
    python: str  # interpreter that runs the entry point
    env_id: str  # "local" or the content hash of the environment spec
    #: Kubernetes clusters: the environment image the partition pods run.
    image: str | None = None


class PlanInput(BaseModel):
    node_run_id: str
    node_id: str
    inputs: list[NodeInput]
    upstream_roots: dict[str, list[str]]  # upstream node id -> artifact URIs of its output
    parallelism: int


class PlanResult(BaseModel):
    manifest_uri: str
    digest: str
    partitions: int
    files: int
    bytes: int


class PartitionInput(BaseModel):
    key: str
    workflow_id: str
    experiment_id: str
    node_run_id: str
    dag_name: str
    node_id: str
    index: int
    count: int
    manifest_uri: str
    digest: str
    project: ResolvedProject
    entry_point: EntryPointSpec
    parameters: dict[str, Scalar]
    env: PreparedEnv
    retries: int = 0
    adopt_run_id: str | None = None
    resources: Resources = Field(default_factory=Resources)


class PartitionResult(BaseModel):
    index: int
    run_id: str
    exit_code: int
    seconds: float


class NodeRunInput(BaseModel):
    dag_key: str
    dag_workflow_id: str
    dag_name: str
    experiment_id: str
    dag_run_id: str
    node: NodeSpec
    project: ResolvedProject
    parameters: dict[str, Scalar]
    upstream_roots: dict[str, list[str]]
    max_in_flight: int = 200
    adopt_run_id: str | None = None


class NodeResult(BaseModel):
    node_id: str
    status: RunStatus
    node_run_id: str | None = None
    commit: str | None = None
    partitions: int = 0
    partition_run_ids: list[str] = Field(default_factory=list)
    output_roots: list[str] = Field(default_factory=list)
    #: Final state of each partition; the authoritative end of the progress signals.
    partition_states: list[RunStatus] = Field(default_factory=list)
    error: str | None = None


class PartitionUpdate(BaseModel):
    """Signal from a node workflow to its DAG workflow: partition states that changed."""

    node_id: str
    total: int
    changes: dict[int, RunStatus]


class NodeProgress(BaseModel):
    state: RunStatus = "pending"
    node_run_id: str | None = None
    partitions: list[RunStatus] = Field(default_factory=list)
    error: str | None = None
    #: The nodes this one waits for, so a client can draw the graph from progress alone.
    upstream: list[str] = Field(default_factory=list)
    #: Workflow time (deterministic) the node started and ended in this run; None if reused.
    started_at: datetime | None = None
    ended_at: datetime | None = None


class DagProgress(BaseModel):
    dag: str
    status: RunStatus
    mlflow_run_id: str | None = None
    experiment_id: str | None = None
    nodes: dict[str, NodeProgress]
    error: str | None = None


class DagRunResult(BaseModel):
    dag: str
    status: RunStatus
    mlflow_run_id: str | None
    experiment_id: str | None
    nodes: dict[str, NodeResult]
    error: str | None = None


class AwaitWorkerInput(BaseModel):
    cluster: str
    task_queue: str
