"""A small MLflow project used by the integration tests, and helpers to run DAGs."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from mlflow.tracking import MlflowClient
from temporalio.client import Client, WorkflowFailureError

from api.app import create_app
from api.store import TemplateStore
from parallels.models import DagRunResult
from parallels.settings import Settings
from parallels.watch import start_dag
from tests.conftest import make_repo

STEP_MLPROJECT = """
name: steps
entry_points:
  emit:
    parameters: {n: {type: float, default: 3}, prefix: {type: string, default: f}, output_dir: path}
    command: "python step.py emit --n {n} --prefix {prefix} --out {output_dir}"
  copy:
    parameters: {tag: {type: string, default: x}, ledger: {type: string, default: ""}, input_dir: path, output_dir: path}
    command: "python step.py copy --tag {tag} --ledger {ledger} --inp {input_dir} --out {output_dir}"
  flaky:
    parameters: {markers: string, output_dir: path}
    command: "python step.py flaky --markers {markers} --out {output_dir}"
  fail:
    parameters: {code: {type: float, default: 3}}
    command: "python step.py fail --code {code}"
  sleep:
    parameters: {seconds: {type: float, default: 30}, pids: {type: string, default: ""}, ledger: {type: string, default: ""},
                 stagger: {type: float, default: 0}, markers: {type: string, default: ""}}
    command: "python step.py sleep --seconds {seconds} --pids {pids} --ledger {ledger} --stagger {stagger} --markers {markers}"
"""

STEP_PY = r"""
import argparse, os, pathlib, shutil, sys, time

p = argparse.ArgumentParser()
p.add_argument("mode")
p.add_argument("--n", type=float)
p.add_argument("--prefix", default="f")
p.add_argument("--out")
p.add_argument("--inp")
p.add_argument("--tag", default="x")
p.add_argument("--ledger", default="")
p.add_argument("--markers", default="")
p.add_argument("--code", type=float, default=3)
p.add_argument("--seconds", type=float, default=30)
p.add_argument("--pids", default="")
p.add_argument("--stagger", type=float, default=0)
a = p.parse_args()
index = os.environ["PARALLELS_PARTITION_INDEX"]

def ledger(event):
    if a.ledger:
        with open(a.ledger, "a") as f:
            f.write(f"{a.tag} {index} {event} {time.time():.3f}\n")

if a.mode == "emit":
    for i in range(int(a.n)):
        (pathlib.Path(a.out) / f"{a.prefix}{i:03d}.txt").write_text("x" * (i + 1))
elif a.mode == "copy":
    ledger("start")
    for src in sorted(pathlib.Path(a.inp).rglob("*")):
        if src.is_file():
            dst = pathlib.Path(a.out) / f"{a.tag}-{src.name}"
            dst.write_text(src.read_text())
    print(f"copied partition {index}")
    ledger("end")
elif a.mode == "flaky":
    marker = pathlib.Path(a.markers) / f"p{index}"
    if not marker.exists():
        marker.write_text("failed once")
        print("first attempt fails on purpose", flush=True)
        sys.exit(5)
    (pathlib.Path(a.out) / "ok.txt").write_text("ok")
elif a.mode == "fail":
    print("something went wrong in the step", flush=True)
    sys.exit(int(a.code))
elif a.mode == "sleep":
    if a.pids:
        (pathlib.Path(a.pids) / f"{index}.pid").write_text(str(os.getpid()))
    seconds = a.seconds * int(index) if a.stagger else a.seconds
    if a.markers:  # only the first attempt of a partition is slow
        marker = pathlib.Path(a.markers) / f"p{index}"
        if marker.exists():
            seconds = 0.2
        marker.write_text("seen")
    ledger("start")
    time.sleep(seconds)
    ledger("end")
"""


def steps_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "steps-repo", {"MLproject": STEP_MLPROJECT, "step.py": STEP_PY})


def node(id: str, repo: Path, entry: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": id,
        "project": {"uri": str(repo)},
        "entry_point": entry,
        "env_manager": "local",
        **kw,
    }


async def run_dag(
    client: Client, settings: Settings, spec: dict[str, Any], **kw: Any
) -> tuple[str, DagRunResult | None, BaseException | None]:
    wid = f"{spec['name']}-{uuid.uuid4().hex[:8]}"
    handle = await start_dag(client, spec, task_queue=settings.task_queue, workflow_id=wid, **kw)
    try:
        return wid, await handle.result(), None
    except WorkflowFailureError as e:
        return wid, None, e.cause


def runs_of(settings: Settings, workflow_id: str) -> list[Any]:
    mlflow = MlflowClient(settings.mlflow_tracking_uri)
    exps = [e.experiment_id for e in mlflow.search_experiments()]
    return mlflow.search_runs(
        exps, filter_string=f"tags.`parallels.workflow_id` = '{workflow_id}'", max_results=5000
    )


def by_kind(runs: list[Any], kind: str) -> list[Any]:
    return [r for r in runs if r.data.tags.get("parallels.kind") == kind]


ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}
ROOT = {"Authorization": "Bearer root-token"}


def _app(client, settings, tmp_path, **updates):
    tokens = "alice-token:alice,bob-token:bob,root-token:root:admin"
    s = settings.model_copy(update={"api_tokens": tokens, **updates})

    async def temporal():
        return client

    store = TemplateStore(f"sqlite:///{tmp_path / f'store-{uuid.uuid4().hex[:6]}.db'}")
    return create_app(s, store=store, temporal=temporal)


@contextlib.asynccontextmanager
async def served_api(client, settings, tmp_path, **updates):
    """The app on a real port (for other processes), in this event loop; yields its base URL."""
    import uvicorn

    from parallels.stack import free_port

    port = free_port()
    config = uvicorn.Config(
        _app(client, settings, tmp_path, **updates), host="127.0.0.1", port=port,
        log_level="warning", lifespan="on",
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def api_for(client, settings, tmp_path, **updates):
    """The app on a fresh store, talking to the session's Temporal, through an ASGI client."""
    app = _app(client, settings, tmp_path, **updates)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http


def spec_for(repo, name="tpl", n=3):
    return {
        "name": name,
        "parameters": {"n": n},
        "nodes": [
            node("emit", repo, "emit", parameters={"n": "${n}"}),
            node(
                "copy",
                repo,
                "copy",
                parallelism=2,
                inputs=[{"name": "d", "source": {"node": "emit"}, "partition": "by_file"}],
            ),
        ],
    }


async def wait_for(check, timeout=60.0, every=0.5):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await check()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)


async def wait_run(api, run_id, timeout=120.0, headers=None):
    async def ended():
        r = (await api.get(f"/api/v1/runs/{run_id}", headers=headers or ALICE)).json()
        return r if r["status"] != "running" else None

    return await wait_for(ended, timeout)


@contextlib.contextmanager
def _listening(
    on_connect: Callable[[socket.socket], None], held: list[socket.socket] | None = None
) -> Iterator[int]:
    """A loopback TCP server that hands each connection to `on_connect` on its accept thread.

    Yields its port. On exit it closes every socket in `held`: those it accepted, and any the
    caller added.
    """
    server = socket.create_server(("127.0.0.1", 0))
    held = [] if held is None else held

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            on_connect(conn)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        for conn in held:
            with contextlib.suppress(OSError):
                conn.close()


@contextlib.contextmanager
def silent_git_remote() -> Iterator[tuple[str, threading.Event]]:
    """An HTTP git remote that accepts connections and never answers: resolving hangs."""
    reached = threading.Event()
    with _listening(lambda conn: reached.set()) as port:
        yield f"http://127.0.0.1:{port}/silent.git", reached


@contextlib.contextmanager
def gated_proxy(upstream_url: str) -> Iterator[tuple[str, threading.Event, threading.Event]]:
    """A TCP proxy in front of `upstream_url` that holds every connection until `gate` is set.

    Yields (the proxy's URL, `reached`: set once a client has connected, `gate`).
    """
    target = httpx.URL(upstream_url)
    reached, gate = threading.Event(), threading.Event()
    socks: list[socket.socket] = []

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve(conn: socket.socket) -> None:
        reached.set()
        gate.wait()
        try:
            up = socket.create_connection((target.host, target.port or 80))
        except OSError:
            conn.close()
            return
        socks.append(up)
        threading.Thread(target=pump, args=(up, conn), daemon=True).start()
        pump(conn, up)

    def on_connect(conn: socket.socket) -> None:
        threading.Thread(target=serve, args=(conn,), daemon=True).start()

    with _listening(on_connect, socks) as port:
        try:
            yield f"http://127.0.0.1:{port}", reached, gate
        finally:
            gate.set()
