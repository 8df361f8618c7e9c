"""Turn each PGM image of this partition into a normalised feature row (CSV, 64 values)."""

import os
import sys
from pathlib import Path

import numpy as np

src, out = Path(sys.argv[1]), Path(sys.argv[2])
count = 0
for path in sorted(src.rglob("*.pgm")):
    data = path.read_bytes()
    pixels = np.frombuffer(data[data.index(b"255\n") + 4 :], dtype=np.uint8).astype(float)
    rel = path.relative_to(src).with_suffix(".csv")
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    (out / rel).write_text(",".join(f"{v:.4f}" for v in pixels / 255.0) + "\n")
    count += 1
print(f"partition {os.environ['PARALLELS_PARTITION_INDEX']}: preprocessed {count} images")
