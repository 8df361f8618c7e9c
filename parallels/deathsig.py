"""Child processes that die with the process that started them (Linux `PR_SET_PDEATHSIG`).

The signal must be asked for inside the child. Asking in a `preexec_fn` runs Python in a child
forked from a multi-threaded process (the worker has MLflow threads, Temporal's Rust threads...):
if another thread held a lock at that instant, the dynamic loader's lock say, the child hangs
before exec, and so does the parent, which waits inside `Popen` for the exec on its event loop
thread. A whole worker froze that way under load. So the child execs first and asks afterwards:
through util-linux `setpriv --pdeathsig` where it exists, else through a small Python launcher.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence

# Runs as its own program, so nothing here runs between fork and exec.
_LAUNCHER = """\
import ctypes, os, signal, sys
sig, parent = int(sys.argv[1]), int(sys.argv[2])
ctypes.CDLL(None, use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG
if os.getppid() != parent:  # the parent died before the line above: no signal will come
    os.kill(os.getpid(), sig)
os.execvp(sys.argv[3], sys.argv[3:])
"""


def argv(cmd: Sequence[str], sig: signal.Signals = signal.SIGKILL) -> list[str]:
    """`cmd`, wrapped so that it gets `sig` when the calling process dies, however it dies.

    Start it without `preexec_fn`. Off Linux there is no such signal: `cmd` is returned as is.
    """
    return [*prefix(sig), *cmd]


def prefix(sig: signal.Signals = signal.SIGKILL) -> list[str]:
    """What `argv` puts in front of a command; worth keeping when many commands are started."""
    if not sys.platform.startswith("linux"):
        return []
    setpriv = _setpriv()
    return via_setpriv(sig, setpriv) if setpriv else via_python(sig)


def via_setpriv(sig: signal.Signals, setpriv: str) -> list[str]:
    return [setpriv, f"--pdeathsig={sig.name.removeprefix('SIG')}", "--"]


def via_python(sig: signal.Signals) -> list[str]:
    # -I -S: no site-packages, no user paths, so the launcher starts in milliseconds.
    return [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(int(sig)), str(os.getpid())]


@functools.cache
def _setpriv() -> str | None:
    """util-linux's setpriv, if it is here and new enough (2.33+) to know --pdeathsig."""
    found = shutil.which("setpriv")
    if not found:
        return None
    try:
        out = subprocess.run(
            [found, "--help"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return found if "--pdeathsig" in out else None
