"""A worker SIGKILLed mid-partition: the run completes after a restart, nothing is duplicated."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from parallels.settings import Settings
from parallels.watch import progress, start_dag
from tests.integration.helpers import by_kind, node, runs_of, steps_repo

ROOT = Path(__file__).resolve().parents[2]


def start_worker(settings: Settings, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **extra,
        "PARALLELS_TEMPORAL_ADDRESS": settings.temporal_address,
        "PARALLELS_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "PARALLELS_TASK_QUEUE": settings.task_queue,
        "PARALLELS_STATE_DIR": str(settings.state_dir),
        "PARALLELS_HEARTBEAT_SECONDS": "1",
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py")],
        env=env,
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def ledger_events(path: Path) -> list[tuple[str, str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split()[:3]) for line in path.read_text().splitlines()]  # type: ignore[misc]


async def test_worker_killed_mid_partition_resumes_without_duplicates(client, settings, tmp_path):
    repo = steps_repo(tmp_path)
    ledger, markers, pids = tmp_path / "ledger", tmp_path / "markers", tmp_path / "pids"
    markers.mkdir()
    pids.mkdir()
    spec = {
        "name": "restart",
        "nodes": [
            node("first", repo, "sleep", parameters={"seconds": 0.1, "ledger": str(ledger)}),
            # partition 0 finishes at once; partition 1 sleeps 120 s on its first attempt only.
            node(
                "second",
                repo,
                "sleep",
                parallelism=2,
                depends_on=["first"],
                parameters={
                    "seconds": 120,
                    "stagger": 1,
                    "markers": str(markers),
                    "ledger": str(ledger),
                    "pids": str(pids),
                },
            ),
        ],
    }
    log = tmp_path / "worker.log"
    proc = start_worker(settings, log)
    try:
        handle = await start_dag(client, spec, task_queue=settings.task_queue)
        result_task = asyncio.ensure_future(handle.result())
        deadline = time.monotonic() + 90
        while True:
            events = Counter(ledger_events(ledger))
            p = await progress(handle)
            second = p.nodes["second"].partitions if p and "second" in p.nodes else []
            # Partition 0 recorded as done by Temporal (not just its process ended), 1 running.
            if second[:1] == ["succeeded"] and events[("x", "1", "start")] == 1:
                break
            assert not result_task.done(), f"run ended early: {result_task.exception()}"
            assert time.monotonic() < deadline, (
                f"never reached partition 1:\n{log.read_text()[-3000:]}"
            )
            assert proc.poll() is None, log.read_text()[-3000:]
            await asyncio.sleep(0.2)
        step_pid = int((pids / "1.pid").read_text())
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # The step dies with its worker (no orphan racing the retry).
        for _ in range(50):
            if not Path(f"/proc/{step_pid}").exists():
                break
            await asyncio.sleep(0.1)
        assert not Path(f"/proc/{step_pid}").exists()

        proc = start_worker(settings, log)
        result = await asyncio.wait_for(result_task, 120)
        assert result.status == "succeeded"
    finally:
        proc.kill()
        proc.wait()

    # ledger lines: "<tag> <partition> <event>"; every sleep step logs tag 'x' (its default).
    counts = Counter(ledger_events(ledger))
    assert counts[("x", "0", "start")] == 2  # 'first' (1) + 'second' partition 0 (1): never rerun
    assert counts[("x", "1", "start")] == 2  # interrupted attempt + the retry
    assert counts[("x", "1", "end")] == 1
    runs = runs_of(settings, handle.id)
    parts = by_kind(runs, "partition")
    keys = Counter(
        (p.data.tags["parallels.node"], p.data.tags["parallels.partition"]) for p in parts
    )
    assert keys == {("first", "0"): 1, ("second", "0"): 1, ("second", "1"): 1}
    assert len(by_kind(runs, "node")) == 2 and len(by_kind(runs, "dag")) == 1
    assert {r.info.status for r in runs} == {"FINISHED"}
    # The crash did not use up the node's retries (it has none): the step itself never failed.
    assert all("parallels.failures" not in p.data.tags for p in parts)
