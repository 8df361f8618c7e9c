"""The Kubernetes path on a real cluster (kind, minikube, EKS, ...): `pytest -m k8s`.

Skipped unless configured; docs/kubernetes.md ("Testing against a real cluster") tells how:

- PARALLELS_TEST_K8S_CLUSTER: a cluster as JSON, the keys of a `[[kube_clusters]]` table
  (its `tracking_uri` is MLflow as the pods reach it);
- PARALLELS_TEST_K8S_MLFLOW: the same MLflow as this machine reaches it (default: that URI);
- PARALLELS_TEST_K8S_REPO: a git URL the cluster can clone holding this repository (for
  tests/k8s/project), and PARALLELS_TEST_K8S_VERSION: its branch or commit (default: main).

Temporal is the test session's own dev server; the worker runs here, the pods in the cluster.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from kubernetes import client as k8s
from mlflow.tracking import MlflowClient
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import CancelledError

import worker as worker_mod
from activities.kube import api_client
from parallels.pods import ClusterConfig
from parallels.settings import Settings
from parallels.watch import start_dag
from tests.integration.helpers import by_kind, runs_of

CLUSTER = os.environ.get("PARALLELS_TEST_K8S_CLUSTER", "")
REPO = os.environ.get("PARALLELS_TEST_K8S_REPO", "")

pytestmark = [
    pytest.mark.k8s,
    pytest.mark.skipif(
        not (CLUSTER and REPO),
        reason="no real cluster: set PARALLELS_TEST_K8S_CLUSTER and PARALLELS_TEST_K8S_REPO",
    ),
]


@pytest.fixture
def cluster() -> ClusterConfig:
    return ClusterConfig.model_validate_json(CLUSTER)


@pytest.fixture
def k8s_settings(settings: Settings, cluster: ClusterConfig) -> Settings:
    mlflow = os.environ.get("PARALLELS_TEST_K8S_MLFLOW") or cluster.tracking_uri
    return settings.model_copy(update={"kube_clusters": [cluster], "mlflow_tracking_uri": mlflow})


@pytest_asyncio.fixture
async def cluster_worker(
    client: Client, k8s_settings: Settings, cluster: ClusterConfig
) -> AsyncIterator[None]:
    workers = worker_mod.build_workers(client, k8s_settings, clusters=[cluster.name])
    async with worker_mod.running(workers):
        yield


def smoke_node(id: str, cluster: ClusterConfig, entry: str, **kw: Any) -> dict[str, Any]:
    project = {
        "uri": REPO,
        "version": os.environ.get("PARALLELS_TEST_K8S_VERSION", "main"),
        "subdirectory": "tests/k8s/project",
    }
    return {"id": id, "project": project, "entry_point": entry, "cluster": cluster.name, **kw}


def pods_of(cluster: ClusterConfig, workflow_id: str) -> list[Any]:
    core = k8s.CoreV1Api(api_client(cluster))
    selector = f"parallels.io/workflow={workflow_id}"
    pods = core.list_namespaced_pod(cluster.namespace, label_selector=selector).items
    # Filtered here too: an API emulator (used to check this suite) may ignore the selector.
    return [
        p for p in pods if (p.metadata.labels or {}).get("parallels.io/workflow") == workflow_id
    ]


async def test_dag_runs_in_the_cluster_and_leaves_no_pods(
    client, k8s_settings, cluster, cluster_worker
):
    spec = {
        "name": "k8s-smoke",
        "nodes": [
            smoke_node("emit", cluster, "emit", parameters={"n": 6}),
            smoke_node(
                "count",
                cluster,
                "count",
                parallelism=2,
                inputs=[{"name": "data", "source": {"node": "emit"}, "partition": "by_file"}],
            ),
        ],
    }
    wid = f"k8s-smoke-{uuid.uuid4().hex[:8]}"
    handle = await start_dag(client, spec, task_queue=k8s_settings.task_queue, workflow_id=wid)
    result = await asyncio.wait_for(handle.result(), 1800)  # a cold image build takes minutes
    assert result.status == "succeeded", result
    parts = by_kind(runs_of(k8s_settings, wid), "partition")
    assert len(parts) == 3 and all(p.info.status == "FINISHED" for p in parts)
    counts = [p.data.metrics["files"] for p in parts if "files" in p.data.metrics]
    assert sorted(counts) == [3.0, 3.0]
    mlflow = MlflowClient(k8s_settings.mlflow_tracking_uri)
    assert [f.path for f in mlflow.list_artifacts(parts[0].info.run_id, "logs")]
    assert pods_of(cluster, wid) == []


async def test_cancel_deletes_the_running_pods(client, k8s_settings, cluster, cluster_worker):
    spec = {"name": "k8s-cancel", "nodes": [smoke_node("s", cluster, "sleep", parallelism=2)]}
    wid = f"k8s-cancel-{uuid.uuid4().hex[:8]}"
    handle = await start_dag(client, spec, task_queue=k8s_settings.task_queue, workflow_id=wid)
    for _ in range(900):
        if sum(bool(p.status and p.status.phase == "Running") for p in pods_of(cluster, wid)) == 2:
            break
        await asyncio.sleep(2)
    else:
        pytest.fail("the pods never ran")
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as e:
        await handle.result()
    assert isinstance(e.value.cause, CancelledError)
    for _ in range(60):
        if not pods_of(cluster, wid):
            break
        await asyncio.sleep(2)
    assert pods_of(cluster, wid) == []
