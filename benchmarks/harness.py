"""The benchmark stack and helpers: real Temporal and MLflow servers, a `parallels worker` and a
`parallels api` as their own processes (so their memory is their own), and statistics."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from temporalio.client import Client

from parallels.settings import Settings
from parallels.stack import EmbeddedServers, free_port
from parallels.temporal import connect, ensure_search_attributes, pollers

PROJECT = Path(__file__).parent / "project"


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def percentile(xs: Sequence[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def git_repo(src: Path, dest: Path) -> Path:
    """The benchmark project as a git repository (projects are resolved from git)."""
    shutil.copytree(src, dest)
    v = sys.version_info
    (dest / "python_env.yaml").write_text(
        f'python: "{v.major}.{v.minor}"\nbuild_dependencies: []\ndependencies: []\n'
    )
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "b@b",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "b@b",
    }
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(["git", "-C", str(dest), *cmd], check=True, env=env)
    return dest


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of /proc/<pid>/status in MB: VmRSS now, VmHWM the peak so far (the
    process's own, children not included)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    return memory_mb(pid, "VmHWM")


def _bin(name: str) -> str:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


@dataclass
class BenchStack(AbstractAsyncContextManager["BenchStack"]):
    state: Path
    slots: int
    servers: EmbeddedServers | None = None
    client: Client | None = None
    settings: Settings | None = None
    api_url: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    async def __aenter__(self) -> BenchStack:
        self.state.mkdir(parents=True, exist_ok=True)
        self.servers = EmbeddedServers(
            self.state / "servers",
            temporal_port=free_port(),
            ui_port=free_port(),
            mlflow_port=free_port(),
            ui=False,
        )
        await asyncio.to_thread(self.servers.__enter__)
        api_port = free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.settings = Settings(
            state_dir=self.state / "worker",
            temporal_address=self.servers.temporal.address,
            mlflow_tracking_uri=self.servers.mlflow.uri,
            local_slots=self.slots,
            api_port=api_port,
        )
        self.client = await connect(self.settings)
        await ensure_search_attributes(self.client, self.settings.temporal_namespace)
        env = {
            **os.environ,
            "PARALLELS_STATE_DIR": str(self.settings.state_dir),
            "PARALLELS_TEMPORAL_ADDRESS": self.settings.temporal_address,
            "PARALLELS_MLFLOW_TRACKING_URI": self.settings.mlflow_tracking_uri,
            "PARALLELS_LOCAL_SLOTS": str(self.slots),
            "PARALLELS_API_PORT": str(api_port),
            "PARALLELS_API_OPEN": "true",
            "MLFLOW_TRACKING_URI": self.settings.mlflow_tracking_uri,
        }
        self.env = env
        logs = self.state / "logs"
        logs.mkdir(exist_ok=True)
        for name, cmd in (("worker", ["worker"]), ("api", ["api"])):
            with (logs / f"{name}.log").open("w") as out:
                self.procs[name] = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                    [_bin("parallels"), *cmd], env=env, stdout=out, stderr=subprocess.STDOUT
                )
        await self._until(self._worker_ready, "worker")
        await self._until(self._api_ready, "api")
        return self

    async def _until(self, check: Callable[[], Awaitable[bool]], name: str) -> None:
        deadline = time.monotonic() + 90
        while not await check():
            if self.procs[name].poll() is not None or time.monotonic() > deadline:
                log = (self.state / "logs" / f"{name}.log").read_text()[-2000:]
                raise RuntimeError(f"{name} did not start:\n{log}")
            await asyncio.sleep(0.2)

    async def _worker_ready(self) -> bool:
        assert self.client and self.settings
        return await pollers(self.client, self.settings.temporal_namespace, "parallels-local") > 0

    async def _api_ready(self) -> bool:
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{self.api_url}/health")).status_code == 200
        except httpx.HTTPError:
            return False

    def peak_rss(self) -> dict[str, float]:
        return {name: peak_rss_mb(p.pid) for name, p in self.procs.items() if p.poll() is None}

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.servers:
            await asyncio.to_thread(self.servers.stop)


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
