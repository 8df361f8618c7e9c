"""A live `parallels up` with the MLflow UI plugin, and a real Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from parallels.stack import free_port

CHROMIUM = os.environ.get("PARALLELS_TEST_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync",
]  # fmt: skip
TOKEN = "ui-s3cret"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def _browser_missing() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


# Module scope: Playwright's sync API runs an event loop on this thread while it is open, which
# would break the asyncio tests that run after this module.
@pytest.fixture(scope="module")
def chromium():  # type: ignore[no-untyped-def]
    missing = _browser_missing()
    if missing:
        # CI installs Chromium itself and sets this, so a missing browser fails there, not skips.
        if os.environ.get("PARALLELS_REQUIRE_BROWSER"):
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Stack:
    mlflow: str
    api: str
    temporal_ui: str
    state: Path
    log: Path


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`parallels up` as a user starts it, with the plugin installed and a token required."""
    state = tmp_path_factory.mktemp("ui-stack")
    ports = {k: free_port() for k in ("temporal", "ui", "mlflow", "api")}
    env = {
        **os.environ,
        "PARALLELS_STATE_DIR": str(state),
        "PARALLELS_TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "PARALLELS_TEMPORAL_UI_PORT": str(ports["ui"]),
        "PARALLELS_MLFLOW_PORT": str(ports["mlflow"]),
        "PARALLELS_API_PORT": str(ports["api"]),
        "PARALLELS_API_TOKENS": f"{TOKEN}:alice",
    }
    log = state / "up.log"
    parallels = shutil.which("parallels", path=str(Path(sys.executable).parent)) or "parallels"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [parallels, "up"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    s = Stack(
        mlflow=f"http://127.0.0.1:{ports['mlflow']}",
        api=f"http://127.0.0.1:{ports['api']}",
        temporal_ui=f"http://127.0.0.1:{ports['ui']}",
        state=state,
        log=log,
    )
    try:
        deadline = time.monotonic() + 120
        while not (_ready(f"{s.api}/health") and _ready(f"{s.mlflow}/parallels/")):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`parallels up` did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield s
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
