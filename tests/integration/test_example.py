"""The example batch-inference DAG end to end, checked through what MLflow recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from parallels.localize import localize, snapshot_repo
from parallels.validation import parse_document
from tests.integration.helpers import by_kind, run_dag, runs_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "batch_inference"
pytestmark = pytest.mark.usefixtures("worker")


async def test_example_dag_classifies_images_and_records_the_run_tree(client, settings, tmp_path):
    repo = tmp_path / "example-repo"
    snapshot_repo(EXAMPLE, repo)
    spec = localize(parse_document((repo / "dag.yaml").read_bytes()), repo)
    wid, result, error = await run_dag(client, settings, spec, parameters={"images": 120})
    assert error is None, error
    assert result.status == "succeeded"
    assert {n: r.partitions for n, r in result.nodes.items()} == {
        "ingest": 1,
        "train": 1,
        "preprocess": 4,
        "infer": 4,
        "aggregate": 1,
    }

    runs = runs_of(settings, wid)
    assert len(by_kind(runs, "dag")) == 1
    assert len(by_kind(runs, "node")) == 5
    assert len(by_kind(runs, "partition")) == 11
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert by_kind(runs, "dag")[0].data.params == {"images": "120", "seed": "7"}

    mlflow = MlflowClient(settings.mlflow_tracking_uri)
    agg_run = result.nodes["aggregate"].partition_run_ids[0]
    summary = json.loads(
        Path(mlflow.download_artifacts(agg_run, "output/summary.json", str(tmp_path))).read_text()
    )
    assert summary["images"] == 120
    assert 0.8 < summary["accuracy"] <= 1.0
    assert mlflow.get_run(agg_run).data.metrics["accuracy"] == pytest.approx(summary["accuracy"])

    infer_runs = [mlflow.get_run(r) for r in result.nodes["infer"].partition_run_ids]
    assert sum(r.data.metrics["images"] for r in infer_runs) == 120
    assert all(0.5 < r.data.metrics["batch_accuracy"] <= 1.0 for r in infer_runs)

    # The model was trained and logged inside the DAG, then loaded by URI in `infer`.
    train_run = result.nodes["train"].partition_run_ids[0]
    assert mlflow.get_run(train_run).data.metrics["train_accuracy"] > 0.9
    model_json = Path(mlflow.download_artifacts(train_run, "output/model.json", str(tmp_path)))
    assert json.loads(model_json.read_text())["model_uri"].startswith("models:/")
    logs = [f.path for f in mlflow.list_artifacts(infer_runs[0].info.run_id, "logs")]
    assert logs == ["logs/attempt-1.log"]
