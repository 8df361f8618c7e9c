"""run_partition on the local cluster: one MLflow partition run, one process.

Safe to retry: the run is found by its key, the work dir is named from the key and emptied per
attempt. Cancellation (or the node timeout) kills the whole process group and marks the run KILLED.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from temporalio import activity

from activities.errors import heartbeater, translate_errors
from activities.partition_runs import PartitionRuns
from activities.tracking import Tracking
from parallels import deathsig, naming, runner
from parallels.errors import PartitionFailed
from parallels.mlproject import format_command
from parallels.models import PartitionInput, PartitionResult

KILL_GRACE_SECONDS = 5.0


class LocalPartitions:
    def __init__(
        self,
        *,
        tracking: Tracking,
        tracking_uri: str,
        work_dir: Path,
        base_env: Mapping[str, str],
        heartbeat_seconds: float = 5.0,
        keep_workdirs: bool = False,
    ) -> None:
        self._tracking = tracking
        self._runs = PartitionRuns(tracking)
        self._tracking_uri = tracking_uri
        self._work_dir = work_dir
        self._base_env = dict(base_env)
        self._beat = heartbeat_seconds
        self._keep = keep_workdirs
        # A SIGKILLed worker leaves no orphan racing the retry on another worker.
        self._die_with_worker = deathsig.prefix(signal.SIGKILL)

    @activity.defn(name="run_partition")
    @translate_errors
    async def run_partition(self, inp: PartitionInput) -> PartitionResult:
        started = time.monotonic()
        info = activity.info()
        attempt = info.attempt
        run_id = await asyncio.to_thread(self._runs.open_attempt, inp)
        phase = ["fetching inputs"]
        beat = heartbeater()
        beating = asyncio.create_task(self._heartbeat(phase))
        work = runner.WorkDir(self._work_dir / naming.safe_name(inp.key)).fresh()
        log_path = work.logs / f"attempt-{attempt}.log"
        status = "FAILED"
        error: str | None = None
        uploaded = False
        laps = runner.Laps()  # where the time went, kept as metrics of the partition's run
        try:
            manifest = await asyncio.to_thread(
                runner.load_manifest, inp.manifest_uri, inp.digest, self._tracking_uri
            )
            n = await asyncio.to_thread(
                runner.fetch_inputs,
                manifest,
                inp.index,
                work.input,
                self._tracking_uri,
                beat,
            )
            laps.phases["input_files"] = n
            laps.lap("fetch_seconds")
            command = format_command(
                inp.entry_point,
                inp.parameters,
                auto={"input_dir": str(work.input), "output_dir": str(work.output)},
            )
            phase[0] = "running"
            env = runner.child_env(
                self._base_env,
                python=inp.env.python,
                tracking_uri=self._tracking_uri,
                run_id=run_id,
                experiment_id=inp.experiment_id,
                work=work,
                index=inp.index,
                count=inp.count,
            )
            activity.logger.info("partition %s: %d input files, running: %s", inp.key, n, command)
            limit = info.start_to_close_timeout
            # Enforced here, a little before Temporal's own timeout (the backstop), so the kill,
            # the failure count and the message are ours and a timeout uses up a retry.
            deadline = (
                started + limit.total_seconds() - min(2.0, 0.1 * limit.total_seconds())
                if limit
                else None
            )
            code = await self._run_command(
                command, Path(inp.env.source_dir), env, log_path, deadline
            )
            laps.lap("command_seconds")
            phase[0] = "uploading outputs"
            await asyncio.to_thread(
                runner.upload, self._tracking.client, run_id, work, outputs=code == 0
            )
            laps.lap("upload_seconds")
            uploaded = True
            if code != 0:
                error = f"partition {inp.index} " + (
                    runner.describe_exit(code)
                    if code is not None
                    else f"timed out after {limit.total_seconds():g}s (the node's timeout)"
                    if limit
                    else "timed out"
                )
                failures = await asyncio.to_thread(self._runs.count_failure, run_id)
                tail = runner.log_tail(log_path)
                raise PartitionFailed(
                    error + (f"; last output:\n{tail}" if tail else ""),
                    code,  # None: timed out
                    final=failures > inp.retries,
                )
            status = "FINISHED"
        except asyncio.CancelledError:
            status, error = "KILLED", "cancelled"
            raise
        except Exception as e:
            error = error or str(e)
            raise
        finally:
            beating.cancel()
            await asyncio.shield(
                self._finish(
                    run_id,
                    work,
                    status,
                    error,
                    time.monotonic() - started,
                    laps.phases,
                    upload=not uploaded,
                )
            )
        return PartitionResult(
            index=inp.index, run_id=run_id, exit_code=0, seconds=time.monotonic() - started
        )

    async def _run_command(
        self, command: str, cwd: Path, env: dict[str, str], log_path: Path, deadline: float | None
    ) -> int | None:
        """The command's exit code, or None if it ran past `deadline` (and was killed)."""
        with log_path.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                *self._die_with_worker,
                "/bin/bash",
                "-c",
                command,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                if deadline is None:
                    return await proc.wait()
                return await asyncio.wait_for(proc.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                await _kill_group(proc)
                return None
            except asyncio.CancelledError:
                await _kill_group(proc)
                raise

    async def _heartbeat(self, phase: list[str]) -> None:
        while True:
            activity.heartbeat(phase[0])
            await asyncio.sleep(self._beat)

    async def _finish(
        self,
        run_id: str,
        work: runner.WorkDir,
        status: str,
        error: str | None,
        seconds: float,
        phases: dict[str, float],
        *,
        upload: bool,
    ) -> None:
        def close() -> None:
            if upload:
                # Logs of an attempt that ended before its upload (killed, or failed while
                # fetching inputs) are what the user needs first.
                with contextlib.suppress(Exception):
                    runner.upload(self._tracking.client, run_id, work, outputs=False)
            self._runs.close(run_id, status, seconds, error, phases)
            if status == "FINISHED" and not self._keep:
                shutil.rmtree(work.root, ignore_errors=True)

        try:
            await asyncio.to_thread(close)
        except Exception as e:  # closing is best effort; the workflow still sees the outcome
            activity.logger.warning("could not close partition run %s: %s", run_id, e)


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), KILL_GRACE_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
    # Children that left the group's leader behind still share the group id.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
