"""The measurements of docs/benchmarks.md. Each returns a JSON-able dict: raw samples, medians,
ratios and, where the issue set one, the target and whether this run met it."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.history.v1 import HistoryEvent

from benchmarks.harness import BenchStack, median, percentile
from parallels import naming, partitioning
from parallels.models import DagRunResult
from parallels.spec import PartitionMode
from parallels.watch import start_dag


@dataclass(frozen=True)
class Size:
    repeat: int
    overhead_parallelism: tuple[int, ...]
    e2e_files: int
    work: int
    plan_files: int
    big_partitions: int
    api_requests: int
    burst_runs: int


FULL = Size(3, (1, 4, 16, 64), 2000, 15000, 100_000, 1000, 2000, 100)
SMOKE = Size(1, (1, 4), 30, 100, 2000, 6, 40, 4)


def _node(id: str, repo: Path, entry: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": id,
        "project": {"uri": str(repo)},
        "entry_point": entry,
        "env_manager": "local",
        **kw,
    }


async def _run(stack: BenchStack, spec: dict[str, Any]) -> tuple[float, str]:
    assert stack.client
    wid = f"{spec['name']}-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    handle = await start_dag(stack.client, spec, task_queue="parallels", workflow_id=wid)
    result = await handle.result()
    took = time.perf_counter() - t0
    if result.status != "succeeded":
        raise RuntimeError(f"{wid} ended {result.status}: {result.error}")
    return took, wid


def _bare(cmds: list[list[str]], cwd: Path, slots: int) -> float:
    """The same commands run directly, `slots` at a time, with no tracking."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(slots) as pool:
        for done in pool.map(lambda c: subprocess.run(c, cwd=cwd, check=True), cmds):
            assert done.returncode == 0
    return time.perf_counter() - t0


# 1 ----------------------------------------------------------------------------------------------
async def overhead(stack: BenchStack, repo: Path, size: Size) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for p in size.overhead_parallelism:
        walls, bares = [], []
        for _ in range(size.repeat):
            spec = {
                "name": f"bench-overhead-{p}",
                "nodes": [_node("noop", repo, "noop", parallelism=p)],
            }
            walls.append((await _run(stack, spec))[0])
            cmds = [[sys.executable, "step.py", "noop"]] * p
            bares.append(await asyncio.to_thread(_bare, cmds, repo, stack.slots))
        per = [(w - b) / p for w, b in zip(walls, bares, strict=True)]
        rows.append(
            {
                "parallelism": p,
                "dag_wall_s": median(walls),
                "bare_wall_s": median(bares),
                "overhead_per_partition_s": median(per),
                "samples": {"dag": walls, "bare": bares},
            }
        )
    # The marginal cost of one more partition: slope between the two largest sizes.
    if len(rows) >= 2:
        a, b = rows[-2], rows[-1]
        extra = (b["dag_wall_s"] - b["bare_wall_s"]) - (a["dag_wall_s"] - a["bare_wall_s"])
        marginal = extra / (b["parallelism"] - a["parallelism"])
    else:
        marginal = float("nan")
    largest = rows[-1]["overhead_per_partition_s"]
    return {
        "rows": rows,
        "marginal_overhead_per_partition_s": marginal,
        "target": "median overhead <= 0.25 s per partition, flat as parallelism grows",
        "met": largest <= 0.25 and marginal <= 0.25,
    }


# 2 ----------------------------------------------------------------------------------------------
def _make_inputs(root: Path, n: int) -> Path:
    rng = random.Random(7)
    data = root / "images"
    data.mkdir(parents=True)
    for i in range(n):
        values = " ".join(f"{rng.gauss(0, 1):.5f}" for _ in range(64))
        (data / f"img{i:05d}.txt").write_text(values)
    return data


def _sequential_mlflow(
    repo: Path, data: Path, work: int, scratch: Path, env: dict[str, str]
) -> float:
    """(b): what a user without Parallels does: `mlflow run` each step over everything."""
    pre, inf, agg = scratch / "pre", scratch / "inf", scratch / "agg"
    steps = [("preprocess", data, pre), ("infer", pre, inf), ("aggregate", inf, agg)]
    t0 = time.perf_counter()
    for entry, inp, out in steps:
        out.mkdir(parents=True)
        params = ["-P", f"input_dir={inp}", "-P", f"output_dir={out}"]
        if entry != "aggregate":
            params += ["-P", f"work={work}"]
        subprocess.run(
            [
                shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow",
                "run",
                str(repo),
                "-e",
                entry,
                "--env-manager",
                "local",
                "--experiment-name",
                "bench-sequential",
                *params,
            ],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    took = time.perf_counter() - t0
    _check_summary(agg / "summary.json")
    return took


def _xargs(repo: Path, data: Path, work: int, scratch: Path, cores: int) -> float:
    """(c): the lower bound: the step code under `xargs -P cores`, no tracking, no uploads."""
    files = sorted(data.iterdir())
    shards = scratch / "in"
    for i, f in enumerate(files):
        d = shards / f"s{i % cores}"
        d.mkdir(parents=True, exist_ok=True)
        os.link(f, d / f.name)
    names = "\n".join(f"s{i}" for i in range(cores)) + "\n"
    py = sys.executable
    t0 = time.perf_counter()
    for entry, src, dst in (("preprocess", "in", "pre"), ("infer", "pre", "inf")):
        subprocess.run(
            [
                "xargs",
                "-P",
                str(cores),
                "-I{}",
                py,
                "step.py",
                entry,
                "--work",
                str(work),
                "--inp",
                str(scratch / src / "{}"),
                "--out",
                str(scratch / dst / "{}"),
            ],
            input=names.encode(),
            cwd=repo,
            check=True,
        )
    subprocess.run(
        [py, "step.py", "aggregate", "--inp", str(scratch / "inf"), "--out", str(scratch / "agg")],
        cwd=repo,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    took = time.perf_counter() - t0
    _check_summary(scratch / "agg" / "summary.json")
    return took


def _check_summary(path: Path) -> None:
    summary = json.loads(path.read_text())
    if not summary["files"]:
        raise RuntimeError(f"{path}: no files were processed")


def e2e_spec(repo: Path, data: Path, cores: int, work: int) -> dict[str, Any]:
    """The 3-node DAG of the end-to-end comparison (also what benchmarks.profile samples)."""
    return {
        "name": "bench-e2e",
        "nodes": [
            _node(
                "preprocess",
                repo,
                "preprocess",
                parallelism=cores,
                parameters={"work": work},
                inputs=[{"name": "images", "source": {"uri": str(data)}, "partition": "by_file"}],
            ),
            _node(
                "infer",
                repo,
                "infer",
                parallelism=cores,
                parameters={"work": work},
                inputs=[{"name": "pre", "source": {"node": "preprocess"}, "partition": "by_file"}],
            ),
            _node(
                "aggregate",
                repo,
                "aggregate",
                inputs=[{"name": "pred", "source": {"node": "infer"}, "partition": "broadcast"}],
            ),
        ],
    }


async def end_to_end(stack: BenchStack, repo: Path, size: Size, scratch: Path) -> dict[str, Any]:
    data = _make_inputs(scratch / "data", size.e2e_files)
    cores = stack.slots
    spec = e2e_spec(repo, data, cores, size.work)
    a, b, c = [], [], []
    for i in range(size.repeat):
        a.append((await _run(stack, spec))[0])
        b.append(
            await asyncio.to_thread(
                _sequential_mlflow, repo, data, size.work, scratch / f"b{i}", stack.env
            )
        )
        c.append(await asyncio.to_thread(_xargs, repo, data, size.work, scratch / f"c{i}", cores))
    ma, mb, mc = median(a), median(b), median(c)
    return {
        "files": size.e2e_files,
        "cores": cores,
        "parallels_s": ma,
        "sequential_mlflow_run_s": mb,
        "xargs_lower_bound_s": mc,
        "speedup_vs_sequential": mb / ma,
        "slowdown_vs_xargs": ma / mc,
        "samples": {"parallels": a, "sequential": b, "xargs": c},
        "targets": {
            "speedup_vs_sequential >= 1.8": mb / ma >= 1.8,
            "slowdown_vs_xargs <= 1.15": ma / mc <= 1.15,
        },
    }


# 3 ----------------------------------------------------------------------------------------------
def planning(size: Size) -> dict[str, Any]:
    rng = random.Random(3)
    files = [
        partitioning.FileEntry(root=0, path=f"d{i % 100}/f{i:06d}.jpg", size=rng.randint(1, 10**6))
        for i in range(size.plan_files)
    ]
    listing = partitioning.InputListing(
        name="images", mode=PartitionMode.BY_FILE, roots=["s3://bucket/raw"], files=files
    )
    times, nbytes = [], 0
    for _ in range(5):
        t0 = time.perf_counter()
        manifest = partitioning.plan([listing], 64)
        nbytes = len(partitioning.manifest_bytes(manifest))
        times.append(time.perf_counter() - t0)
    took = median(times)
    return {
        "files": size.plan_files,
        "partitions": 64,
        "plan_and_serialise_s": took,
        "manifest_bytes": nbytes,
        "samples": times,
        "target": "<= 1 s for 100,000 files",
        "met": took <= 1.0,
    }


async def _history(stack: BenchStack, workflow_id: str) -> tuple[int, int, int]:
    assert stack.client
    history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
    events: list[HistoryEvent] = list(history.events)
    sizes = [e.ByteSize() for e in events]
    return len(events), sum(sizes), max(sizes)


async def big_node(stack: BenchStack, repo: Path, size: Size) -> dict[str, Any]:
    n = size.big_partitions
    spec = {"name": "bench-wide", "nodes": [_node("wide", repo, "noop", parallelism=n)]}
    took, wid = await _run(stack, spec)
    dag = await _history(stack, wid)
    node = await _history(stack, naming.node_workflow_id(wid, "wide"))
    worst_events = max(dag[0], node[0])
    worst_payload = max(dag[2], node[2])
    return {
        "partitions": n,
        "wall_s": took,
        "dag_history": {"events": dag[0], "bytes": dag[1], "largest_event_bytes": dag[2]},
        "node_history": {"events": node[0], "bytes": node[1], "largest_event_bytes": node[2]},
        "events_per_partition": node[0] / n,
        "history_bytes_per_partition": node[1] / n,
        "target": "no history over 10,000 events, no payload over 256 KB",
        "met": worst_events <= 10_000 and worst_payload <= 256 * 1024,
    }


# 4 ----------------------------------------------------------------------------------------------
async def _load(
    http: httpx.AsyncClient, method: str, url: str, n: int, concurrency: int, body: Any = None
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    todo = iter(range(n))

    async def one() -> None:
        nonlocal errors
        for _ in todo:
            t0 = time.perf_counter()
            r = await http.request(method, url, json=body)
            latencies.append(time.perf_counter() - t0)
            if r.status_code >= 400:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    return {
        "requests": n,
        "concurrency": concurrency,
        "errors": errors,
        "rps": n / wall,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


async def api(stack: BenchStack, repo: Path, size: Size) -> dict[str, Any]:
    assert stack.client
    base = f"{stack.api_url}/api/v1"
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        for i in range(20):
            spec = {"name": f"bench-api-{i}", "nodes": [_node("noop", repo, "noop")]}
            r = await http.post("/templates", json={"spec": spec})
            assert r.status_code in (201, 409), r.text
        get = await _load(http, "GET", "/templates/bench-api-0", size.api_requests, 16)
        listing = await _load(http, "GET", "/templates?limit=50", size.api_requests, 16)
        # 100 runs started at once; every one must complete.
        t0 = time.perf_counter()
        starts = await _load(
            http, "POST", "/runs", size.burst_runs, size.burst_runs, {"template": "bench-api-0"}
        )
        found = (await http.get("/runs", params={"template": "bench-api-0", "limit": 500})).json()
        ids = [r["id"] for r in found["items"]]
        results = await asyncio.gather(
            *(stack.client.get_workflow_handle(i, result_type=DagRunResult).result() for i in ids),
            return_exceptions=True,
        )
        done = time.perf_counter() - t0
    succeeded = sum(1 for r in results if getattr(r, "status", None) == "succeeded")
    return {
        "template_get": get,
        "template_list": listing,
        "run_start": starts,
        "burst": {
            "runs": size.burst_runs,
            "listed": len(ids),
            "succeeded": succeeded,
            "all_complete_s": done,
        },
        "met": starts["errors"] == 0 and succeeded == size.burst_runs == len(ids),
    }


# 5 ----------------------------------------------------------------------------------------------
async def environments(stack: BenchStack, repo: Path) -> dict[str, Any]:
    """A virtualenv built on the first run and reused on the second."""
    spec = {
        "name": "bench-env",
        "nodes": [{**_node("venv", repo, "noop"), "env_manager": "virtualenv"}],
    }
    timings = []
    for _ in range(2):
        _, wid = await _run(stack, spec)
        timings.append(
            await _activity_seconds(
                stack, naming.node_workflow_id(wid, "venv"), "prepare_environment"
            )
        )
    return {"cold_s": timings[0], "warm_s": timings[1]}


async def _activity_seconds(stack: BenchStack, workflow_id: str, activity: str) -> float:
    assert stack.client
    history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
    scheduled: dict[int, float] = {}
    for e in history.events:
        if e.HasField("activity_task_scheduled_event_attributes"):
            if e.activity_task_scheduled_event_attributes.activity_type.name == activity:
                scheduled[e.event_id] = e.event_time.ToDatetime().timestamp()
        elif e.HasField("activity_task_completed_event_attributes"):
            sid = e.activity_task_completed_event_attributes.scheduled_event_id
            if sid in scheduled:
                return e.event_time.ToDatetime().timestamp() - scheduled[sid]
    raise RuntimeError(f"no completed {activity} in {workflow_id}")
