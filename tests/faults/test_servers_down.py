"""The servers a run depends on go away mid-run and come back: the run completes."""

from __future__ import annotations

import asyncio
import time

import pytest
from mlflow.tracking import MlflowClient

from parallels.stack import MlflowServer, TemporalDevServer, free_port
from parallels.temporal import connect, ensure_search_attributes
from parallels.watch import start_dag
from tests.faults.project import faulty_repo, ledger_lines
from tests.faults.test_worker_killed import start_worker
from tests.integration.helpers import by_kind, node, runs_of

pytestmark = pytest.mark.slow


async def _until_started(ledger, count: int, proc, log, timeout: float = 90) -> None:
    """Until `count` steps wrote "start" to the ledger: they run now, on the worker."""
    deadline = time.monotonic() + timeout
    while sum(1 for e in ledger_lines(ledger) if e[1] == "start") < count:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"the steps never ran:\n{log.read_text()[-3000:]}"
        await asyncio.sleep(0.1)


async def test_temporal_restarted_on_its_database_mid_run(settings, tmp_path):
    repo = faulty_repo(tmp_path)
    ledger = tmp_path / "ledger"
    ports = (free_port(), free_port())
    temporal = TemporalDevServer(tmp_path / "temporal", *ports, ui=False)
    temporal.start()
    s = settings.model_copy(update={"temporal_address": temporal.address})
    log = tmp_path / "worker.log"
    proc = None
    try:
        client = await connect(s)
        await ensure_search_attributes(client, s.temporal_namespace)
        proc = start_worker(s, log)
        spec = {
            "name": "temporal-restart",
            "nodes": [
                node("nap", repo, "nap", parallelism=2,
                     parameters={"seconds": 8, "ledger": str(ledger)}),
                node("after", repo, "nap", depends_on=["nap"],
                     parameters={"seconds": 0.1, "ledger": str(tmp_path / "after")}),
            ],
        }  # fmt: skip
        handle = await start_dag(client, spec, task_queue=s.task_queue)
        await _until_started(ledger, 2, proc, log)
        temporal.stop()  # mid-partition: the steps keep running on the worker
        await asyncio.sleep(4)
        temporal = TemporalDevServer(tmp_path / "temporal", *ports, ui=False)
        temporal.start()
        result = await asyncio.wait_for(handle.result(), 150)
        assert result.status == "succeeded", result.error
        assert [e[0] for e in ledger_lines(tmp_path / "after")] == ["0", "0"]  # start, end
        runs = runs_of(s, handle.id)
        parts = by_kind(runs, "partition")
        # One MLflow run per partition, all finished, however often a step had to be redone.
        assert sorted((p.data.tags["parallels.node"], p.data.tags["parallels.partition"])
                      for p in parts) == [("after", "0"), ("nap", "0"), ("nap", "1")]  # fmt: skip
        assert {r.info.status for r in runs} == {"FINISHED"}
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        temporal.stop()


async def test_mlflow_unreachable_for_15_seconds_mid_run(client, settings, tmp_path):
    repo = faulty_repo(tmp_path)
    ledger = tmp_path / "ledger"
    port = free_port()
    mlflow = MlflowServer(tmp_path / "mlflow", port)
    mlflow.start()
    s = settings.model_copy(update={"mlflow_tracking_uri": mlflow.uri})
    log = tmp_path / "worker.log"
    proc = start_worker(s, log)
    try:
        spec = {
            "name": "mlflow-outage",
            "nodes": [
                node("nap", repo, "nap", parallelism=2,
                     parameters={"seconds": 4, "ledger": str(ledger)}),
                node("copy", repo, "nap",
                     inputs=[{"name": "naps", "source": {"node": "nap"}, "partition": "broadcast"}],
                     parameters={"seconds": 0.1, "ledger": str(tmp_path / "copy")}),
            ],
        }  # fmt: skip
        handle = await start_dag(client, spec, task_queue=s.task_queue)
        await _until_started(ledger, 2, proc, log)
        mlflow.stop()  # the steps end while MLflow is down: their uploads and closes must wait
        t0 = time.monotonic()
        await asyncio.sleep(15)
        mlflow = MlflowServer(tmp_path / "mlflow", port)
        mlflow.start()
        result = await asyncio.wait_for(handle.result(), 240)
        assert result.status == "succeeded", result.error
        assert time.monotonic() - t0 >= 15
    finally:
        proc.kill()
        proc.wait()
    try:
        tracking = MlflowClient(mlflow.uri)
        runs = runs_of(s, handle.id)
        assert {r.info.status for r in runs} == {"FINISHED"}
        parts = by_kind(runs, "partition")
        assert len(parts) == 3
        # Nothing logged is lost: each nap partition's output and logs are there.
        for p in parts:
            if p.data.tags["parallels.node"] != "nap":
                continue
            i = p.data.tags["parallels.partition"]
            names = {f.path for f in tracking.list_artifacts(p.info.run_id, "output")}
            assert names == {f"output/part{i}.txt"}, names
            assert tracking.list_artifacts(p.info.run_id, "logs")
    finally:
        mlflow.stop()
