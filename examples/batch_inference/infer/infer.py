"""Predict every feature row of this partition with the model `train` logged."""

import json
import os
import re
import sys
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np

inputs, out = Path(sys.argv[1]), Path(sys.argv[2])
model_uri = json.loads((inputs / "model" / "model.json").read_text())["model_uri"]
model = mlflow.sklearn.load_model(model_uri)
rows, names = [], []
for path in sorted((inputs / "features").rglob("*.csv")):
    rows.append([float(v) for v in path.read_text().strip().split(",")])
    names.append(path.stem)
index = os.environ["PARALLELS_PARTITION_INDEX"]
lines = ["image,label,prediction"]
correct = 0
if rows:
    predictions = model.predict(np.array(rows) * 16.0)
    for name, pred in zip(names, predictions, strict=True):
        label = int(re.search(r"label(\d)", name).group(1))
        correct += int(label == int(pred))
        lines.append(f"{name},{label},{int(pred)}")
(out / f"predictions-{index}.csv").write_text("\n".join(lines) + "\n")
mlflow.log_metric("images", len(rows))
mlflow.log_metric("batch_accuracy", correct / len(rows) if rows else 0.0)
print(f"partition {index}: {len(rows)} predictions, {correct} correct")
