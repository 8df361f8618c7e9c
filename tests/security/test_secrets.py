"""Planted secrets never show up in logs, workflow histories, MLflow records or error messages."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from parallels import naming
from tests.faults.test_worker_killed import start_worker
from tests.integration.helpers import api_for, by_kind, node, runs_of, steps_repo, wait_run

pytestmark = pytest.mark.slow

API_TOKEN = "tok-PLANTED-4f1c2b9e7d"
WRONG_TOKEN = "tok-PLANTED-wrong-8a7b6c"
MLFLOW_PASSWORD = "pw-PLANTED-93b1e0c2aa"
SECRETS = [API_TOKEN, WRONG_TOKEN, MLFLOW_PASSWORD]


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


async def test_planted_secrets_appear_nowhere(client, settings, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    repo = steps_repo(tmp_path)
    worker_log = tmp_path / "worker.log"
    proc = start_worker(
        settings, worker_log,
        MLFLOW_TRACKING_USERNAME="parallels", MLFLOW_TRACKING_PASSWORD=MLFLOW_PASSWORD,
    )  # fmt: skip
    seen: list[str] = []
    try:
        async with api_for(client, settings, tmp_path, api_tokens=f"{API_TOKEN}:alice") as http:
            auth = {"Authorization": f"Bearer {API_TOKEN}"}
            r = await http.get(
                "/api/v1/templates", headers={"Authorization": f"Bearer {WRONG_TOKEN}"}
            )
            assert r.status_code == 401
            seen.append(r.text)
            spec = {
                "name": "secrets",
                "nodes": [
                    node("emit", repo, "emit", parameters={"n": 2}),
                    node("bad", repo, "fail", depends_on=["emit"]),
                ],
            }
            r = await http.post("/api/v1/runs", json={"spec": spec}, headers=auth)
            assert r.status_code == 201, r.text
            run_id = r.json()["id"]
            run = await wait_run(http, run_id, headers=auth)
            assert run["status"] == "failed"
            seen.append(str(run))
            async with http.stream("GET", f"/api/v1/runs/{run_id}/events", headers=auth) as events:
                seen.append((await events.aread()).decode())
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait)

    seen.append(worker_log.read_text())
    seen.append(caplog.text)
    # Every workflow history of the run: the DAG's and each node's.
    for wid in (
        run_id,
        naming.node_workflow_id(run_id, "emit"),
        naming.node_workflow_id(run_id, "bad"),
    ):
        history = await client.get_workflow_handle(wid).fetch_history()
        seen.append(history.to_json())
    tracking = MlflowClient(settings.mlflow_tracking_uri)
    runs = runs_of(settings, run_id)
    assert by_kind(runs, "partition")
    for r in runs:
        seen.append(str(r.data.params) + str(r.data.tags))
        for folder in ("logs",):
            for f in tracking.list_artifacts(r.info.run_id, folder):
                local = tracking.download_artifacts(r.info.run_id, f.path, str(tmp_path))
                seen.append(Path(local).read_text(errors="replace"))
    found = {s for text in seen for s in leaks(text)}
    assert not found, f"secrets leaked: {found}"
