"""Steps of the real-cluster smoke project: write files, count them, or sleep."""

import argparse
import pathlib
import time

import mlflow

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["emit", "count", "sleep"])
p.add_argument("--n", type=float, default=4)
p.add_argument("--out")
p.add_argument("--inp")
p.add_argument("--seconds", type=float, default=600)
a = p.parse_args()

if a.mode == "emit":
    out = pathlib.Path(a.out)
    for i in range(int(a.n)):
        (out / f"item-{i}.txt").write_text(f"{i}\n")
elif a.mode == "count":
    files = [f for f in pathlib.Path(a.inp).rglob("*") if f.is_file()]
    (pathlib.Path(a.out) / "count.txt").write_text(f"{len(files)}\n")
    mlflow.log_metric("files", len(files))
else:
    time.sleep(a.seconds)
