"""DAG runs end to end on a real Temporal dev server, MLflow server, git repos and processes."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError

from parallels.models import DagProgress
from parallels.watch import start_dag
from tests.integration.helpers import by_kind, node, run_dag, runs_of, steps_repo

pytestmark = pytest.mark.usefixtures("worker")


def git_head(repo: Path) -> str:
    return (repo / ".git" / "refs" / "heads" / "main").read_text().strip()


async def test_diamond_dag_runs_in_dependency_order_and_records_everything(
    client, settings, tmp_path
):
    repo = steps_repo(tmp_path)
    ledger = tmp_path / "ledger.txt"
    spec = {
        "name": "diamond",
        "parameters": {"count": 6},
        "nodes": [
            node("a", repo, "emit", parameters={"n": "${count}"}),
            node(
                "b",
                repo,
                "copy",
                parallelism=3,
                parameters={"tag": "b", "ledger": str(ledger)},
                inputs=[{"name": "data", "source": {"node": "a"}, "partition": "by_file"}],
            ),
            node(
                "c",
                repo,
                "copy",
                parallelism=2,
                parameters={"tag": "c", "ledger": str(ledger)},
                inputs=[{"name": "data", "source": {"node": "a"}, "partition": "by_file"}],
            ),
            node(
                "d",
                repo,
                "copy",
                parameters={"tag": "d", "ledger": str(ledger)},
                inputs=[
                    {"name": "fromb", "source": {"node": "b"}},
                    {"name": "fromc", "source": {"node": "c"}},
                ],
            ),
        ],
    }
    wid, result, error = await run_dag(client, settings, spec)
    assert error is None, error
    assert result is not None and result.status == "succeeded"
    assert {n: r.partitions for n, r in result.nodes.items()} == {"a": 1, "b": 3, "c": 2, "d": 1}

    # d saw every file of b and c: 6 files through each branch.
    mlflow = MlflowClient(settings.mlflow_tracking_uri)
    d_run = result.nodes["d"].partition_run_ids[0]
    names = sorted(f.path for f in mlflow.list_artifacts(d_run, "output"))
    assert len(names) == 12
    assert names[0] == "output/d-b-f000.txt" and names[-1] == "output/d-c-f005.txt"

    # d started only after every partition of b and c ended.
    events = [line.split() for line in ledger.read_text().splitlines()]
    d_start = min(float(t) for tag, _, ev, t in events if tag == "d" and ev == "start")
    assert all(float(t) <= d_start for tag, _, ev, t in events if tag in "bc" and ev == "end")

    runs = runs_of(settings, wid)
    dag_runs, node_runs, parts = (
        by_kind(runs, "dag"),
        by_kind(runs, "node"),
        by_kind(runs, "partition"),
    )
    assert len(dag_runs) == 1 and len(node_runs) == 4 and len(parts) == 7
    assert {r.info.status for r in runs} == {"FINISHED"}
    parent = dag_runs[0].info.run_id
    assert parent == result.mlflow_run_id
    assert all(r.data.tags["mlflow.parentRunId"] == parent for r in node_runs)
    node_ids = {r.data.tags["parallels.node"]: r.info.run_id for r in node_runs}
    for p in parts:
        assert p.data.tags["mlflow.parentRunId"] == node_ids[p.data.tags["parallels.node"]]
        assert p.data.tags["mlflow.source.git.commit"] == git_head(repo)
    assert dag_runs[0].data.params == {"count": "6"}
    b_params = next(r for r in node_runs if r.data.tags["parallels.node"] == "b").data.params
    assert b_params["tag"] == "b"
    assert all(r.data.metrics["duration_seconds"] > 0 for r in parts)
    # Where each partition's time went, in its run: the phases add up to at most the whole.
    for r in parts:
        m = r.data.metrics
        phases = m["fetch_seconds"] + m["command_seconds"] + m["upload_seconds"]
        assert 0 < phases <= m["duration_seconds"], m
        assert m["command_seconds"] > 0
    d_part = next(r for r in parts if r.data.tags["parallels.node"] == "d")
    assert d_part.data.metrics["input_files"] == 12

    handle = client.get_workflow_handle(wid)
    progress = await handle.query("progress", result_type=DagProgress)
    assert progress.status == "succeeded"
    assert progress.nodes["b"].partitions == ["succeeded"] * 3


async def test_failing_partition_is_retried_in_the_same_mlflow_run(client, settings, tmp_path):
    repo = steps_repo(tmp_path)
    markers = tmp_path / "markers"
    markers.mkdir()
    spec = {
        "name": "flaky",
        "nodes": [
            node("f", repo, "flaky", parallelism=2, retries=2, parameters={"markers": str(markers)})
        ],
    }
    wid, result, error = await run_dag(client, settings, spec)
    assert error is None, error
    parts = by_kind(runs_of(settings, wid), "partition")
    assert len(parts) == 2  # retried, not duplicated
    mlflow = MlflowClient(settings.mlflow_tracking_uri)
    for p in parts:
        assert p.info.status == "FINISHED"
        logs = sorted(f.path for f in mlflow.list_artifacts(p.info.run_id, "logs"))
        assert logs == ["logs/attempt-1.log", "logs/attempt-2.log"]


async def test_fail_fast_cancels_running_nodes_and_skips_downstream(client, settings, tmp_path):
    repo = steps_repo(tmp_path)
    spec = {
        "name": "failfast",
        "nodes": [
            node("slow", repo, "sleep", parameters={"seconds": 60}),
            node("bad", repo, "fail", parameters={"code": 3}),
            node("after", repo, "fail", depends_on=["bad"]),
        ],
    }
    started = time.monotonic()
    wid, result, error = await run_dag(client, settings, spec)
    assert time.monotonic() - started < 45
    assert result is None and error is not None
    message = str(error)
    assert "node 'bad' failed" in message and "exited with code 3" in message
    assert "something went wrong in the step" in message  # the log tail reaches the user
    progress = await client.get_workflow_handle(wid).query("progress", result_type=DagProgress)
    assert progress.nodes["bad"].state == "failed"
    assert progress.nodes["slow"].state == "cancelled"
    assert progress.nodes["after"].state == "skipped"
    runs = runs_of(settings, wid)
    status = {
        (r.data.tags["parallels.kind"], r.data.tags.get("parallels.node")): r.info.status
        for r in runs
    }
    assert status[("dag", None)] == "FAILED"
    assert status[("node", "bad")] == "FAILED" and status[("partition", "bad")] == "FAILED"
    assert status[("node", "slow")] == "KILLED" and status[("partition", "slow")] == "KILLED"
    assert ("node", "after") not in status


async def test_keep_going_finishes_independent_branches(client, settings, tmp_path):
    repo = steps_repo(tmp_path)
    spec = {
        "name": "keepgoing",
        "fail_fast": False,
        "nodes": [
            node("slow", repo, "sleep", parameters={"seconds": 2}),
            node("bad", repo, "fail"),
            node("after", repo, "fail", depends_on=["bad"]),
        ],
    }
    wid, result, error = await run_dag(client, settings, spec)
    assert error is not None
    progress = await client.get_workflow_handle(wid).query("progress", result_type=DagProgress)
    assert {n: p.state for n, p in progress.nodes.items()} == {
        "slow": "succeeded",
        "bad": "failed",
        "after": "skipped",
    }
    assert progress.status == "failed"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


async def test_cancel_kills_processes_and_marks_runs_killed(client, settings, tmp_path):
    repo = steps_repo(tmp_path)
    pids = tmp_path / "pids"
    pids.mkdir()
    spec = {
        "name": "cancelme",
        "nodes": [
            node("s", repo, "sleep", parallelism=2, parameters={"seconds": 120, "pids": str(pids)})
        ],
    }
    handle = await start_dag(client, spec, task_queue=settings.task_queue)
    deadline = time.monotonic() + 60
    while len(list(pids.iterdir())) < 2:
        assert time.monotonic() < deadline, "partitions never started"
        await asyncio.sleep(0.2)
    procs = [int(p.read_text()) for p in pids.iterdir()]
    assert all(_alive(p) for p in procs)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as e:
        await handle.result()
    assert isinstance(e.value.cause, CancelledError)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in procs):
        assert time.monotonic() < deadline, "processes survived cancellation"
        await asyncio.sleep(0.1)
    runs = runs_of(settings, handle.id)
    assert len(runs) == 4
    assert {r.info.status for r in runs} == {"KILLED"}


async def test_invalid_spec_fails_the_run_with_the_problems(client, settings):
    spec = {"name": "bad", "nodes": [{"id": "a", "project": {"uri": "/x"}, "depends_on": ["zz"]}]}
    _, result, error = await asyncio.wait_for(run_dag(client, settings, spec), 30)
    assert result is None
    assert "nodes[0].depends_on[0]: unknown node 'zz'" in str(error)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"project_version": "no-such-branch"}, "version 'no-such-branch' not found"),
        ({"entry_point": "nope"}, "entry point 'nope' is not defined in the MLproject"),
        ({"parameters": {"bogus": 1}}, "parameter 'bogus' is not declared by entry point 'emit'"),
        (
            {"project_uri": "/nonexistent/repo"},
            "project repository '/nonexistent/repo' does not exist",
        ),
    ],
)
async def test_bad_projects_fail_fast_with_a_clear_message(
    client, settings, tmp_path, change, expected
):
    repo = steps_repo(tmp_path)
    n = node("a", repo, change.get("entry_point", "emit"), parameters=change.get("parameters", {}))
    if "project_version" in change:
        n["project"]["version"] = change["project_version"]
    if "project_uri" in change:
        n["project"]["uri"] = change["project_uri"]
    started = time.monotonic()
    _, result, error = await asyncio.wait_for(
        run_dag(client, settings, {"name": "badproj", "nodes": [n]}), 60
    )
    assert result is None and expected in str(error)
    assert time.monotonic() - started < 20  # non-retryable: no long retry schedule


async def test_upstream_partitions_writing_the_same_file_name_are_refused(
    client, settings, tmp_path
):
    # Both partitions of `a` write f000.txt and f001.txt: `b` would get only one of each.
    repo = steps_repo(tmp_path)
    spec = {
        "name": "clash",
        "nodes": [
            node("a", repo, "emit", parallelism=2, parameters={"n": 2}),
            node("b", repo, "copy", inputs=[{"name": "data", "source": {"node": "a"}}]),
        ],
    }
    started = time.monotonic()
    wid, result, error = await asyncio.wait_for(run_dag(client, settings, spec), 90)
    assert result is None and error is not None
    message = str(error)
    assert "input 'data': 'f000.txt' of runs:/" in message, message
    assert "distinct names" in message and "PARALLELS_PARTITION_INDEX" in message
    assert time.monotonic() - started < 30  # refused while planning, not retried
    node_b = next(
        r for r in by_kind(runs_of(settings, wid), "node") if r.data.tags["parallels.node"] == "b"
    )
    assert node_b.info.status == "FAILED"
    assert not [r for r in by_kind(runs_of(settings, wid), "partition")
                if r.data.tags["parallels.node"] == "b"]  # fmt: skip


async def test_external_directory_input_by_directory(client, settings, tmp_path):
    repo = steps_repo(tmp_path)
    data = tmp_path / "data"
    for d, n in (("cats", 3), ("dogs", 2), ("owls", 1)):
        (data / d).mkdir(parents=True)
        for i in range(n):
            (data / d / f"{i}.txt").write_text(d)
    spec = {
        "name": "external",
        "nodes": [
            node(
                "c",
                repo,
                "copy",
                parallelism=3,
                parameters={"tag": "c"},
                inputs=[
                    {"name": "pics", "source": {"uri": str(data)}, "partition": "by_directory"}
                ],
            )
        ],
    }
    wid, result, error = await run_dag(client, settings, spec)
    assert error is None, error
    mlflow = MlflowClient(settings.mlflow_tracking_uri)
    counts = sorted(
        len(mlflow.list_artifacts(r, "output")) for r in result.nodes["c"].partition_run_ids
    )
    assert counts == [1, 2, 3]  # directories are never split


async def test_virtualenv_is_built_once_and_reused(client, settings, tmp_path):
    import sys

    from tests.conftest import make_repo

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    repo = make_repo(
        tmp_path / "venv-repo",
        {
            "MLproject": "name: v\npython_env: python_env.yaml\nentry_points:\n  main:\n"
            "    parameters: {output_dir: path}\n"
            "    command: python -c \"import sys,pathlib; pathlib.Path('{output_dir}', 'py.txt').write_text(sys.prefix)\"\n",
            "python_env.yaml": f"python: '{version}'\ndependencies: []\n",
        },
    )
    spec = {
        "name": "venv",
        "nodes": [
            {"id": "one", "project": {"uri": str(repo)}, "parallelism": 2},
            {"id": "two", "project": {"uri": str(repo)}, "depends_on": ["one"]},
        ],
    }
    wid, result, error = await run_dag(client, settings, spec)
    assert error is None, error
    parts = by_kind(runs_of(settings, wid), "partition")
    env_ids = {p.data.tags["parallels.env"] for p in parts}
    assert len(env_ids) == 1 and env_ids != {"local"}
    # The session's cache may hold other tests' environments; this DAG built and used one.
    [env_id] = env_ids
    env_dir = settings.cache_dir / "envs" / env_id
    assert (env_dir / "bin" / "python").exists()
    mlflow = MlflowClient(settings.mlflow_tracking_uri)
    prefix = Path(
        mlflow.download_artifacts(parts[0].info.run_id, "output/py.txt", str(tmp_path))
    ).read_text()
    assert prefix == str(env_dir)  # the step ran inside the virtualenv


async def test_timeout_kills_the_step_and_counts_against_retries(client, settings, tmp_path):
    repo = steps_repo(tmp_path)
    pids = tmp_path / "pids"
    pids.mkdir()
    spec = {
        "name": "timeout",
        "nodes": [
            node("s", repo, "sleep", timeout="3s", parameters={"seconds": 60, "pids": str(pids)})
        ],
    }
    started = time.monotonic()
    wid, result, error = await asyncio.wait_for(run_dag(client, settings, spec), 60)
    assert result is None
    assert "partition 0 timed out after 3s (the node's timeout)" in str(error)
    assert time.monotonic() - started < 30  # not retried as if the worker had died
    pid = int((pids / "0.pid").read_text())
    assert not _alive(pid)
    parts = by_kind(runs_of(settings, wid), "partition")
    assert len(parts) == 1 and parts[0].info.status == "FAILED"
    assert parts[0].data.tags["parallels.failures"] == "1"


async def test_temporal_cli_starts_a_dag_with_plain_json(client, settings, tmp_path):
    import json
    import subprocess
    import uuid

    from parallels.stack import binary

    repo = steps_repo(tmp_path)
    spec = {"name": "from-cli", "nodes": [node("a", repo, "emit", parameters={"n": 2})]}
    wid = f"cli-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            binary("temporal"),
            "workflow",
            "start",
            "--address",
            settings.temporal_address,
            "--type",
            "DagRunWorkflow",
            "--task-queue",
            settings.task_queue,
            "--workflow-id",
            wid,
            "--input",
            json.dumps({"spec": spec}),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    result = await asyncio.wait_for(client.get_workflow_handle(wid).result(), 120)
    assert result["status"] == "succeeded" and result["nodes"]["a"]["partitions"] == 1
    desc = await client.get_workflow_handle(wid).describe()
    assert desc.search_attributes["ParallelsDag"] == ["from-cli"]
    assert desc.search_attributes["MlflowRunId"] == [result["mlflow_run_id"]]
