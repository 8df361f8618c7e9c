"""Children that die with their parent, started without running Python in a forked child.

Real processes: an intermediate parent starts a long child the way the worker starts a
partition, is SIGKILLed, and the child must go with it.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from parallels import deathsig
from tests.conftest import wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

SETPRIV = shutil.which("setpriv")
MODES = ["python", pytest.param("setpriv", marks=pytest.mark.skipif(not SETPRIV, reason="none"))]

PARENT = """
import signal, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from parallels import deathsig
pre = (deathsig.via_setpriv(signal.SIGKILL, sys.argv[3]) if sys.argv[2] == "setpriv"
       else deathsig.via_python(signal.SIGKILL))
child = subprocess.Popen([*pre, "sleep", "300"])
print(child.pid, flush=True)
time.sleep(300)
"""


def _prefix(mode: str) -> list[str]:
    if mode == "setpriv":
        assert SETPRIV
        return deathsig.via_setpriv(signal.SIGKILL, SETPRIV)
    return deathsig.via_python(signal.SIGKILL)


def _cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return []


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # dead, waiting for init to reap it


@pytest.mark.parametrize("mode", MODES)
def test_the_child_dies_when_its_parent_is_killed(mode):
    root = str(Path(__file__).resolve().parents[2])
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, root, mode, SETPRIV or ""],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        wait_for(lambda: _cmdline(child)[:2] == [b"sleep", b"300"], 10, f"{child} to exec sleep")
        parent.kill()
        parent.wait()
        wait_for(lambda: _gone(child), 10, f"child {child} to die with its killed parent")
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.parametrize("mode", MODES)
def test_the_command_runs_as_given_with_the_same_pid(mode):
    # The same pid: the worker kills the partition's process group by it.
    proc = subprocess.Popen(
        [*_prefix(mode), "bash", "-c", 'echo "$$ $0 $1"', "name", "a b;c"],
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = proc.communicate(timeout=30)
    pid, name, arg = out.strip().split(" ", 2)
    assert (int(pid), name, arg) == (proc.pid, "name", "a b;c")  # arguments intact, unquoted


def test_a_launcher_whose_parent_is_already_gone_does_not_run_the_command(tmp_path):
    # The parent pid it is given is not its parent: as if the parent died before prctl.
    marker = tmp_path / "ran"
    cmd = deathsig.via_python(signal.SIGKILL)
    cmd[-1] = "1"
    proc = subprocess.run([*cmd, "touch", str(marker)], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert not marker.exists()


@pytest.mark.parametrize("mode", MODES)
def test_starting_children_while_another_thread_loads_libraries_does_not_hang(mode):
    """The worker froze when a partition was started with a `preexec_fn` while another thread
    held the dynamic loader's lock: the forked child hung before exec, and the parent with it.
    The wrappers exec first, so nothing in the child can wait on a lock of the parent. The old
    `preexec_fn` hung under this churn after about 500 starts (3 tries: 460, 491, 509), so 100
    starts does not prove the absence of the hang; it keeps the wrappers working under the same
    conditions. Ruff's PLW1509 keeps `preexec_fn` out of the code."""
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            ctypes.CDLL("libm.so.6")  # dlopen/dlclose: takes the loader's lock

    t = threading.Thread(target=churn, daemon=True)
    t.start()
    try:
        for _ in range(100):
            assert subprocess.run([*_prefix(mode), "true"], check=False).returncode == 0
    finally:
        stop.set()
        t.join()


def test_argv_puts_the_prefix_before_the_command():
    assert deathsig.argv(["echo", "hi"]) == [*deathsig.prefix(), "echo", "hi"]
    if SETPRIV:
        assert deathsig.prefix(signal.SIGTERM) == [SETPRIV, "--pdeathsig=TERM", "--"]
