"""Soak: start small DAG runs at a steady pace for a while and watch worker and API memory.

`python -m benchmarks.soak [--minutes 10] [--every 2] [--out FILE]`. Prints the memory curve
(RSS of the worker and API processes every `--sample` seconds) and writes it as JSON; a flat
curve means no leak per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from benchmarks.harness import PROJECT, BenchStack, git_repo, memory_mb

console = Console()


async def soak(minutes: float, every: float, sample: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="parallels-soak-") as tmp:
        repo = git_repo(PROJECT, Path(tmp) / "project")
        async with BenchStack(Path(tmp) / "stack", os.cpu_count() or 1) as stack:
            spec = {"name": "soak", "nodes": [
                {"id": "a", "project": {"uri": str(repo)}, "entry_point": "noop",
                 "env_manager": "local", "parallelism": 2},
                {"id": "b", "project": {"uri": str(repo)}, "entry_point": "noop",
                 "env_manager": "local", "parallelism": 2, "depends_on": ["a"]},
            ]}  # fmt: skip
            async with httpx.AsyncClient(base_url=f"{stack.api_url}/api/v1", timeout=60) as http:
                r = await http.post("/templates", json={"spec": spec})
                r.raise_for_status()
                curve: list[dict[str, float]] = []
                started: list[str] = []
                t0 = time.monotonic()
                next_start = next_sample = t0
                end = t0 + minutes * 60
                while time.monotonic() < end:
                    now = time.monotonic()
                    if now >= next_start:
                        r = await http.post("/runs", json={"template": "soak"})
                        r.raise_for_status()
                        started.append(r.json()["id"])
                        next_start += every
                    if now >= next_sample:
                        point = {"t_s": round(now - t0, 1), "runs_started": len(started)}
                        for name, proc in stack.procs.items():
                            point[f"{name}_rss_mb"] = memory_mb(proc.pid)
                        curve.append(point)
                        console.print(point)
                        next_sample += sample
                    await asyncio.sleep(0.1)
                assert stack.client
                results = await asyncio.gather(
                    *(stack.client.get_workflow_handle(i).result() for i in started),
                    return_exceptions=True,
                )
    ok = sum(1 for r in results if isinstance(r, dict) and r.get("status") == "succeeded")
    first, last = curve[1] if len(curve) > 1 else curve[0], curve[-1]
    return {
        "minutes": minutes,
        "runs_started": len(started),
        "runs_succeeded": ok,
        "curve": curve,
        "growth_mb": {k: last[k] - first[k] for k in last if k.endswith("_rss_mb")},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--every", type=float, default=2, help="seconds between run starts")
    p.add_argument("--sample", type=float, default=30, help="seconds between memory samples")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/soak.json"))
    a = p.parse_args()
    result = asyncio.run(soak(a.minutes, a.every, a.sample))
    t = Table(title=f"soak: {result['runs_started']} runs in {a.minutes:g} min, "
                    f"{result['runs_succeeded']} succeeded")  # fmt: skip
    cols = [k for k in result["curve"][0] if k != "t_s"]
    t.add_column("t s", justify="right")
    for c in cols:
        t.add_column(c, justify="right")
    for point in result["curve"]:
        t.add_row(f"{point['t_s']:.0f}", *[f"{point[c]:.0f}" for c in cols])
    console.print(t)
    console.print(f"growth after the first sample: {result['growth_mb']}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
