"""Benchmark steps: real CPU work per file (PBKDF2 rounds), no third-party imports.

The same code is run by Parallels, by `mlflow run`, and directly under xargs.
"""

import argparse
import hashlib
import json
import pathlib
import sys


def files(root: str) -> list[pathlib.Path]:
    return sorted(p for p in pathlib.Path(root).rglob("*") if p.is_file())


def crunch(data: bytes, work: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", data, b"parallels-bench", max(1, work))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode")
    p.add_argument("--work", type=float, default=4000)
    p.add_argument("--inp")
    p.add_argument("--out")
    a = p.parse_args()
    if a.mode == "noop":
        return
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.mode == "preprocess":
        for f in files(a.inp):
            values = [float(x) for x in f.read_text().split()]
            lo, hi = min(values), max(values)
            scaled = [(v - lo) / ((hi - lo) or 1) for v in values]
            digest = crunch(" ".join(f"{v:.6f}" for v in scaled).encode(), int(a.work))
            (out / f.name).write_text(f"{sum(scaled) / len(scaled):.6f} {digest.hex()}\n")
    elif a.mode == "infer":
        for f in files(a.inp):
            mean, hexdigest = f.read_text().split()
            score = crunch(bytes.fromhex(hexdigest), int(a.work))[0] / 255
            (out / f.name).write_text(json.dumps({"mean": float(mean), "score": score}))
    elif a.mode == "aggregate":
        preds = [json.loads(f.read_text()) for f in files(a.inp)]
        positive = sum(1 for x in preds if x["score"] > 0.5)
        summary = {"files": len(preds), "positive": positive}
        (out / "summary.json").write_text(json.dumps(summary))
        print(json.dumps(summary))
    else:
        sys.exit(f"unknown mode {a.mode}")


if __name__ == "__main__":
    main()
