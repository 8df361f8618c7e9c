"""The benchmarks keep working: a smoke size of each, end to end, with no time assertions
(speed targets live in docs/benchmarks.md, measured by `bash scripts/bench.sh`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_every_benchmark_runs_at_smoke_size_and_writes_its_figures(tmp_path):
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["size"] == "smoke"
    r = doc["results"]
    assert [row["parallelism"] for row in r["overhead"]["rows"]] == [1, 4]
    assert all(row["dag_wall_s"] > 0 for row in r["overhead"]["rows"])
    e2e = r["e2e"]
    assert e2e["parallels_s"] > 0 and e2e["sequential_mlflow_run_s"] > 0
    assert e2e["xargs_lower_bound_s"] > 0
    assert r["planning"]["files"] == 2000 and r["planning"]["manifest_bytes"] > 0
    assert r["wide"]["node_history"]["events"] > r["wide"]["partitions"]
    burst = r["api"]["burst"]
    assert burst["succeeded"] == burst["runs"] == burst["listed"]
    assert r["api"]["template_get"]["errors"] == 0
    res = r["resources"]
    assert res["peak RSS MB (worker)"] > 0 and res["peak RSS MB (api)"] > 0
    assert (
        res["environment preparation s (cold)"] > 0 and res["environment preparation s (warm)"] > 0
    )
    assert "end to end" in proc.stdout and "results:" in proc.stdout

    # A later run compares itself with an earlier one.
    again = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--only", "planning",
         "--out", str(tmp_path / "again.json"), "--compare", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "now/before" in again.stdout and "planning.plan_and_serialise_s" in again.stdout


def test_soak_runs_briefly_and_records_the_memory_curve(tmp_path):
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--minutes", "0.25", "--every", "3",
         "--sample", "5", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["runs_started"] >= 3 and doc["runs_succeeded"] == doc["runs_started"]
    assert len(doc["curve"]) >= 2
    assert all(p["worker_rss_mb"] > 0 and p["api_rss_mb"] > 0 for p in doc["curve"])
