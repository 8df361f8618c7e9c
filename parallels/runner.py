"""The steps of running one partition, independent of where it runs.

fetch this partition's inputs -> run the entry point command -> upload outputs and logs.
The local cluster calls these inside the worker process (MLflow is already imported there, which
keeps per-partition overhead low); a Kubernetes pod runs the same steps as its command.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path

import mlflow
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from parallels.artifacts import Fetcher
from parallels.errors import InputError, TransientError
from parallels.partitioning import Manifest, digest


class WorkDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.input = root / "input"
        self.output = root / "output"
        self.logs = root / "logs"

    def fresh(self) -> WorkDir:
        """Empty input/output dirs for a new attempt; logs of earlier attempts are kept."""
        import shutil

        for d in (self.input, self.output):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        return self


@lru_cache(maxsize=32)
def load_manifest(uri: str, expected: str, tracking_uri: str) -> Manifest:
    """Download and verify a node's manifest; cached, as every partition reads the same one."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=uri, dst_path=tmp, tracking_uri=tracking_uri
                )
            )
        except MlflowException as e:
            raise TransientError(f"cannot fetch the partition manifest {uri}: {e.message}") from e
        data = path.read_bytes()
    if digest(data) != expected:
        raise InputError(f"partition manifest {uri} does not match its digest {expected}")
    return Manifest.model_validate(json.loads(data))


def fetch_inputs(
    manifest: Manifest,
    index: int,
    input_dir: Path,
    tracking_uri: str,
    progress: Callable[[str], None] = lambda _: None,
) -> int:
    """Download this partition's share of every input into input_dir/<input name>/."""
    count = 0
    with Fetcher(input_dir.parent, tracking_uri) as fetcher:
        for plan in manifest.inputs:
            roots, files = manifest.files_for(plan.name, index)
            dest = input_dir / plan.name
            dest.mkdir(parents=True, exist_ok=True)
            for f in files:
                fetcher.fetch(roots[f.root], f.path, dest)
                count += 1
                if count % 50 == 0:
                    progress(f"fetched {count} files")
    return count


def child_env(
    base: Mapping[str, str],
    *,
    python: str,
    tracking_uri: str,
    run_id: str,
    experiment_id: str,
    work: WorkDir,
    index: int,
    count: int,
) -> dict[str, str]:
    env = dict(base)
    bindir = str(Path(python).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", os.defpath)
    if (Path(bindir).parent / "pyvenv.cfg").exists():
        env["VIRTUAL_ENV"] = str(Path(bindir).parent)
    env.update(
        {
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MLFLOW_RUN_ID": run_id,
            "MLFLOW_EXPERIMENT_ID": experiment_id,
            "PARALLELS_INPUT_DIR": str(work.input),
            "PARALLELS_OUTPUT_DIR": str(work.output),
            "PARALLELS_PARTITION_INDEX": str(index),
            "PARALLELS_PARTITION_COUNT": str(count),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def upload(client: MlflowClient, run_id: str, work: WorkDir, *, outputs: bool) -> None:
    try:
        if outputs and any(work.output.iterdir()):
            client.log_artifacts(run_id, str(work.output), "output")
        if any(work.logs.iterdir()):
            client.log_artifacts(run_id, str(work.logs), "logs")
    except MlflowException as e:
        raise TransientError(f"cannot upload partition outputs: {e.message}") from e


class Laps:
    """Seconds spent in each phase of a partition, kept as metrics of its run."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._mark = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.phases[name] = now - self._mark
        self._mark = now


def log_phases(client: MlflowClient, run_id: str, phases: Mapping[str, float]) -> None:
    """Best effort: timings never change a partition's outcome."""
    stamp = int(time.time() * 1000)
    with contextlib.suppress(Exception):
        client.log_batch(run_id, metrics=[Metric(k, v, stamp, 0) for k, v in phases.items()])


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exited with code {code}"


def log_tail(path: Path, lines: int = 20, max_bytes: int = 16_384) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
