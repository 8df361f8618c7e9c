"""Sample where the end-to-end DAG's time goes: `python -m benchmarks.profile [--files N]`.

Runs the e2e benchmark's DAG (parallels part only) once on a fresh BenchStack while py-spy
samples the worker with its partition processes and the MLflow server with its children. Writes
the raw collapsed stacks and prints, per process, the share of samples spent in each phase and the
heaviest frames. Needs `py-spy` (`pip install py-spy`) and permission to ptrace (root, or
`kernel.yama.ptrace_scope=0`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from mlflow.tracking import MlflowClient

from benchmarks.harness import PROJECT, BenchStack, git_repo
from benchmarks.suites import FULL, _make_inputs, _run, e2e_spec

#: Frames that name a phase of the worker; the first phase with a matching frame wins.
PHASES = [
    ("step command (user code)", "step.py"),
    ("fetch inputs", "fetch_inputs (runner.py"),
    ("upload outputs", "upload (runner.py"),
    ("plan partitions", "plan_partitions ("),
    ("MLflow run bookkeeping", "tracking.py"),
    ("Temporal SDK", "temporalio/"),
]
_HANDLERS = "(mlflow/server/handlers.py"


def _phase(frames: list[str]) -> str:
    for name, key in PHASES:
        if any(key in f for f in frames):
            return name
    # In the MLflow server: the request handler the sample is in.
    handlers = [f for f in frames if _HANDLERS in f and "wrapper" not in f]
    return f"MLflow {handlers[0].split(' ')[0]}" if handlers else "other"


def _spy(name: str, pid: int | None, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` and its children into out/<name>.txt until SIGINT."""
    assert pid is not None, f"{name} is not running"
    cmd = ["py-spy", "record", "--pid", str(pid), "--subprocesses", "--format", "raw"]
    cmd += ["--rate", "50", "--nonblocking", "--output", str(out / f"{name}.txt")]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


def timeline(tracking_uri: str, workflow_id: str) -> list[str]:
    """When each node ran, and where its partitions' time went (their phase metrics)."""
    mlflow = MlflowClient(tracking_uri)
    exps = [e.experiment_id for e in mlflow.search_experiments()]
    runs = mlflow.search_runs(
        exps, filter_string=f"tags.`parallels.workflow_id` = '{workflow_id}'", max_results=1000
    )
    kind = {r.info.run_id: r.data.tags.get("parallels.kind") for r in runs}
    t0 = min(r.info.start_time for r in runs)
    lines = ["  node         start    end  | partition means: fetch  command  upload  (s)"]
    for r in sorted(runs, key=lambda r: r.info.start_time):
        if kind[r.info.run_id] != "node":
            continue
        node = r.data.tags["parallels.node"]
        parts = [p for p in runs if kind[p.info.run_id] == "partition"
                 and p.data.tags.get("parallels.node") == node]  # fmt: skip
        mean = {
            m: sum(p.data.metrics.get(m, 0.0) for p in parts) / max(1, len(parts))
            for m in ("fetch_seconds", "command_seconds", "upload_seconds")
        }
        start, end = (r.info.start_time - t0) / 1000, (r.info.end_time - t0) / 1000
        lines.append(
            f"  {node:<10} {start:6.1f} {end:6.1f}"
            f"  | {mean['fetch_seconds']:20.2f} {mean['command_seconds']:8.2f}"
            f" {mean['upload_seconds']:7.2f}"
        )
    return lines


def summarise(raw: Path, top: int = 12) -> str:
    phases: Counter[str] = Counter()
    frames: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        count = int(n)
        total += count
        parts = stack.split(";")
        phases[_phase(parts)] += count
        for frame in dict.fromkeys(parts[1:]):  # inclusive: each frame once per sample
            frames[frame] += count
    lines = [f"{raw.name}: {total} samples"]
    lines += [f"  {name:<26} {n / total:6.1%}" for name, n in phases.most_common()]
    lines.append("  heaviest frames (inclusive):")
    lines += [
        f"    {n / total:6.1%}  {f[:110]}"
        for f, n in sorted(frames.items(), key=lambda x: (-x[1], x[0]))[:top]
    ]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    if not shutil.which("py-spy"):
        sys.exit("py-spy is not installed: pip install py-spy")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="parallels-profile-") as tmp:
        root = Path(tmp)
        repo = git_repo(PROJECT, root / "project")
        data = _make_inputs(root / "data", args.files)
        async with BenchStack(root / "stack", os.cpu_count() or 1) as stack:
            assert stack.servers and stack.servers.mlflow
            targets = {
                "worker": stack.procs["worker"].pid,
                "mlflow": stack.servers.mlflow.pid,
            }
            spies = [_spy(name, pid, out) for name, pid in targets.items()]
            await asyncio.sleep(1)
            took, wid = await _run(stack, e2e_spec(repo, data, stack.slots, FULL.work))
            for spy in spies:
                spy.send_signal(signal.SIGINT)
            for spy in spies:
                spy.wait(60)
            assert stack.settings
            lines = timeline(stack.settings.mlflow_tracking_uri, wid)
    print(f"parallels e2e over {args.files} files: {took:.1f} s")
    print("\n".join(lines))
    for name in targets:
        print(summarise(out / f"{name}.txt"))


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--files", type=int, default=FULL.e2e_files)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/profile"))
    asyncio.run(main(p.parse_args()))


if __name__ == "__main__":
    cli()
