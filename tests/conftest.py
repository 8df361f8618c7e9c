"""Shared fixtures: real Temporal dev server and MLflow server, real git repos."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from parallels.settings import Settings
from parallels.stack import EmbeddedServers, free_port

os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def make_repo(path: Path, files: dict[str, str]) -> Path:
    """A real git repository with `files` committed; returns its path."""
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    if not (path / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(path), "commit", "-qm", "change", "--allow-empty"], check=True, env=env
    )
    return path


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll `predicate` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"waited {timeout:g}s for {what}" if what else "condition not reached in time"
            )
        time.sleep(0.1)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServers]:
    state = tmp_path_factory.mktemp("stack")
    with EmbeddedServers(
        state, temporal_port=free_port(), ui_port=free_port(), mlflow_port=free_port(), ui=False
    ) as s:
        yield s


@pytest.fixture(scope="session")
def base_settings(servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        state_dir=tmp_path_factory.mktemp("state"),
        temporal_address=servers.temporal.address,
        mlflow_tracking_uri=servers.mlflow.uri,
        local_slots=4,
        heartbeat_seconds=1.0,
    )


@pytest_asyncio.fixture(scope="session")
async def client(base_settings: Settings):  # type: ignore[no-untyped-def]
    from parallels.temporal import connect

    return await connect(base_settings)


@pytest.fixture
def task_queue() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(base_settings: Settings, task_queue: str) -> Settings:
    return base_settings.model_copy(update={"task_queue": task_queue})


@pytest_asyncio.fixture
async def worker(client, settings: Settings) -> AsyncIterator[None]:  # type: ignore[no-untyped-def]
    import worker as worker_mod
    from parallels.loopwatch import watching

    # As in a worker process: a blocked loop shows in a failing test's captured log.
    async with (
        watching(settings.worker_loop_stall_seconds),
        worker_mod.running(worker_mod.build_workers(client, settings)),
    ):
        yield
