"""Record workflow histories for the replay test: `python -m tests.histories.record [NAME ...]`.

With names, only those scenarios are (re)recorded: keep the histories of older workflow code,
they are what proves a change still replays runs that started before it.

Run it when a workflow change is *meant* to be incompatible (and version the workflow with
`workflow.patched` instead whenever running DAGs must survive the change). It starts its own
Temporal dev server and MLflow server, runs the scenarios, and writes one JSON file per workflow
execution with machine-specific paths scrubbed from the payloads.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import temporalio
from mlflow.tracking import MlflowClient

import worker
from parallels.models import DagRunInput
from parallels.settings import Settings
from parallels.stack import EmbeddedServers, free_port
from parallels.temporal import connect
from parallels.watch import start_dag
from tests.integration.helpers import gated_proxy, node, silent_git_remote, steps_repo

OUT = Path(__file__).resolve().parent
ROOT = OUT.parents[1]
WORK = Path("/tmp/parallels-record")


def scrub(value: Any, replacements: dict[str, str]) -> Any:
    """Replace strings inside JSON payloads (base64 in history JSON) and everywhere else."""
    if isinstance(value, dict):
        if "data" in value and "metadata" in value and isinstance(value["data"], str):
            raw = base64.b64decode(value["data"]).decode("utf-8", errors="strict")
            for old, new in replacements.items():
                raw = raw.replace(old, new)
            return {**value, "data": base64.b64encode(raw.encode()).decode()}
        return {k: scrub(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, replacements) for v in value]
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
    return value


async def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    repo = steps_repo(WORK)
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedServers(
            Path(tmp),
            temporal_port=free_port(),
            ui_port=free_port(),
            mlflow_port=free_port(),
            ui=False,
        ) as servers,
        silent_git_remote() as (silent_uri, resolving),
    ):
        settings = Settings(
            state_dir=WORK / "state",
            temporal_address=servers.temporal.address,
            mlflow_tracking_uri=servers.mlflow.uri,
            task_queue="parallels",
        )
        client = await connect(settings)
        scenarios = {
            "fanout": {
                "name": "fanout",
                "nodes": [
                    node("a", repo, "emit", parameters={"n": 5}),
                    node(
                        "b",
                        repo,
                        "copy",
                        parallelism=3,
                        inputs=[{"name": "data", "source": {"node": "a"}, "partition": "by_file"}],
                    ),
                    node("c", repo, "copy", inputs=[{"name": "data", "source": {"node": "b"}}]),
                ],
            },
            "failfast": {
                "name": "failfast",
                "nodes": [
                    node("slow", repo, "sleep", parameters={"seconds": 30}),
                    node("bad", repo, "fail"),
                    node("after", repo, "fail", depends_on=["bad"]),
                ],
            },
            "cancelled": {
                "name": "cancelled",
                "nodes": [
                    node("s", repo, "sleep", parallelism=2, parameters={"seconds": 60}),
                ],
            },
        }
        scenarios["reuse"] = scenarios["fanout"]
        # Recorded after nodes began to check their cluster has a worker (patch marker in it).
        scenarios["workercheck"] = scenarios["fanout"]
        # Progress signals coalesced to one per PROGRESS_INTERVAL (patch "coalesce-progress").
        scenarios["coalesce"] = scenarios["fanout"]
        # A single-project run: one node whose partition logs into a run made beforehand.
        scenarios["project"] = {
            "name": "project",
            "nodes": [node("emit", repo, "emit", parameters={"n": 2})],
        }
        # Cancelled while its project was resolved (patch "cancel-while-resolving").
        scenarios["cancelresolve"] = {
            "name": "cancelresolve",
            "nodes": [{"id": "n", "project": {"uri": silent_uri}}],
        }
        wanted = sys.argv[1:] or [*scenarios, "cancelopen"]
        reuse: dict[str, Any] = {}
        async with worker.running(worker.build_workers(client, settings)):
            if "reuse" in wanted:  # the reused node's result comes from a real earlier run
                first = await start_dag(client, scenarios["fanout"], task_queue="parallels")
                reuse = {"a": (await first.result()).nodes["a"]}
            for name, spec in scenarios.items():
                if name not in wanted:
                    continue
                adopt = None
                if name == "project":
                    mlflow = MlflowClient(settings.mlflow_tracking_uri)
                    adopt = mlflow.create_run(mlflow.create_experiment("project")).info.run_id
                handle = await client.start_workflow(
                    "DagRunWorkflow",
                    DagRunInput(
                        spec=spec, reuse=reuse if name == "reuse" else {}, adopt_run_id=adopt
                    ),
                    id=f"replay-{name}",
                    task_queue="parallels",
                )
                if name == "cancelled":
                    await asyncio.sleep(6)
                    await handle.cancel()
                if name == "cancelresolve":
                    await asyncio.to_thread(resolving.wait, 60)
                    await handle.cancel()
                try:
                    await handle.result()
                except Exception as e:  # failures are the point of two scenarios
                    print(f"{name}: {type(e).__name__}")
                await save(client, handle.id, spec)
        if "cancelopen" in wanted:
            # Cancelled while its MLflow run was opened (patch "cancel-while-opening"): this
            # worker's MLflow calls wait at a gate, opened after the cancel.
            with gated_proxy(servers.mlflow.uri) as (gated, opening, gate):
                held = settings.model_copy(
                    update={"mlflow_tracking_uri": gated, "task_queue": "parallels-gated"}
                )
                async with worker.running(worker.build_workers(client, held)):
                    spec = {"name": "cancelopen", "nodes": [node("n", repo, "emit")]}
                    handle = await client.start_workflow(
                        "DagRunWorkflow",
                        DagRunInput(spec=spec),
                        id="replay-cancelopen",
                        task_queue=held.task_queue,
                    )
                    await asyncio.to_thread(opening.wait, 60)
                    await handle.cancel()
                    await asyncio.sleep(1)
                    gate.set()
                    try:
                        await handle.result()
                    except Exception as e:
                        print(f"cancelopen: {type(e).__name__}")
                    await save(client, handle.id, spec)


async def save(client: Any, workflow_id: str, spec: dict[str, Any]) -> None:
    """One JSON file per workflow execution of the run, machine paths scrubbed."""
    ids = [workflow_id] + [f"{workflow_id}/{n['id']}" for n in spec["nodes"]]
    for wid in ids:
        try:
            history = await client.get_workflow_handle(wid).fetch_history()
        except Exception:
            continue  # a node that never started has no history
        doc = scrub(
            json.loads(history.to_json()),
            {
                sys.executable: "/venv/bin/python",
                str(Path(temporalio.__file__).parents[1]): "/venv/site-packages",
                str(ROOT): "/src",
                str(WORK): "/tmp/parallels-record",
                str(Path.home()): "/home/user",
            },
        )
        path = OUT / f"{wid.replace('/', '__')}.json"
        path.write_text(json.dumps(doc, indent=1) + "\n")
        print("wrote", path.name)


if __name__ == "__main__":
    asyncio.run(main())
