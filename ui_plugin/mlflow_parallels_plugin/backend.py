"""`mlflow run <uri> --backend parallels --backend-config cfg.json`.

The project is submitted to the Parallels API's single-project endpoint and runs as a one-node
DAG on the cluster the config names. As with MLflow's own backends, the MLflow run is created
here, in the caller's tracking server and experiment, and the project logs into it.

Backend config (JSON), every key optional:
  api_url   Parallels API (default: PARALLELS_API_URL, else http://127.0.0.1:8000)
  token     API token (default: PARALLELS_API_TOKEN)
  cluster   where to run (default "local"); resources {cpu, memory, gpu}; timeout ("1h");
  retries   attempts after a failure; wait: block in `run` until the project ends (the mlflow
            CLI does not wait for plugin backends otherwise)
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from mlflow.entities import RunStatus
from mlflow.exceptions import ExecutionException
from mlflow.projects.backend.abstract_backend import AbstractBackend
from mlflow.projects.submitted_run import SubmittedRun
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

# Keys MLflow itself puts into every backend config.
_MLFLOW_KEYS = {"ENV_MANAGER", "SYNCHRONOUS", "DOCKER_ARGS", "STORAGE_DIR", "build_image",
                "docker_auth"}  # fmt: skip
_OURS = {"api_url", "token", "cluster", "resources", "timeout", "retries", "wait", "run_name"}
_TERMINAL = {"succeeded", "failed", "cancelled", "terminated"}
_STATUS = {
    "running": RunStatus.RUNNING,
    "succeeded": RunStatus.FINISHED,
    "failed": RunStatus.FAILED,
    "terminated": RunStatus.FAILED,
    "cancelled": RunStatus.KILLED,
}


class ApiClient:
    """The few calls the backend needs, with the API's error messages kept intact."""

    def __init__(self, api_url: str, token: str | None, timeout: float = 30) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.api_url + "/api/v1", headers=headers, timeout=timeout
        )

    def call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            answer = self._http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise ExecutionException(
                f"the Parallels API at {self.api_url} is unreachable ({e}); set `api_url` in the "
                "backend config or PARALLELS_API_URL"
            ) from e
        body: dict[str, Any] = answer.json() if answer.content else {}
        if answer.status_code >= 400:
            message = body.get("message", answer.text)
            raise ExecutionException(f"Parallels API: {message} (HTTP {answer.status_code})")
        return body


def parse_config(config: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    unknown = set(config) - _OURS - _MLFLOW_KEYS
    if unknown:
        raise ExecutionException(
            f"unknown backend config key(s) {sorted(unknown)}; known: {sorted(_OURS)}"
        )
    ours = {k: v for k, v in config.items() if k in _OURS}
    ours.setdefault("api_url", env.get("PARALLELS_API_URL", "http://127.0.0.1:8000"))
    ours.setdefault("token", env.get("PARALLELS_API_TOKEN") or None)
    return ours


def split_uri(project_uri: str) -> tuple[str, str]:
    """MLflow writes a subdirectory as `uri#sub/dir`; a local folder becomes an absolute path."""
    uri, _, subdirectory = project_uri.partition("#")
    if "://" not in uri and not uri.startswith("git@") and Path(uri).exists():
        uri = str(Path(uri).resolve())
    return uri, subdirectory


class ParallelsBackend(AbstractBackend):  # type: ignore[misc]
    def run(
        self,
        project_uri: str,
        entry_point: str,
        params: Mapping[str, Any],
        version: str | None,
        backend_config: Mapping[str, Any],
        tracking_uri: str,
        experiment_id: str,
    ) -> ParallelsSubmittedRun:
        cfg = parse_config(backend_config or {}, os.environ)
        api = ApiClient(cfg["api_url"], cfg["token"])
        uri, subdirectory = split_uri(project_uri)
        tracking = MlflowClient(tracking_uri)
        run = tracking.create_run(
            experiment_id,
            tags={
                "mlflow.source.type": "PROJECT",
                "mlflow.source.name": project_uri,
                "mlflow.project.entryPoint": entry_point,
                **({"mlflow.source.git.repoURL": uri} if "://" in uri else {}),
            },
            run_name=cfg.get("run_name"),
        )
        mlflow_run_id = run.info.run_id
        body: dict[str, Any] = {
            "uri": uri,
            "subdirectory": subdirectory,
            "entry_point": entry_point,
            "parameters": dict(params or {}),
            "mlflow_run_id": mlflow_run_id,
        }
        if version:
            body["version"] = version
        env_manager = (backend_config or {}).get("ENV_MANAGER")
        if env_manager:
            body["env_manager"] = env_manager
        for key in ("cluster", "resources", "timeout", "retries"):
            if key in cfg:
                body[key] = cfg[key]
        try:
            started = api.call("POST", "/project-runs", json=body)
        except ExecutionException:
            tracking.set_terminated(mlflow_run_id, "FAILED")
            raise
        submitted = ParallelsSubmittedRun(api, started["id"], mlflow_run_id)
        log.info("Parallels run %s logs into MLflow run %s", started["id"], mlflow_run_id)
        if cfg.get("wait") and not submitted.wait():
            raise ExecutionException(
                f"Parallels run {started['id']} ended {submitted.status_name()}; see MLflow run "
                f"{mlflow_run_id} and {started.get('links', {}).get('temporal', 'the API')}"
            )
        return submitted


class ParallelsSubmittedRun(SubmittedRun):  # type: ignore[misc]
    def __init__(self, api: ApiClient, parallels_id: str, mlflow_run_id: str, poll: float = 1.0):
        self._api = api
        self.parallels_id = parallels_id
        self._run_id = mlflow_run_id
        self._poll = poll

    @property
    def run_id(self) -> str:
        return self._run_id

    def _status(self) -> str:
        status: str = self._api.call("GET", f"/runs/{self.parallels_id}")["status"]
        return status

    def wait(self) -> bool:
        while (status := self._status()) not in _TERMINAL:
            time.sleep(self._poll)
        return status == "succeeded"

    def status_name(self) -> str:
        return self._status()

    def get_status(self) -> str:
        name: str = RunStatus.to_string(_STATUS.get(self._status(), RunStatus.RUNNING))
        return name

    def cancel(self) -> None:
        self._api.call("POST", f"/runs/{self.parallels_id}/cancel")
        # MLflow's contract: when cancel returns, the run has stopped.
        deadline = time.monotonic() + 120
        while self._status() not in _TERMINAL and time.monotonic() < deadline:
            time.sleep(self._poll)
