"""Write N handwritten-digit images (8x8 PGM files) from scikit-learn's bundled test half."""

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

p = argparse.ArgumentParser()
p.add_argument("--count", type=float, required=True)
p.add_argument("--seed", type=float, default=0)
p.add_argument("--out", required=True)
args = p.parse_args()

digits = load_digits()
test = np.arange(len(digits.images))[1::2]  # odd samples: never seen by `train`
rng = np.random.default_rng(int(args.seed))
chosen = rng.choice(test, size=min(int(args.count), len(test)), replace=False)
out = Path(args.out) / "images"
out.mkdir(parents=True, exist_ok=True)
for i in sorted(chosen):
    pixels = (digits.images[i] * 255 / 16).astype(np.uint8)
    header = b"P5 8 8 255\n"
    (out / f"digit-{i:04d}-label{digits.target[i]}.pgm").write_bytes(header + pixels.tobytes())
print(f"wrote {len(chosen)} images to {out}")
