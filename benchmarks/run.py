"""Run the benchmarks: `python -m benchmarks.run [--smoke] [--only NAMES] [--out FILE]
[--compare OLD.json]`. Prints one table per measurement and writes every figure as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks import suites
from benchmarks.harness import PROJECT, BenchStack, git_repo

NAMES = ("overhead", "e2e", "planning", "wide", "api", "env")
console = Console(width=None if sys.stdout.isatty() else 120)


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="right" if c != columns[0] else "left")
    for r in rows:
        t.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in r])
    console.print(t)


def report(results: dict[str, Any]) -> None:
    if o := results.get("overhead"):
        table(
            "1. per-partition overhead (local cluster, no-op step)",
            ["parallelism", "DAG wall s", "bare wall s", "overhead s/partition"],
            [
                [r["parallelism"], r["dag_wall_s"], r["bare_wall_s"], r["overhead_per_partition_s"]]
                for r in o["rows"]
            ],
        )
        console.print(
            f"marginal overhead per added partition: "
            f"{o['marginal_overhead_per_partition_s']:.3f} s; target met: {o['met']}"
        )
    if e := results.get("e2e"):
        table(
            f"2. end to end: 3 steps over {e['files']} files, {e['cores']} cores",
            ["contender", "median s", "ratio to Parallels"],
            [
                ["(a) Parallels", e["parallels_s"], 1.0],
                [
                    "(b) mlflow run, step by step",
                    e["sequential_mlflow_run_s"],
                    e["sequential_mlflow_run_s"] / e["parallels_s"],
                ],
                [
                    "(c) xargs -P, no tracking",
                    e["xargs_lower_bound_s"],
                    e["xargs_lower_bound_s"] / e["parallels_s"],
                ],
            ],
        )
        console.print(f"targets: {e['targets']}")
    if p := results.get("planning"):
        table(
            "3a. partition planning",
            ["files", "partitions", "median s", "manifest bytes"],
            [[p["files"], p["partitions"], p["plan_and_serialise_s"], p["manifest_bytes"]]],
        )
    if w := results.get("wide"):
        table(
            f"3b. one node, {w['partitions']} partitions",
            ["workflow", "events", "history bytes", "largest event bytes"],
            [
                [
                    "DAG",
                    w["dag_history"]["events"],
                    w["dag_history"]["bytes"],
                    w["dag_history"]["largest_event_bytes"],
                ],
                [
                    "node",
                    w["node_history"]["events"],
                    w["node_history"]["bytes"],
                    w["node_history"]["largest_event_bytes"],
                ],
            ],
        )
        console.print(
            f"wall {w['wall_s']:.1f} s; {w['events_per_partition']:.1f} events and "
            f"{w['history_bytes_per_partition']:.0f} history bytes per partition; "
            f"target met: {w['met']}"
        )
    if a := results.get("api"):
        table(
            "4. API under loopback load",
            ["request", "n", "concurrency", "rps", "p50 ms", "p99 ms", "errors"],
            [
                [
                    k,
                    a[k]["requests"],
                    a[k]["concurrency"],
                    a[k]["rps"],
                    a[k]["p50_ms"],
                    a[k]["p99_ms"],
                    a[k]["errors"],
                ]
                for k in ("template_get", "template_list", "run_start")
            ],
        )
        b = a["burst"]
        console.print(
            f"{b['runs']} runs started at once: {b['succeeded']} succeeded, all done "
            f"in {b['all_complete_s']:.1f} s"
        )
    if r := results.get("resources"):
        table("5. resources", ["measure", "value"], [[k, v] for k, v in r.items()])


def compare(new: dict[str, Any], old_path: Path) -> None:
    """new/old for every number both runs have, so a regression stands out."""
    old = json.loads(old_path.read_text())["results"]

    def walk(a: Any, b: Any, path: str, rows: list[list[Any]]) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in a.keys() & b.keys():
                if k != "samples":
                    walk(a[k], b[k], f"{path}.{k}" if path else k, rows)
        elif (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and not isinstance(a, bool)
            and b
            and not math.isnan(b)
        ):
            rows.append([path, b, a, a / b])

    rows: list[list[Any]] = []
    walk(new, old, "", rows)
    table(f"compared with {old_path.name}", ["figure", "before", "now", "now/before"], sorted(rows))


async def main(args: argparse.Namespace) -> dict[str, Any]:
    size = suites.SMOKE if args.smoke else suites.FULL
    only = set(args.only.split(",")) if args.only else set(NAMES)
    unknown = only - set(NAMES)
    if unknown:
        sys.exit(f"unknown benchmark(s) {sorted(unknown)}; known: {', '.join(NAMES)}")
    slots = os.cpu_count() or 1
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="parallels-bench-") as tmp:
        root = Path(tmp)
        repo = git_repo(PROJECT, root / "project")
        if "planning" in only:
            results["planning"] = suites.planning(size)
        if only - {"planning"}:
            async with BenchStack(root / "stack", slots) as stack:
                if "overhead" in only:
                    results["overhead"] = await suites.overhead(stack, repo, size)
                if "e2e" in only:
                    results["e2e"] = await suites.end_to_end(stack, repo, size, root / "e2e")
                if "wide" in only:
                    results["wide"] = await suites.big_node(stack, repo, size)
                if "api" in only:
                    results["api"] = await suites.api(stack, repo, size)
                resources: dict[str, Any] = {
                    f"peak RSS MB ({name})": mb for name, mb in stack.peak_rss().items()
                }
                if "env" in only:
                    env = await suites.environments(stack, repo)
                    resources["environment preparation s (cold)"] = env["cold_s"]
                    resources["environment preparation s (warm)"] = env["warm_s"]
                results["resources"] = resources
    return results


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition (CI)")
    p.add_argument("--only", help=f"comma-separated subset of: {', '.join(NAMES)}")
    p.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/<time>.json)")
    p.add_argument("--compare", type=Path, help="an earlier JSON result to compare with")
    args = p.parse_args()
    started = time.time()
    results = asyncio.run(main(args))
    report(results)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    doc = {
        "when": when,
        "size": "smoke" if args.smoke else "full",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "seconds": time.time() - started,
        "results": results,
    }
    out = args.out or Path("benchmarks/results") / f"{when.replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=float))
    console.print(f"results: {out}")
    if args.compare:
        compare(results, args.compare)


if __name__ == "__main__":
    cli()
