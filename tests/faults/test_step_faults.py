"""Steps that die, and cancellation at each stage of a node: the cause reaches the user, and
nothing keeps running."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError

from parallels.watch import progress, start_dag
from tests.conftest import make_repo
from tests.faults.project import faulty_repo, ledger_lines
from tests.integration.helpers import (
    by_kind,
    gated_proxy,
    node,
    run_dag,
    runs_of,
    silent_git_remote,
)

pytestmark = pytest.mark.slow


async def test_partition_killed_by_a_signal_is_reported_with_the_cause(
    client, settings, worker, tmp_path
):
    repo = faulty_repo(tmp_path)
    spec = {"name": "selfkill", "nodes": [node("k", repo, "selfkill")]}
    wid, result, error = await run_dag(client, settings, spec)
    assert result is None and error is not None
    assert "killed by SIGKILL" in str(error), error
    [part] = by_kind(runs_of(settings, wid), "partition")
    assert part.info.status == "FAILED"
    assert "killed by SIGKILL" in part.data.tags["parallels.error"]


def _descendants_running(cmd_part: str) -> list[int]:
    """Processes whose command line mentions `cmd_part` (read from /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(cmd_part.encode() in a for a in args):
            found.append(int(proc.name))
    return found


async def _cancel_when(handle, ready, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not await ready():
        assert time.monotonic() < deadline, "the stage to cancel in was never reached"
        await asyncio.sleep(0.1)
    await handle.cancel()


async def _all_terminal(settings, wid: str) -> list[str]:
    runs = runs_of(settings, wid)
    return [r.info.status for r in runs]


async def test_cancel_while_the_environment_is_built(client, settings, worker, tmp_path):
    repo = faulty_repo(tmp_path)
    # A python_env makes the node build a virtualenv first (several seconds).
    v = sys.version_info
    make_repo(repo, {"python_env.yaml": f'python: "{v.major}.{v.minor}"\ndependencies: []\n'})
    spec = {
        "name": "cancel-env",
        "nodes": [{**node("n", repo, "nap"), "env_manager": "virtualenv"}],
    }
    handle = await start_dag(client, spec, task_queue=settings.task_queue)
    marker = str(settings.cache_dir / "envs")

    async def building() -> bool:
        return bool(_descendants_running(marker))

    await _cancel_when(handle, building)
    with pytest.raises(Exception):  # noqa: B017 - cancelled
        await asyncio.wait_for(handle.result(), 60)
    for _ in range(100):
        if not _descendants_running(marker):
            break
        await asyncio.sleep(0.1)
    assert not _descendants_running(marker), "environment build outlived the cancel"
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    p = await progress(handle)
    assert p is not None and p.status == "cancelled" and p.nodes["n"].state == "cancelled"
    statuses = await _all_terminal(settings, handle.id)
    assert statuses and set(statuses) == {"KILLED"}, statuses


async def test_cancel_while_resolving_the_project(client, settings, worker, tmp_path):
    with silent_git_remote() as (uri, reached):
        spec = {"name": "cancel-resolve", "nodes": [{"id": "n", "project": {"uri": uri}}]}
        handle = await start_dag(client, spec, task_queue=settings.task_queue)

        async def resolving() -> bool:  # git has connected to the remote and is waiting
            return reached.is_set()

        await _cancel_when(handle, resolving)
        with pytest.raises(WorkflowFailureError) as err:
            await asyncio.wait_for(handle.result(), 60)
    assert isinstance(err.value.cause, CancelledError), err.value.cause
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    p = await progress(handle)
    assert p is not None and p.status == "cancelled" and p.error is None
    # Nothing was opened in MLflow before the cancel, so nothing is left RUNNING there.
    assert await _all_terminal(settings, handle.id) == []


async def test_cancel_while_the_dag_run_is_opened_in_mlflow(client, settings, tmp_path):
    """The opening activity does not heartbeat, so a cancel cannot stop it: it is waited for,
    and the run it opened is closed KILLED instead of being left RUNNING."""
    import worker as worker_mod

    repo = faulty_repo(tmp_path)
    with gated_proxy(settings.mlflow_tracking_uri) as (uri, reached, gate):
        s = settings.model_copy(update={"mlflow_tracking_uri": uri})
        async with worker_mod.running(worker_mod.build_workers(client, s)):
            spec = {"name": "cancel-open", "nodes": [node("n", repo, "nap", parameters={"seconds": 0})]}  # fmt: skip
            handle = await start_dag(client, spec, task_queue=s.task_queue)

            async def opening() -> bool:  # the worker's first MLflow call is held at the gate
                return reached.is_set()

            await _cancel_when(handle, opening)
            await asyncio.sleep(1)  # the cancel is in the workflow before MLflow answers
            gate.set()
            with pytest.raises(WorkflowFailureError) as err:
                await asyncio.wait_for(handle.result(), 60)
            p = await progress(handle)  # a query: answered by the worker
    assert isinstance(err.value.cause, CancelledError), err.value.cause
    assert p is not None and p.status == "cancelled"
    runs = runs_of(settings, handle.id)
    assert [(r.data.tags["parallels.kind"], r.info.status) for r in runs] == [("dag", "KILLED")]


async def test_cancel_while_outputs_upload(client, settings, worker, tmp_path):
    repo = faulty_repo(tmp_path)
    ledger = tmp_path / "ledger"
    spec = {"name": "cancel-upload",
            "nodes": [node("big", repo, "bigout", parameters={"mb": 300, "ledger": str(ledger)})]}  # fmt: skip
    handle = await start_dag(client, spec, task_queue=settings.task_queue)

    async def uploading() -> bool:  # the step has ended; its outputs are on their way
        return any(e[1] == "end" for e in ledger_lines(ledger))

    await _cancel_when(handle, uploading)
    with pytest.raises(Exception):  # noqa: B017 - cancelled
        await asyncio.wait_for(handle.result(), 60)
    p = await progress(handle)
    assert p is not None and p.status == "cancelled"
    statuses = await _all_terminal(settings, handle.id)
    assert statuses and "RUNNING" not in statuses, statuses
    assert by_kind(runs_of(settings, handle.id), "dag")[0].info.status == "KILLED"


async def test_cancel_while_running_kills_the_processes(client, settings, worker, tmp_path):
    repo = faulty_repo(tmp_path)
    ledger = tmp_path / "ledger"
    spec = {"name": "cancel-run", "nodes": [
        node("nap", repo, "nap", parallelism=2, parameters={"seconds": 120, "ledger": str(ledger)})]}  # fmt: skip
    handle = await start_dag(client, spec, task_queue=settings.task_queue)

    async def running() -> bool:
        return len([e for e in ledger_lines(ledger) if e[1] == "start"]) == 2

    await _cancel_when(handle, running)
    with pytest.raises(Exception):  # noqa: B017 - cancelled
        await asyncio.wait_for(handle.result(), 60)
    pids = [int(e[2]) for e in ledger_lines(ledger)]
    for _ in range(100):
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            break
        await asyncio.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    statuses = await _all_terminal(settings, handle.id)
    assert set(statuses) == {"KILLED"}, statuses
