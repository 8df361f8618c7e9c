"""Kubernetes clusters end to end: real Temporal, MLflow and git; the API server is kmock's
emulator over HTTP, the kubelet is played by the test (tests/kube_fakes.py) and really runs the
pods' containers as processes; the registry answers the OCI manifest HEAD.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from mlflow.tracking import MlflowClient
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import CancelledError

import worker as worker_mod
from parallels import naming
from parallels.pods import ClusterConfig
from parallels.settings import Settings
from parallels.watch import start_dag
from tests.conftest import wait_for
from tests.integration.helpers import (
    by_kind,
    node,
    run_dag,
    runs_of,
    served_api,
    steps_repo,
)
from tests.kube_fakes import NS, Behaviour, FakeApiServer, FakeKubelet, FakeRegistry

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FakeCluster:
    name: str
    api: FakeApiServer
    kubelet: FakeKubelet
    registry: FakeRegistry
    config: ClusterConfig
    behaviour: dict[str, Behaviour] = field(default_factory=dict)

    def created_pods(self) -> list[dict[str, Any]]:
        """Every partition pod the worker created, as sent (not the Job controller's)."""
        return [
            r.data
            for r in list(self.api.emulator)
            if str(r.method).endswith("POST")
            and str(r.url.path).endswith(f"/namespaces/{NS}/pods")
            and "parallels.io/node" in r.data["metadata"].get("labels", {})
        ]

    def step_pods(self) -> list[dict[str, Any]]:
        return [p for p in self.api.pods() if "job-name" not in (p["metadata"].get("labels") or {})]


def start_cluster(
    stack: ExitStack, name: str, settings: Settings, tmp: Path, **kubelet: Any
) -> FakeCluster:
    api = stack.enter_context(FakeApiServer())
    registry = stack.enter_context(FakeRegistry())
    rules: dict[str, Behaviour] = {}

    def behaviour(pod: dict[str, Any], seen: int) -> str:
        node_id = pod["metadata"]["labels"]["parallels.io/node"]
        rule = rules.get(node_id) or rules.get("*")
        return rule(pod, seen) if rule else "run"

    kl = stack.enter_context(
        FakeKubelet(api, tmp / f"kubelet-{name}", behaviour, registry=registry, **kubelet)
    )
    config = ClusterConfig(
        name=name,
        context=name,
        kubeconfig=str(api.kubeconfig(tmp / f"kubeconfig-{name}", name)),
        namespace=NS,
        registry=f"{registry.host}/ml",
        tracking_uri=settings.mlflow_tracking_uri,
        insecure_registry=True,
        unschedulable_seconds=2,
        image_pull_seconds=2,
        poll_seconds=1,
    )
    return FakeCluster(name, api, kl, registry, config, rules)


@pytest_asyncio.fixture
async def k1(client: Client, settings: Settings, tmp_path: Path) -> AsyncIterator[FakeCluster]:
    with ExitStack() as stack:
        cluster = start_cluster(stack, "k1", settings, tmp_path)
        s = settings.model_copy(update={"kube_clusters": [cluster.config]})
        async with worker_mod.running(worker_mod.build_workers(client, s, clusters=["k1"])):
            yield cluster
        assert not cluster.kubelet.errors, cluster.kubelet.errors


def kube_node(id: str, repo: Path, entry: str, cluster: str = "k1", **kw: Any) -> dict[str, Any]:
    return node(id, repo, entry, cluster=cluster, **kw)


async def test_dag_spanning_two_clusters_builds_each_image_once_and_cleans_up(
    client, settings, tmp_path
):
    repo = steps_repo(tmp_path)
    with ExitStack() as stack:
        c1 = start_cluster(stack, "cpu", settings, tmp_path)
        c2 = start_cluster(stack, "gpu", settings, tmp_path)
        s = settings.model_copy(update={"kube_clusters": [c1.config, c2.config]})
        # Each cluster's worker holds only its own credentials and serves only its queue.
        workers = [
            *worker_mod.build_workers(client, s, clusters=[]),
            *worker_mod.build_workers(client, s, clusters=["cpu"], control=False),
            *worker_mod.build_workers(client, s, clusters=["gpu"], control=False),
        ]
        spec = {
            "name": "two-clusters",
            "nodes": [
                kube_node("emit", repo, "emit", cluster="cpu", parameters={"n": 4}),
                kube_node(
                    "prep",
                    repo,
                    "copy",
                    cluster="cpu",
                    parameters={"tag": "p"},
                    inputs=[{"name": "data", "source": {"node": "emit"}}],
                ),
                kube_node(
                    "infer",
                    repo,
                    "copy",
                    cluster="gpu",
                    parallelism=2,
                    resources={"gpu": 1, "memory": "1Gi"},
                    parameters={"tag": "i"},
                    inputs=[{"name": "data", "source": {"node": "prep"}, "partition": "by_file"}],
                ),
            ],
        }
        async with worker_mod.running(workers):
            wid, result, error = await run_dag(client, settings, spec)
        assert error is None, error
        assert result is not None and result.status == "succeeded"

        # Pods ran where their nodes said: 2 on cpu, 2 on gpu; none is left behind.
        assert len(c1.kubelet.modes) == 2 and len(c2.kubelet.modes) == 2
        assert {p["metadata"]["labels"]["parallels.io/node"] for p in c2.created_pods()} == {
            "infer"
        }
        assert c1.step_pods() == [] and c2.step_pods() == []
        # One environment image per cluster, built once although two nodes needed it on cpu.
        assert c1.api.requests_to("POST", "/jobs") == 1
        assert c2.api.requests_to("POST", "/jobs") == 1
        assert len(c1.registry.images) == 1 and len(c2.registry.images) == 1

        mlflow = MlflowClient(settings.mlflow_tracking_uri)
        infer = result.nodes["infer"].partition_run_ids
        outputs = sorted(f.path for r in infer for f in mlflow.list_artifacts(r, "output"))
        assert outputs == [f"output/i-p-f00{i}.txt" for i in range(4)]
        # The pod's log is kept on its partition run.
        logs = mlflow.list_artifacts(infer[0], "logs")
        assert [f.path for f in logs] == ["logs/attempt-1.log"]
        text = Path(mlflow.download_artifacts(infer[0], "logs/attempt-1.log")).read_text()
        assert "copied partition 0" in text
        parts = by_kind(runs_of(settings, wid), "partition")
        assert len(parts) == 4 and {r.info.status for r in parts} == {"FINISHED"}
        # The pod logged where its time went, as a local partition does.
        for r in parts:
            m = r.data.metrics
            assert {"fetch_seconds", "command_seconds", "upload_seconds"} <= m.keys(), m
            assert m["command_seconds"] > 0
        files = sorted(
            (r.data.tags["parallels.node"], r.data.metrics["input_files"]) for r in parts
        )
        assert files == [("emit", 0), ("infer", 2), ("infer", 2), ("prep", 4)]


def _mode_by_attempt(*modes: str) -> Behaviour:
    """The kubelet plays modes[n] for the n-th pod of a name (the last one repeats)."""
    return lambda pod, seen: modes[min(seen, len(modes)) - 1]


@pytest.mark.parametrize(
    ("modes", "entry", "retries", "expected_pods", "message"),
    [
        (("oom",), "copy", 1, 2, "used more memory than its limit"),
        (("run",), "fail", 1, 2, "exited with code 3"),
        (("pull_error",), "copy", 2, 1, "cannot pull image"),
        (("unschedulable",), "copy", 2, 1, "Insufficient nvidia.com/gpu"),
    ],
    ids=["oom-retried-per-policy", "exit-code", "image-pull", "unschedulable"],
)
async def test_pod_failures_reach_the_user_with_their_cause(
    client, settings, tmp_path, k1, modes, entry, retries, expected_pods, message
):
    repo = steps_repo(tmp_path)
    k1.behaviour["*"] = _mode_by_attempt(*modes)
    spec = {"name": "fails", "nodes": [kube_node("s", repo, entry, retries=retries)]}
    started = time.monotonic()
    wid, result, error = await run_dag(client, settings, spec)
    assert result is None and error is not None
    assert message in str(error)
    assert len(k1.kubelet.modes) == expected_pods
    assert time.monotonic() - started < 60
    assert k1.step_pods() == []  # failed pods are removed too, once their log is kept
    parts = by_kind(runs_of(settings, wid), "partition")
    assert len(parts) == 1 and parts[0].info.status == "FAILED"
    assert message in parts[0].data.tags["parallels.error"]


async def test_evicted_pod_is_retried_without_counting_against_retries(
    client, settings, tmp_path, k1
):
    repo = steps_repo(tmp_path)
    k1.behaviour["*"] = _mode_by_attempt("evict", "run")
    spec = {"name": "evicted", "nodes": [kube_node("s", repo, "emit", retries=0)]}
    wid, result, error = await run_dag(client, settings, spec)
    assert error is None, error
    assert [m for _, m in k1.kubelet.modes] == ["evict", "run"]
    parts = by_kind(runs_of(settings, wid), "partition")
    assert len(parts) == 1 and parts[0].info.status == "FINISHED"
    assert "parallels.failures" not in parts[0].data.tags


async def test_single_project_run_on_a_cluster_logs_into_the_run_it_returns(
    client, settings, tmp_path, k1
):
    """`mlflow run --backend parallels` with `cluster: k1`: one pod, the caller's MLflow run."""
    from mlflow_parallels_plugin.backend import ParallelsBackend

    repo = steps_repo(tmp_path)
    tracking = MlflowClient(settings.mlflow_tracking_uri)
    exp = tracking.create_experiment(f"kube-backend-{uuid.uuid4().hex[:6]}")
    async with served_api(client, settings, tmp_path, kube_clusters=[k1.config]) as url:
        config = {"api_url": url, "token": "alice-token", "cluster": "k1", "wait": True}
        submitted = await asyncio.to_thread(
            ParallelsBackend().run, str(repo), "emit", {"n": 3}, None, config,
            settings.mlflow_tracking_uri, exp,
        )  # fmt: skip
        assert await asyncio.to_thread(submitted.get_status) == "FINISHED"
    mlflow_run = tracking.get_run(submitted.run_id)
    assert mlflow_run.info.experiment_id == exp
    assert mlflow_run.info.status == "FINISHED" and mlflow_run.data.params["n"] == "3"
    [pod] = k1.created_pods()
    assert pod["metadata"]["labels"]["parallels.io/node"] == "emit"  # the entry point
    assert k1.step_pods() == []
    outputs = tracking.list_artifacts(mlflow_run.info.run_id)
    assert {f.path for f in outputs} >= {"output", "logs"}


async def test_failed_image_build_shows_the_build_log(client, settings, tmp_path):
    repo = steps_repo(tmp_path)
    with ExitStack() as stack:
        cluster = start_cluster(stack, "k1", settings, tmp_path, build_fails=True)
        s = settings.model_copy(update={"kube_clusters": [cluster.config]})
        async with worker_mod.running(worker_mod.build_workers(client, s, clusters=["k1"])):
            spec = {"name": "badenv", "nodes": [kube_node("s", repo, "emit")]}
            _, result, error = await run_dag(client, settings, spec)
        assert result is None and error is not None
        assert "building the environment image" in str(error)
        assert "No matching distribution found for nonexistent-package-xyz" in str(error)
        assert cluster.kubelet.modes == []  # no partition pod without an image
        # The failed Job is removed, so a later run builds again.
        assert cluster.api.jobs() == []


async def test_cancelling_a_run_deletes_its_pods(client, settings, tmp_path, k1):
    repo = steps_repo(tmp_path)
    pids = tmp_path / "pids"
    pids.mkdir()
    spec = {
        "name": "cancel-k8s",
        "nodes": [kube_node("s", repo, "sleep", parallelism=2, parameters={"pids": str(pids)})],
    }
    handle = await start_dag(client, spec, task_queue=settings.task_queue)
    await asyncio.to_thread(wait_for, lambda: len(list(pids.iterdir())) == 2, 60)
    assert len(k1.step_pods()) == 2
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert isinstance(failed.value.cause, CancelledError)
    await asyncio.to_thread(wait_for, lambda: k1.step_pods() == [], 15)
    for pid_file in pids.iterdir():  # the kubelet stopped the deleted pods' processes
        await asyncio.to_thread(wait_for, lambda f=pid_file: not _alive(int(f.read_text())), 15)
    parts = by_kind(runs_of(settings, handle.id), "partition")
    assert len(parts) == 2 and {r.info.status for r in parts} == {"KILLED"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (its parent has not reaped it yet).
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _start_cluster_worker(settings: Settings, cluster: ClusterConfig, log: Path) -> Any:
    env = {
        **os.environ,
        "PARALLELS_TEMPORAL_ADDRESS": settings.temporal_address,
        "PARALLELS_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "PARALLELS_TASK_QUEUE": settings.task_queue,
        "PARALLELS_STATE_DIR": str(settings.state_dir),
        "PARALLELS_HEARTBEAT_SECONDS": "1",
        "PARALLELS_WORKER_SHUTDOWN_SECONDS": "1",
        "PARALLELS_KUBE_CLUSTERS": json.dumps([cluster.model_dump(mode="json")]),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "parallels", "worker", "--cluster", cluster.name],
        env=env,
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "drained"])
async def test_restarted_worker_awaits_the_running_pod_instead_of_starting_another(
    client, settings, tmp_path, stop
):
    """SIGKILL: the attempt times out on its heartbeat. SIGTERM (a drained worker, a rolling
    update): the worker leaves the pod running and Temporal retries the attempt at once."""
    repo = steps_repo(tmp_path)
    release = threading.Event()
    with ExitStack() as stack:
        cluster = start_cluster(stack, "k1", settings, tmp_path)
        # The pod "runs" (held) until the test lets the kubelet run it for real.
        cluster.behaviour["*"] = lambda pod, seen: "hold_then_run"
        cluster.kubelet.release = release
        log = tmp_path / "worker.log"
        async with AsyncExitStack() as astack:
            await astack.enter_async_context(
                worker_mod.running(worker_mod.build_workers(client, settings, clusters=[]))
            )
            first = _start_cluster_worker(settings, cluster.config, log)
            spec = {"name": "reattach", "nodes": [kube_node("s", repo, "emit")]}
            handle = await start_dag(client, spec, task_queue=settings.task_queue)
            await asyncio.to_thread(wait_for, lambda: len(cluster.step_pods()) == 1, 60)
            first.send_signal(stop)
            assert first.wait(30) == (0 if stop == signal.SIGTERM else -signal.SIGKILL)
            second = _start_cluster_worker(settings, cluster.config, log)
            try:
                node_wf = client.get_workflow_handle(naming.node_workflow_id(handle.id, "s"))
                await _wait_attempt(node_wf, 2, timeout=90)
                release.set()
                result = await asyncio.wait_for(handle.result(), 90)
            finally:
                second.terminate()
                second.wait(30)
        assert result.status == "succeeded", log.read_text()
        # One pod ever: the second worker's create met 409 and it awaited that pod.
        # (the kubelet plays every new pod: a recreated one would show as a second mode)
        assert len(cluster.kubelet.modes) == 1
        parts = by_kind(runs_of(settings, handle.id), "partition")
        assert len(parts) == 1 and parts[0].info.status == "FINISHED"


async def _wait_attempt(handle: Any, attempt: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = await handle.describe()
        pending = desc.raw_description.pending_activities
        if any(
            a.activity_type.name == "run_partition"
            and a.attempt >= attempt
            and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            for a in pending
        ):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"run_partition never reached attempt {attempt}")
