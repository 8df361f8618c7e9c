"""A partition's MLflow run, shared by every cluster kind: opened once per partition key (a
retried attempt reuses it), with the step's failures counted on the run itself."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Mapping
from pathlib import Path

from activities.tracking import Tracking, source_tags
from parallels.errors import ParallelsError, PartitionFailed, TransientError
from parallels.models import PartitionInput

FAILURES_TAG = "parallels.failures"


class PartitionRuns:
    def __init__(self, tracking: Tracking) -> None:
        self._tracking = tracking

    def open(self, inp: PartitionInput) -> tuple[str, int, str | None]:
        """The partition's run, with the step failures and last error of earlier attempts."""
        tags = {
            "parallels.dag": inp.dag_name,
            "parallels.node": inp.node_id,
            "parallels.partition": str(inp.index),
            "parallels.partition_count": str(inp.count),
            "parallels.workflow_id": inp.workflow_id,
            "parallels.kind": "partition",
            "parallels.env": inp.env.env_id,
            **source_tags(inp.project, inp.entry_point.name),
        }
        try:
            if inp.adopt_run_id:
                run_id, tags = self._tracking.adopt_run(
                    inp.adopt_run_id, inp.key, tags, inp.node_run_id
                )
            else:
                run_id, tags = self._tracking.ensure_run_with_tags(
                    inp.experiment_id, inp.key, f"{inp.node_id}-{inp.index}", tags, inp.node_run_id
                )
            self._tracking.log_params(run_id, inp.parameters)
        except ParallelsError:
            raise
        except Exception as e:
            raise TransientError(f"MLflow: cannot open the partition run: {e}") from e
        return run_id, int(tags.get(FAILURES_TAG, "0")), tags.get("parallels.error")

    def open_attempt(self, inp: PartitionInput) -> str:
        """The partition's run for a new attempt; if earlier attempts used up the retries (the
        last one timed out, which Temporal retries itself), close it and report that instead."""
        run_id, failures, last_error = self.open(inp)
        if failures > inp.retries:
            message = last_error or f"partition {inp.index} failed"
            self.close(run_id, "FAILED", None, message)
            raise PartitionFailed(message, final=True)
        return run_id

    def count_failure(self, run_id: str) -> int:
        """Failures of the step itself, kept on the run so worker crashes do not count."""
        client = self._tracking.client
        failures = int(client.get_run(run_id).data.tags.get(FAILURES_TAG, "0")) + 1
        client.set_tag(run_id, FAILURES_TAG, str(failures))
        return failures

    def save_log(self, run_id: str, name: str, text: str) -> None:
        """Keep a log as the run's artifact `logs/<name>` (best effort: never hides the
        outcome it belongs to)."""
        with contextlib.suppress(Exception), tempfile.TemporaryDirectory() as d:
            path = Path(d) / name
            path.write_text(text, encoding="utf-8")
            self._tracking.client.log_artifact(run_id, str(path), "logs")

    def close(
        self,
        run_id: str,
        status: str,
        seconds: float | None,
        error: str | None,
        phases: Mapping[str, float] | None = None,
    ) -> None:
        """End the run; `phases` are extra metrics (e.g. seconds spent fetching inputs)."""
        metrics = {} if seconds is None else {"duration_seconds": seconds}
        self._tracking.close(run_id, status, {**metrics, **(phases or {})}, error)
