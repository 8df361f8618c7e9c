"""The embedded stack: a Temporal dev server and an MLflow server as local child processes.

Used by `parallels up` / `parallels demo` and by the test suite, so tests run on the same parts
users do. State (Temporal database, MLflow database and artifacts) lives under one directory.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from parallels import deathsig

log = logging.getLogger(__name__)


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def binary(name: str) -> str:
    # Prefer the binary installed next to this interpreter (the venv), then PATH.
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise StackError(f"'{name}' not found: install the project (pip install -e .)")
    return found


#: The MLflow app name the UI plugin registers (entry point group `mlflow.app`).
PLUGIN_APP = "parallels"

# Kills a whole process group when its parent (our CLI) dies: PR_SET_PDEATHSIG reaches only a
# direct child, and `mlflow server` runs uvicorn as a grandchild.
_WATCHDOG = """
import ctypes, os, signal, sys, time
group, parent = int(sys.argv[1]), int(sys.argv[2])
def bye(*_):
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != parent:
    bye()
while True:
    time.sleep(3600)
"""


class _Process:
    def __init__(self, name: str, cmd: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.log_path = log_path
        self.proc = subprocess.Popen(
            deathsig.argv(cmd),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self.proc.pid), str(os.getpid())],
            stdin=subprocess.DEVNULL,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._watchdog.kill()
        self._watchdog.wait()
        self._log.close()

    def tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _wait(check: object, proc: _Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise StackError(f"{proc.name} exited at start:\n{proc.tail()}")
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise StackError(f"{proc.name} not ready after {timeout:.0f}s:\n{proc.tail()}")


class TemporalDevServer:
    def __init__(
        self, state_dir: Path, port: int, ui_port: int, *, ui: bool = True, persist: bool = True
    ) -> None:
        self.state_dir, self.port, self.ui_port, self.ui, self.persist = (
            state_dir,
            port,
            ui_port,
            ui,
            persist,
        )
        self._p: _Process | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        cmd = [
            binary("temporal"), "server", "start-dev",
            "--ip", "127.0.0.1", "--port", str(self.port),
            "--ui-port", str(self.ui_port), "--ui-disable-news-fetch", "--log-level", "warn",
            "--search-attribute", "ParallelsDag=Keyword",
            "--search-attribute", "MlflowRunId=Keyword",
            "--search-attribute", "ParallelsOwner=Keyword",
        ]  # fmt: skip
        if not self.ui:
            cmd.append("--headless")
        if self.persist:
            cmd += ["--db-filename", str(self.state_dir / "temporal.db")]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._p = _Process(
            "temporal dev server", cmd, self.state_dir / "temporal.log", dict(os.environ)
        )
        _wait(lambda: port_open(self.port), self._p, timeout)

    def stop(self) -> None:
        if self._p:
            self._p.stop()


def plugin_app() -> str | None:
    """`parallels` when the MLflow UI plugin (mlflow-parallels-plugin) is installed here."""
    found = importlib.metadata.entry_points(group="mlflow.app", name=PLUGIN_APP)
    return PLUGIN_APP if found else None


class MlflowServer:
    def __init__(
        self,
        state_dir: Path,
        port: int,
        *,
        app_name: str | None = None,
        api_url: str | None = None,
        serve_artifacts: bool = False,
    ) -> None:
        self.state_dir, self.port = state_dir, port
        # With the plugin, the server also serves the Parallels tab, which calls the API here.
        self.app_name, self.api_url = app_name, api_url
        # Artifacts through the server (`mlflow-artifacts:/` URIs, over HTTP), as a shared
        # deployment has them, instead of a directory every client writes into directly.
        self.serve_artifacts = serve_artifacts
        self._p: _Process | None = None

    @property
    def pid(self) -> int | None:
        """The `mlflow server` process (its uvicorn runs as a child), while it runs."""
        return self._p.proc.pid if self._p and self._p.alive() else None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> None:
        root = self.state_dir.resolve()
        (root / "mlflow-artifacts").mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # Without this MLflow 3 also starts job-runner processes (~1.7 GB) we do not use.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        cmd = [
            binary("mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", "1",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        ]  # fmt: skip
        if self.serve_artifacts:
            cmd += ["--serve-artifacts", "--artifacts-destination", str(root / "mlflow-artifacts")]
        else:
            cmd += ["--default-artifact-root", str(root / "mlflow-artifacts")]
        if self.app_name:
            cmd += ["--app-name", self.app_name]
        if self.api_url:
            env["PARALLELS_API_URL"] = self.api_url
        self._p = _Process("mlflow server", cmd, root / "mlflow.log", env)
        _wait(self._healthy, self._p, timeout)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.uri}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self._p:
            self._p.stop()


class EmbeddedServers:
    """Temporal + MLflow servers for one state dir; a context manager that cleans up."""

    def __init__(
        self,
        state_dir: Path,
        *,
        temporal_port: int,
        ui_port: int,
        mlflow_port: int,
        ui: bool = True,
        mlflow_app: str | None = None,
        api_url: str | None = None,
    ) -> None:
        self.temporal = TemporalDevServer(state_dir / "temporal", temporal_port, ui_port, ui=ui)
        self.mlflow = MlflowServer(
            state_dir / "mlflow", mlflow_port, app_name=mlflow_app, api_url=api_url
        )

    def __enter__(self) -> EmbeddedServers:
        busy = [p for p in (self.temporal.port, self.mlflow.port) if port_open(p)]
        if busy:
            raise StackError(
                f"port(s) {', '.join(map(str, busy))} already in use: is `parallels up` already "
                "running? Set PARALLELS_TEMPORAL_ADDRESS / PARALLELS_MLFLOW_PORT to use others"
            )
        try:
            self.temporal.start()
            self.mlflow.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self.mlflow.stop()
        self.temporal.stop()
