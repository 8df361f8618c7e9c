"""The command of a partition's pod: fetch inputs, run the entry point, upload outputs.

Same contract as a local partition (parallels.runner): the step reads PARALLELS_INPUT_DIR,
writes PARALLELS_OUTPUT_DIR and logs to the MLflow run in MLFLOW_RUN_ID. Its output goes to the
pod's log (the worker keeps it as an MLflow artifact); the outcome goes to the termination
message, where the worker reads it. Exit status: the step's own, or 1 when the runner failed.

Configuration is the pod's environment, read here once: PARALLELS_JOB (a PodJob as JSON),
MLFLOW_TRACKING_URI, PARALLELS_WORKSPACE, PARALLELS_TERMINATION_LOG.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from parallels import runner
from parallels.errors import ParallelsError
from parallels.mlproject import format_command
from parallels.pods import RUNNER_FAILED, RUNNER_RETRYABLE, PodJob

#: Kubernetes keeps at most 4096 bytes of a termination message.
MESSAGE_BYTES = 4000


def main(environ: Mapping[str, str]) -> int:
    job = PodJob.model_validate_json(environ["PARALLELS_JOB"])
    tracking_uri = environ["MLFLOW_TRACKING_URI"]
    termination = Path(environ.get("PARALLELS_TERMINATION_LOG", "/dev/termination-log"))
    work = runner.WorkDir(Path(environ.get("PARALLELS_WORKSPACE", "/workspace")) / "data").fresh()
    laps = runner.Laps()
    try:
        manifest = runner.load_manifest(job.manifest_uri, job.digest, tracking_uri)
        n = runner.fetch_inputs(manifest, job.index, work.input, tracking_uri, _say)
        laps.phases["input_files"] = n
        laps.lap("fetch_seconds")
        command = format_command(
            job.entry_point,
            job.parameters,
            auto={"input_dir": str(work.input), "output_dir": str(work.output)},
        )
    except ParallelsError as e:
        return _runner_failed(termination, e, "preparing the partition")
    env = runner.child_env(
        environ,
        python=sys.executable,
        tracking_uri=tracking_uri,
        run_id=job.run_id,
        experiment_id=job.experiment_id,
        work=work,
        index=job.index,
        count=job.count,
    )
    _say(f"partition {job.index + 1}/{job.count}: {n} input files; running: {command}")
    code, tail = _run(command, env)
    laps.lap("command_seconds")
    if code != 0:
        _write(termination, f"partition {job.index} {runner.describe_exit(code)}", tail)
        return code if code > 0 else 128 - code
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri)
        runner.upload(client, job.run_id, work, outputs=True)
    except ParallelsError as e:
        return _runner_failed(termination, e, "uploading outputs")
    laps.lap("upload_seconds")
    runner.log_phases(client, job.run_id, laps.phases)
    _write(termination, "succeeded", "")
    return 0


def _run(command: str, env: dict[str, str]) -> tuple[int, str]:
    """Run the step, passing its output through to the pod log; keep the last lines."""
    shell = shutil.which("bash") or "/bin/sh"
    tail: collections.deque[str] = collections.deque(maxlen=20)
    proc = subprocess.Popen(
        [shell, "-c", command],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    # Kubernetes stops a pod with SIGTERM to its first process: pass it on to the step.
    signal.signal(signal.SIGTERM, lambda signum, frame: proc.terminate())
    assert proc.stdout is not None
    for raw in proc.stdout:
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
        tail.append(raw.decode(errors="replace").rstrip("\n"))
    return proc.wait(), "\n".join(tail)


def _runner_failed(termination: Path, e: ParallelsError, doing: str) -> int:
    prefix = RUNNER_RETRYABLE if e.retryable else RUNNER_FAILED
    _write(termination, f"{prefix} {doing}: {e}", "")
    print(f"parallels: {doing} failed: {e}", file=sys.stderr, flush=True)
    return 1


def _write(termination: Path, message: str, tail: str) -> None:
    text = message + (f"; last output:\n{tail}" if tail else "")
    data = text.encode()
    if len(data) > MESSAGE_BYTES:  # keep the head (the cause) and the end of the output
        data = data[: MESSAGE_BYTES // 4] + b"\n...\n" + data[-(MESSAGE_BYTES * 3 // 4) :]
    try:
        termination.write_bytes(data)
    except OSError as e:  # the message is a courtesy; the exit code still tells the outcome
        print(f"parallels: cannot write {termination}: {e}", file=sys.stderr)


def _say(text: str) -> None:
    print(f"parallels: {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main(os.environ))
