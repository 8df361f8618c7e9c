"""`mlflow run --backend parallels`: the plugin backend against a served API and a real worker."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import ExecutionException
from mlflow.tracking import MlflowClient

from tests.conftest import make_repo
from tests.integration.helpers import served_api, wait_for

pytestmark = pytest.mark.slow

MLPROJECT = """
name: scorer
entry_points:
  main:
    parameters: {n: {type: float, default: 2}, label: {type: string, default: plain}}
    command: "python score.py --n {n} --label {label}"
  sleep:
    parameters: {seconds: {type: float, default: 120}, pids: string}
    command: "python score.py --sleep {seconds} --pids {pids}"
"""

SCORE_PY = """
import argparse, os, pathlib, time
import mlflow

p = argparse.ArgumentParser()
p.add_argument("--n", type=float, default=0)
p.add_argument("--label", default="")
p.add_argument("--sleep", type=float, default=0)
p.add_argument("--pids", default="")
a = p.parse_args()
if a.sleep:
    pathlib.Path(a.pids, "sleep.pid").write_text(str(os.getpid()))
    time.sleep(a.sleep)
else:
    mlflow.log_metric("score", a.n * 2)
    mlflow.log_text(f"label={a.label}", "notes/label.txt")
    out = pathlib.Path(os.environ["PARALLELS_OUTPUT_DIR"])
    (out / "result.txt").write_text(str(a.n * 2))
"""


@pytest.fixture
def scorer(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "scorer", {"MLproject": MLPROJECT, "score.py": SCORE_PY})


@pytest.fixture
async def api_url(client, settings, tmp_path, worker):
    async with served_api(client, settings, tmp_path) as url:
        yield url


def mlflow_cli() -> str:
    return shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"


async def test_mlflow_run_cli_runs_the_project_and_logs_into_the_run_it_reports(
    api_url, settings, scorer, tmp_path
):
    cfg = tmp_path / "backend.json"
    cfg.write_text(json.dumps({"api_url": api_url, "token": "alice-token", "wait": True}))
    proc = await asyncio.create_subprocess_exec(
        mlflow_cli(), "run", str(scorer), "-P", "n=21", "-P", "label=cli",
        "--backend", "parallels", "--backend-config", str(cfg),
        "--experiment-name", "via-mlflow-cli", "--env-manager", "local",
        env={**os.environ, "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, out.decode()

    tracking = MlflowClient(settings.mlflow_tracking_uri)
    exp = tracking.get_experiment_by_name("via-mlflow-cli")
    runs = tracking.search_runs([exp.experiment_id])
    # One run, made by the backend in the caller's experiment; the project logged into it.
    assert len(runs) == 1, [r.info.run_id for r in runs]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.project.backend"] == "parallels"
    assert run.data.params["n"] == "21" and run.data.params["label"] == "cli"
    assert run.data.metrics["score"] == 42.0
    notes = tracking.download_artifacts(run.info.run_id, "notes/label.txt", str(tmp_path))
    assert Path(notes).read_text() == "label=cli"
    outputs = [f.path for f in tracking.list_artifacts(run.info.run_id, "output")]
    assert outputs == ["output/result.txt"]


async def test_submitted_run_status_and_cancel_stop_a_long_project(
    api_url, settings, scorer, tmp_path
):
    pids = tmp_path / "pids"
    pids.mkdir()
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    try:
        submitted = await asyncio.to_thread(
            mlflow.projects.run,
            str(scorer),
            entry_point="sleep",
            parameters={"seconds": 300, "pids": str(pids)},
            backend="parallels",
            backend_config={"api_url": api_url, "token": "alice-token"},
            experiment_name="via-mlflow-python",
            env_manager="local",
            synchronous=False,
        )
    finally:
        mlflow.set_tracking_uri(previous)
    pid_file = pids / "sleep.pid"

    async def started() -> bool:
        return pid_file.exists()

    async def gone() -> bool:
        return not Path(f"/proc/{pid}").exists()

    await wait_for(started, timeout=90)
    pid = int(pid_file.read_text())
    assert await asyncio.to_thread(submitted.get_status) == "RUNNING"

    await asyncio.to_thread(submitted.cancel)
    assert await asyncio.to_thread(submitted.get_status) == "KILLED"
    tracking = MlflowClient(settings.mlflow_tracking_uri)
    assert tracking.get_run(submitted.run_id).info.status == "KILLED"
    await wait_for(gone, timeout=30)
    assert await asyncio.to_thread(submitted.wait) is False


async def test_failures_are_reported_with_what_to_do(api_url, settings, scorer, tmp_path):
    from mlflow_parallels_plugin.backend import ParallelsBackend

    backend = ParallelsBackend()
    tracking = MlflowClient(settings.mlflow_tracking_uri)
    exp = tracking.create_experiment("backend-failures")

    def run(config, **kw):
        return backend.run(
            kw.get("uri", str(scorer)), kw.get("entry", "main"), kw.get("params", {}), None,
            config, settings.mlflow_tracking_uri, exp,
        )  # fmt: skip

    with pytest.raises(ExecutionException, match=r"unknown backend config key\(s\) \['clutser'\]"):
        await asyncio.to_thread(run, {"api_url": api_url, "clutser": "gpu"})
    with pytest.raises(ExecutionException, match=r"unreachable.*api_url"):
        await asyncio.to_thread(run, {"api_url": "http://127.0.0.1:9"})
    with pytest.raises(ExecutionException, match=r"unauthorized|token"):
        await asyncio.to_thread(run, {"api_url": api_url, "token": "wrong"})
    with pytest.raises(ExecutionException, match="cluster"):
        await asyncio.to_thread(
            run, {"api_url": api_url, "token": "alice-token", "cluster": "nowhere"}
        )
    # A refused submission leaves no MLflow run hanging in RUNNING.
    assert all(r.info.status == "FAILED" for r in tracking.search_runs([exp]))

    # With "wait", a project that fails makes `run` raise, naming the run to look at.
    with pytest.raises(ExecutionException, match="ended failed"):
        await asyncio.to_thread(
            run, {"api_url": api_url, "token": "alice-token", "wait": True}, entry="nope"
        )
