"""A small MLflow project whose steps misbehave on purpose."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import make_repo

MLPROJECT = """
name: faulty
entry_points:
  nap:
    parameters: {seconds: {type: float, default: 5}, ledger: {type: string, default: ""}, output_dir: path}
    command: "python step.py nap --seconds {seconds} --ledger {ledger} --out {output_dir}"
  selfkill:
    command: "python step.py selfkill"
  bigout:
    parameters: {mb: {type: float, default: 200}, ledger: {type: string, default: ""}, output_dir: path}
    command: "python step.py bigout --mb {mb} --ledger {ledger} --out {output_dir}"
"""

STEP = r"""
import argparse, os, pathlib, signal, sys, time

p = argparse.ArgumentParser()
p.add_argument("mode")
p.add_argument("--seconds", type=float, default=5)
p.add_argument("--mb", type=float, default=200)
p.add_argument("--ledger", default="")
p.add_argument("--out", default="")
a = p.parse_args()
index = os.environ.get("PARALLELS_PARTITION_INDEX", "0")

def ledger(event):
    if a.ledger:
        with open(a.ledger, "a") as f:
            f.write(f"{index} {event} {os.getpid()}\n")

if a.mode == "nap":
    ledger("start")
    (pathlib.Path(a.out) / f"part{index}.txt").write_text(f"partition {index}\n")
    print(f"napping {a.seconds}s", flush=True)
    time.sleep(a.seconds)
    ledger("end")
elif a.mode == "selfkill":
    print("about to be killed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
elif a.mode == "bigout":
    ledger("start")
    block = os.urandom(1 << 20)
    for i in range(int(a.mb)):
        (pathlib.Path(a.out) / f"blob{i:04d}.bin").write_bytes(block)
    ledger("end")
"""


def faulty_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "faulty", {"MLproject": MLPROJECT, "step.py": STEP})


def ledger_lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []
