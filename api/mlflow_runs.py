"""The few MLflow calls the API makes itself, over MLflow's REST API with a short timeout.

MlflowClient retries an unreachable server for minutes; an API request should answer 503 in
seconds instead, so these go through httpx.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from parallels.errors import ParallelsError


class MlflowUnavailable(ParallelsError):
    retryable = True


class MlflowRuns:
    def __init__(self, tracking_uri: str, *, timeout: float = 10.0) -> None:
        self._base = tracking_uri.rstrip("/") + "/api/2.0/mlflow"
        self._tracking_uri = tracking_uri
        self._timeout = timeout

    async def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                r = await http.request(method, f"{self._base}/{path}", **kw)
        except httpx.HTTPError as e:
            raise MlflowUnavailable(f"MLflow at {self._tracking_uri} unreachable: {e}") from e
        if r.status_code == 404 and "RESOURCE_DOES_NOT_EXIST" in r.text:
            return {}
        if r.status_code >= 400:
            raise MlflowUnavailable(f"MLflow answered {r.status_code} to {path}: {r.text[:300]}")
        data: dict[str, Any] = r.json()
        return data

    async def experiment_id(self, name: str) -> str:
        found = await self._call("GET", "experiments/get-by-name", params={"experiment_name": name})
        if found:
            exp = found["experiment"]
            if exp.get("lifecycle_stage") == "deleted":
                raise ParallelsError(f"MLflow experiment '{name}' is deleted: restore or rename it")
            return str(exp["experiment_id"])
        try:
            made = await self._call("POST", "experiments/create", json={"name": name})
        except MlflowUnavailable:
            # Lost a race with another creator: read it back.
            found = await self._call(
                "GET", "experiments/get-by-name", params={"experiment_name": name}
            )
            if not found:
                raise
            return str(found["experiment"]["experiment_id"])
        return str(made["experiment_id"])

    async def create_run(self, experiment: str, run_name: str, tags: Mapping[str, str]) -> str:
        exp_id = await self.experiment_id(experiment)
        made = await self._call(
            "POST",
            "runs/create",
            json={
                "experiment_id": exp_id,
                "run_name": run_name,
                "start_time": int(time.time() * 1000),
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
            },
        )
        return str(made["run"]["info"]["run_id"])

    async def fail_run(self, run_id: str) -> None:
        await self._call(
            "POST",
            "runs/update",
            json={"run_id": run_id, "status": "FAILED", "end_time": int(time.time() * 1000)},
        )
